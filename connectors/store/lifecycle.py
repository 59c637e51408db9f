"""The lifecycle of a task record: its states, and one conditional write per transition.

States (``record.state``)::

    claimed ──finish──▶ active ──end_phase / delete──▶ ended
       │  ▲  mark_superseded │ ▲ record_phase, heartbeat
       │  └─release       │ │
       │                  ▼ │
       ├──claim_cancel / reap_claim (lease expired)──▶ cancelling ──cancelled──▶ ended
       │                  active ──claim_cancel / reap_claim──▶ cancelling ──cancel_failed─┐
       ├──end_create──▶ ended                                      ▲ (lease expired)      │
       └──withdraw_claim──▶ ended, withdrawn                       └──────────────────────┘

Every transition is one conditional write, with its condition beside it; a write that loses
raises :class:`RecordChanged` carrying the current record, so the caller decides again on what is
really stored. They are all TaskStore's methods: a create's and a poll's here, a canceller's lease
in cancel_lease.py, the status reads' marks in status_reads.py and the state-change events'
writes in pushed_status.py. The promises this keeps:

- Once connector.create may have been called for an attempt, its record stays until the job is
  known finished or cancelled: a failed create only ``release``\\ s its lease (the record keeps
  the request, so a canceller can replay create with the attempt's idempotency token), and a
  create that finishes after a newer attempt marked it (``mark_superseded``) loses its finish.
- The reaper cancels a task only if its heartbeat is still the stale one it listed
  (``reap_claim``); an executor's poll that writes first wins, and one that comes later finds
  the record ``cancelling`` and is told so.
- Only an ``active`` record takes a poll's write, and a phase change only at the version read:
  nothing but a canceller's own ``cancelled`` ever writes a record after it left ``active``.
- A claim refused before connector.create (another principal's or another task's attempt of the
  action, connectors/service.py) is withdrawn (``withdraw_claim``): it started nothing, and the
  next claim of the attempt replaces it, so a refused request blocks no real attempt.
- A heartbeat (``heartbeat_at``, the reaper's clock, and the TTL pushed with it) is written at
  most once per ``heartbeat_seconds`` by a poll whose phase, message and log links did not change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution

from ..phase import ends_attempt
from .budget import MAX_NOTES, MESSAGE_BYTES, NOTE_BYTES, check_fits, clip
from .cancel_lease import CancelLease
from .dynamodb import RecordChanged, TaskTable
from .log_links import links_removed, links_set, links_values
from .pushed_status import PushedStatus
from .record import ACTIVE, ACTIVE_SHARDS, CANCELLING, CLAIMED, ENDED, TaskRecord
from .status_reads import StatusReads

logger = logging.getLogger(__name__)

_DAY = 86400.0
# Conditions that several transitions share.
_OWNS_CLAIM = "#state = :claimed AND lease_owner = :owner"
_IS_ACTIVE_AT_VERSION = "#state = :active AND version = :version"
# Leaving the index and taking the long retention: what every move to `ended` also does.
_ENDS = "#state = :ended, #phase = :phase, #message = :message, updated_at = :now, expires_at = :expires, version = version + :one"
_LEAVES_INDEX = "active_shard, heartbeat_at, lease_owner, lease_expires_at, create_request, job_key"


@dataclass
class ClaimResult:
    record: TaskRecord
    claimed: bool  # False: someone else holds the claim, or the attempt moved on; record is theirs
    took_over: bool = False  # the claim replaced a released or expired one: create may have run before
    # What the replaced claim's create failed with ("" when not known): a refusal now proves no job
    # only if every earlier try of the attempt was refused too.
    prior_create_error: str = ""


class TaskStore(CancelLease, StatusReads, PushedStatus, TaskTable):
    ENDS = _ENDS
    LEAVES_INDEX = _LEAVES_INDEX

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        active_retention_days: float = 30.0,
        terminal_retention_days: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(table_name, client, **({"clock": clock} if clock else {}))
        self._active_retention = active_retention_days * _DAY
        self._terminal_retention = terminal_retention_days * _DAY

    # -- creating -------------------------------------------------------------------------

    def claim(self, record: TaskRecord, lease_seconds: float) -> ClaimResult:
        """absent, or withdrawn, or claimed with its lease expired, not superseded, for the same
        request by the same principal  ──▶  claimed (ours).

        A PutItem of the whole record (create_request included), so a takeover resumes with a
        clean record; the caller keeps the same idempotency token, derived from the key. A
        takeover is a second PutItem, conditional on the claim it read, and keeps that claim's
        ``created_at``: the attempt's first create, from which its replay window counts."""
        now = self.clock()
        record.state, record.lease_owner = CLAIMED, record.secret
        record.created_at = record.updated_at = record.heartbeat_at = now
        record.lease_expires_at = now + lease_seconds
        record.expires_at = int(now + self._active_retention)
        record.active_shard = f"active#{int.from_bytes(record.secret[:2], 'big') % ACTIVE_SHARDS}"
        check_fits(record.to_item())
        try:
            self._put(record, "attribute_not_exists(action_id)", {})
            return ClaimResult(record, claimed=True)
        except RecordChanged as changed:
            current = changed.current
            if current is None:  # pragma: no cover - DynamoDB returns the old item
                raise
            if current.secret == record.secret:  # botocore retried this put after its answer was lost
                return ClaimResult(record, claimed=True)
        if current.withdrawn:  # a refused CreateTask's claim: it started nothing, and a claim replaces it
            record.version = current.version + 1
            try:
                self._put(
                    record,
                    "attribute_exists(withdrawn) AND version = :version",
                    {":version": {"N": str(current.version)}},
                )
            except RecordChanged as changed:
                if changed.current is None or changed.current.secret != record.secret:
                    return ClaimResult(changed.current or current, claimed=False)
            return ClaimResult(record, claimed=True)
        if not (
            current.state == CLAIMED
            and current.lease_expired(now)
            and current.superseded_by is None
            and current.request_digest in (None, record.request_digest)
            and current.principal in (None, record.principal)
        ):
            return ClaimResult(current, claimed=False)
        record.created_at = current.created_at or now
        record.version = current.version + 1
        try:
            self._put(
                record,
                "#state = :claimed AND version = :version AND lease_expires_at < :now "
                "AND attribute_not_exists(superseded_by)",
                {":claimed": {"S": CLAIMED}, ":version": {"N": str(current.version)}, ":now": {"N": repr(now)}},
            )
        except RecordChanged as changed:
            if changed.current is None or changed.current.secret != record.secret:  # (else retried, as above)
                return ClaimResult(changed.current or current, claimed=False)  # a retry of this CreateTask decides
        return ClaimResult(record, claimed=True, took_over=True, prior_create_error=current.create_error or "")

    def _put(self, record: TaskRecord, condition: str, values: dict[str, Any]) -> None:
        self._call(
            "put_item",
            Item=record.to_item(),
            ConditionExpression=condition,
            **({"ExpressionAttributeNames": {"#state": "state"}} if "#state" in condition else {}),
            **({"ExpressionAttributeValues": values} if values else {}),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    @staticmethod
    def check_metadata_fits(record: TaskRecord, resource_meta: bytes) -> None:
        """``resource_exhausted`` unless the record, with the connector's metadata in place of
        the create request, still fits with room for its later writes."""
        item = record.to_item()
        item.pop("create_request", None)
        check_fits(item, {"resource_meta": resource_meta})

    def finish_create(
        self, record: TaskRecord, resource_meta: bytes, phase: int, job_key: str | None = None
    ) -> TaskRecord:
        """claimed (ours), not superseded  ──▶  active, with the connector's metadata (and the key
        its job's events carry); the create request goes. A claim a newer attempt marked
        meanwhile loses: its owner deletes the job."""
        now = self.clock()
        try:
            return self._update(
                record,
                # The claim's heartbeat stays: seconds old, and moving it would rewrite the index entry.
                "SET #state = :active, resource_meta = :meta, #phase = :phase, updated_at = :now, "
                + ("job_key = :job, " if job_key else "")
                + "version = version + :one REMOVE lease_owner, lease_expires_at, create_request",
                _OWNS_CLAIM + " AND attribute_not_exists(superseded_by)",
                {
                    **self._states(),
                    ":owner": {"B": record.secret},
                    ":meta": {"B": resource_meta},
                    ":phase": {"N": str(phase)},
                    ":now": {"N": repr(now)},
                    ":one": {"N": "1"},
                    **({":job": {"S": job_key}} if job_key else {}),
                },
            )
        except RecordChanged as changed:
            current = changed.current
            if current is not None and current.secret == record.secret and current.state == ACTIVE:
                return current  # botocore retried this very update after its answer was lost
            raise

    def release_claim(
        self, record: TaskRecord, message: str, create_error: str = "", hold_seconds: float = 0.0
    ) -> None:
        """claimed (ours)  ──▶  claimed, lease expired now (or in ``hold_seconds``): a retry of this
        attempt may then resume, and a newer attempt or the reaper cancel what create may have
        started. ``create_error`` is the code connector.create failed with ("" when it was not
        called or its outcome is unknown): a canceller trusts a refused replay only after a refused
        create. ``hold_seconds`` keeps a create whose outcome is unknown from being replayed before
        a connector's look-up can see the job it may have started (its ``replay_settle_seconds``)."""
        now = self.clock()
        try:
            self._update(
                record,
                "SET lease_expires_at = :expires, #message = :message, updated_at = :now, version = version + :one, "
                "create_error = :error" + self._note_set(record, message),
                _OWNS_CLAIM,
                {
                    **self._states(),
                    ":owner": {"B": record.secret},
                    ":now": {"N": repr(now)},
                    ":one": {"N": "1"},
                    ":expires": {"N": repr(now + max(0.0, hold_seconds))},
                    ":message": {"S": clip(message, MESSAGE_BYTES)},
                    ":error": {"S": create_error},
                    **self._note_values(message),
                },
            )
        except RecordChanged:
            logger.warning("claim on %s was taken over before it could be released", record.name)

    def end_create(self, record: TaskRecord, phase: int, message: str) -> TaskRecord:
        """claimed (ours)  ──▶  ended: create's job is already cancelled (its metadata could not
        be kept); no handle was ever given for it."""
        return self._update(
            record,
            "SET " + _ENDS + self._note_set(record, message) + " REMOVE " + _LEAVES_INDEX,
            _OWNS_CLAIM,
            {**self._ended_values(phase, message), ":owner": {"B": record.secret}, **self._note_values(message)},
        )

    def withdraw_claim(self, record: TaskRecord, message: str) -> TaskRecord:
        """claimed (ours), connector.create never called  ──▶  ended, withdrawn: CreateTask refused
        the attempt after claiming it (another principal's or another task's attempt of the action
        appeared meanwhile). It started nothing, so it blocks nothing: checks pass it by and a
        claim of the same attempt replaces it."""
        return self._update(
            record,
            "SET " + _ENDS + ", withdrawn = :withdrawn" + self._note_set(record, message) + " REMOVE " + _LEAVES_INDEX,
            _OWNS_CLAIM,
            {
                **self._ended_values(TaskExecution.ABORTED, message),
                ":owner": {"B": record.secret},
                ":withdrawn": {"BOOL": True},
                **self._note_values(message),
            },
        )

    # -- polling --------------------------------------------------------------------------

    def heartbeat(self, record: TaskRecord) -> TaskRecord:
        """active  ──▶  active, heartbeat and TTL pushed on. Not on a version: it moves nothing the
        executor is told, and the reaper's claim is conditional on the heartbeat it read."""
        now = self.clock()
        return self._update(
            record,
            "SET heartbeat_at = :now, expires_at = :expires",
            "#state = :active",
            {
                ":active": {"S": ACTIVE},
                ":now": {"N": repr(now)},
                ":expires": {"N": str(int(now + self._active_retention))},
            },
        )

    def record_phase(
        self, record: TaskRecord, phase: int, message: str, heartbeat: bool = False, log_links: bytes | None = None
    ) -> TaskRecord:
        """active (at the version read)  ──▶  active with a new phase, message or log links (what
        the record keeps after the write, the read's: store/log_links.py; None for none; written
        only when they changed), and a heartbeat when one is due (it moves the index entry); or
        ──▶ ended when the phase ends the attempt."""
        if ends_attempt(phase):
            return self.end_phase(record, phase, message, log_links)
        now = self.clock()
        removed = links_removed(record.log_links, log_links)
        return self._update(
            record,
            "SET #phase = :phase, #message = :message, updated_at = :now, version = version + :one"
            + (", heartbeat_at = :now, expires_at = :expires" if heartbeat else "")
            + links_set(record.log_links, log_links)
            + (f" REMOVE {removed}" if removed else ""),
            _IS_ACTIVE_AT_VERSION,
            {
                **self._states(),
                ":version": {"N": str(record.version)},
                ":phase": {"N": str(phase)},
                ":message": {"S": clip(message, MESSAGE_BYTES)},
                ":now": {"N": repr(now)},
                ":one": {"N": "1"},
                ":expires": {"N": str(int(now + self._active_retention))},
                **links_values(record.log_links, log_links),
            },
        )

    def end_phase(self, record: TaskRecord, phase: int, message: str, log_links: bytes | None = None) -> TaskRecord:
        """active (at the version read)  ──▶  ended: the connector reported a terminal phase (and
        the links its read reported, which the ended record keeps for every GetTask after)."""
        removed = links_removed(record.log_links, log_links)
        return self._update(
            record,
            "SET "
            + _ENDS
            + links_set(record.log_links, log_links)
            + " REMOVE "
            + _LEAVES_INDEX
            + (f", {removed}" if removed else ""),
            _IS_ACTIVE_AT_VERSION,
            {
                **self._ended_values(phase, message),
                ":version": {"N": str(record.version)},
                **links_values(record.log_links, log_links),
            },
        )

    def delete_task(self, record: TaskRecord, phase: int, message: str) -> TaskRecord:
        """active (any version)  ──▶  ended ABORTED: DeleteTask stopped the job. A record that
        ended or is being cancelled meanwhile is left as it is."""
        return self._update(
            record,
            "SET " + _ENDS + self._note_set(record, "deleted") + " REMOVE " + _LEAVES_INDEX,
            "#state = :active",
            {**self._ended_values(phase, message), **self._note_values("deleted")},
        )

    # -- superseding ----------------------------------------------------------------------

    def mark_superseded(self, record: TaskRecord, newer_attempt: int) -> TaskRecord:
        """claimed with a live lease (at the version read)  ──▶  claimed, marked superseded and its
        heartbeat zeroed: its create may still run, so its owner will find the mark when it
        finishes and delete the job; if the owner died, the reaper takes it once the lease ends."""
        return self._update(
            record,
            "SET superseded_by = :newer, heartbeat_at = :zero, version = version + :one",
            "#state = :claimed AND version = :version AND attribute_not_exists(superseded_by)",
            {
                **self._states(),
                ":newer": {"N": str(newer_attempt)},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":version": {"N": str(record.version)},
            },
        )

    # -- expression parts -----------------------------------------------------------------

    @staticmethod
    def _states() -> dict[str, Any]:
        return {
            ":claimed": {"S": CLAIMED},
            ":active": {"S": ACTIVE},
            ":cancelling": {"S": CANCELLING},
            ":ended": {"S": ENDED},
        }

    def _ended_values(self, phase: int, message: str) -> dict[str, Any]:
        now = self.clock()
        return {
            **self._states(),
            ":phase": {"N": str(phase)},
            ":message": {"S": clip(message, MESSAGE_BYTES)},
            ":now": {"N": repr(now)},
            ":one": {"N": "1"},
            ":expires": {"N": str(int(now + self._terminal_retention))},
        }

    @staticmethod
    def _note_set(record: TaskRecord, note: str) -> str:
        """Append a note, unless the record read has MAX_NOTES already (every write that notes is
        conditional on the lease or state it read, so the count read is the count written)."""
        return ", notes = list_append(if_not_exists(notes, :empty), :note)" if len(record.notes) < MAX_NOTES else ""

    @staticmethod
    def _note_values(note: str) -> dict[str, Any]:
        return {":note": {"L": [{"S": clip(note, NOTE_BYTES)}]}, ":empty": {"L": []}}


__all__ = ["ClaimResult", "TaskStore"]
