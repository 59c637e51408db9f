"""The writes a job's state-change event makes (connectors/event_receiver.py).

An event is applied as a poll's reading is, at the version read and only to an active record,
so it never touches an ended or cancelling record and a poll or a DeleteTask that wrote since
makes it decide again. Besides, each carries the event's own time: an event older than the
last one applied (EventBridge delivers at least once and in no set order) moves nothing. The
receiver never moves a phase back (it compares before it writes); these writes keep order.
"""

from __future__ import annotations

from typing import Any

from ..phase import ends_attempt
from .budget import MESSAGE_BYTES, clip
from .log_links import links_removed, links_set, links_values
from .record import ACTIVE, TaskRecord

_ACTIVE_AND_NOT_OLDER = (
    "#state = :active AND version = :version AND (attribute_not_exists(status_event_at) OR status_event_at <= :at)"
)


class PushedStatus:
    """Mixed into the TaskStore: ``_update``, ``clock``, ``_states``, ``_ended_values`` and the
    ending update's parts (``ENDS``, ``LEAVES_INDEX``) are the lifecycle's."""

    _update: Any
    clock: Any
    _states: Any
    _ended_values: Any
    ENDS: str
    LEAVES_INDEX: str

    def push_status(
        self, record: TaskRecord, phase: int, message: str, event_at: float, log_links: bytes | None
    ) -> TaskRecord:
        """active (at the version read), no later event applied  ──▶  active with the event's
        phase and message, and ``log_links`` (what the record keeps after the write: the stored
        ones merged with the event's, store/log_links.py; written only when they changed), the
        status known now; or ──▶ ended when the phase ends the attempt."""
        now = self.clock()
        marks = f"status_pushed_at = :now, status_event_at = :at{links_set(record.log_links, log_links)}"
        removed = links_removed(record.log_links, log_links)
        if ends_attempt(phase):
            update = f"SET {self.ENDS}, {marks} REMOVE {self.LEAVES_INDEX}" + (f", {removed}" if removed else "")
            values = self._ended_values(phase, message)
        else:
            update = (
                f"SET #phase = :phase, #message = :message, updated_at = :now, {marks}, version = version + :one"
                + (f" REMOVE {removed}" if removed else "")
            )
            values = {
                **self._states(),
                ":phase": {"N": str(phase)},
                ":message": {"S": clip(message, MESSAGE_BYTES)},
                ":one": {"N": "1"},
            }
        values.update({":version": {"N": str(record.version)}, ":now": {"N": repr(now)}, ":at": {"N": repr(event_at)}})
        values.update(links_values(record.log_links, log_links))
        return self._update(record, update, _ACTIVE_AND_NOT_OLDER, values)

    def status_due(self, record: TaskRecord, event_at: float) -> TaskRecord:
        """active (at the version read), no later event applied  ──▶  active, its status not
        known: the next poll reads the job (an event that does not tell its phase, or a
        SUCCEEDED one: the outputs come from that read)."""
        return self._update(
            record,
            "SET status_event_at = :at REMOVE status_read_at, status_pushed_at",
            _ACTIVE_AND_NOT_OLDER,
            {":active": {"S": ACTIVE}, ":version": {"N": str(record.version)}, ":at": {"N": repr(event_at)}},
        )


__all__ = ["PushedStatus"]
