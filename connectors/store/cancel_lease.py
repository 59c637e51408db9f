"""The canceller's lease on a task record: the writes that move it to ``cancelling`` and out.

A canceller (a newer attempt of the action, connectors/cancel.py; the reaper, connectors/reaper.py)
takes the lease before it stops the job, so only one canceller works on a record at a time, and
an executor's poll or another canceller that wrote first makes it lose (``RecordChanged``). It then
ends the record (``cancelled``) or gives the lease back with a later retry (``cancel_failed``):
the job may still run, and the reaper tries again when the heartbeat it set is stale.
"""

from __future__ import annotations

import logging
from typing import Any

from .budget import MESSAGE_BYTES, clip
from .dynamodb import RecordChanged, StaleTask
from .record import TaskRecord

logger = logging.getLogger(__name__)

_OWNS_CANCEL = "#state = :cancelling AND lease_owner = :owner"
# Active, or a create's or canceller's lease that expired: what a canceller may take.
_MAY_TAKE = "(#state = :active OR (#state IN (:claimed, :cancelling) AND lease_expires_at < :now))"


class CancelLease:
    """Mixed into the TaskStore: ``_update``, ``clock``, ``_states``, ``_ended_values``, the notes'
    parts (``_note_set``, ``_note_values``), the ending update's parts (``ENDS``,
    ``LEAVES_INDEX``) and ``_active_retention`` are the lifecycle's."""

    _update: Any
    clock: Any
    _states: Any
    _ended_values: Any
    _note_set: Any
    _note_values: Any
    _active_retention: float
    ENDS: str
    LEAVES_INDEX: str

    def claim_cancel(self, record: TaskRecord, owner: bytes, lease_seconds: float, reason: str) -> TaskRecord:
        """active, or claimed / cancelling with the lease expired (at the version read)  ──▶
        cancelling (ours). A newer attempt's claim on an older one: no executor watches it."""
        return self._update(
            record,
            self._cancelling_set(),
            "version = :version AND " + _MAY_TAKE,
            {**self._cancelling_values(owner, lease_seconds, reason), ":version": {"N": str(record.version)}},
        )

    def reap_claim(self, stale: StaleTask, owner: bytes, lease_seconds: float, reason: str) -> TaskRecord:
        """not ended, heartbeat still the stale one listed (no executor polled since), and no live
        lease  ──▶  cancelling (ours). The reaper's claim: a poll that wrote first makes it lose."""
        key = TaskRecord(action_id=stale.action_id, attempt=stale.attempt, secret=b"", task_type="", task_version=0)
        return self._update(
            key,
            self._cancelling_set(),
            "heartbeat_at = :heartbeat AND " + _MAY_TAKE,
            {**self._cancelling_values(owner, lease_seconds, reason), ":heartbeat": {"N": repr(stale.heartbeat_at)}},
        )

    def cancelled(self, record: TaskRecord, phase: int, message: str, note: str) -> TaskRecord:
        """cancelling (ours)  ──▶  ended: the job is stopped (or was never started)."""
        return self._update(
            record,
            "SET " + self.ENDS + self._note_set(record, note) + " REMOVE " + self.LEAVES_INDEX,
            _OWNS_CANCEL,
            {
                **self._ended_values(phase, message),
                ":owner": {"B": record.lease_owner or b""},
                **self._note_values(note),
            },
        )

    def cancel_failed(self, record: TaskRecord, note: str, retry_heartbeat: float, hold_seconds: float = 0.0) -> None:
        """cancelling (ours)  ──▶  cancelling, lease expired (or in ``hold_seconds``, after a replayed
        create whose outcome is unknown), heartbeat set so that the reaper tries again when it is
        stale (the canceller backs off), TTL pushed on: the job may still run. The note says why
        (notes stop at MAX_NOTES)."""
        now = self.clock()
        try:
            self._update(
                record,
                "SET lease_expires_at = :lease, heartbeat_at = :retry, updated_at = :now, expires_at = :expires, "
                "version = version + :one" + self._note_set(record, note),
                _OWNS_CANCEL,
                {
                    **self._states(),
                    ":owner": {"B": record.lease_owner or b""},
                    ":now": {"N": repr(now)},
                    ":lease": {"N": repr(now + max(0.0, hold_seconds))},
                    ":retry": {"N": repr(retry_heartbeat)},
                    ":one": {"N": "1"},
                    **self._note_values(note),
                    ":expires": {"N": str(int(now + self._active_retention))},
                },
            )
        except RecordChanged:
            logger.warning("cancel lease on %s was taken over before it could be released", record.name)

    @staticmethod
    def _cancelling_set() -> str:
        return (
            "SET #state = :cancelling, lease_owner = :owner, lease_expires_at = :lease, #message = :message, "
            "updated_at = :now, version = version + :one"
        )

    def _cancelling_values(self, owner: bytes, lease_seconds: float, reason: str) -> dict[str, Any]:
        now = self.clock()
        return {
            **self._states(),
            ":owner": {"B": owner},
            ":lease": {"N": repr(now + lease_seconds)},
            ":message": {"S": clip(f"being cancelled: {reason}", MESSAGE_BYTES)},
            ":now": {"N": repr(now)},
            ":one": {"N": "1"},
        }


__all__ = ["CancelLease"]
