"""The marks a poll reads beside the lifecycle's states: whose turn it is to read the remote,
since when reads fail, and that DeleteTask is stopping the job.

The read marks move no version: they change nothing the executor is told (the phase and message
stay the poll's to write, at the version read), as a heartbeat does not. The delete mark does, so
no poll that read the record before it can store its reading of the stopped job. All write only
an active record, so an ended or cancelling one is never touched.
"""

from __future__ import annotations

from typing import Any

from .record import ACTIVE, TaskRecord


class StatusReads:
    """Mixed into the TaskStore: ``_update`` and ``clock`` are the table's."""

    _update: Any
    clock: Any
    _active_retention: float

    def take_status_read(self, record: TaskRecord, not_since: float, heartbeat: bool) -> TaskRecord:
        """active, no status read taken since ``not_since``  ──▶  active, ``status_read_at`` now:
        this poll reads the remote; a poll that loses answers the record (another just read it).
        Carries the heartbeat when one is due (the executor is watching)."""
        now = self.clock()
        return self._update(
            record,
            "SET status_read_at = :now" + (", heartbeat_at = :now, expires_at = :expires" if heartbeat else ""),
            "#state = :active AND (attribute_not_exists(status_read_at) OR status_read_at <= :since)",
            {
                ":active": {"S": ACTIVE},
                ":now": {"N": repr(now)},
                ":since": {"N": repr(not_since)},
                ":expires": {"N": str(int(now + self._active_retention))},
            },
        )

    def mark_deleting(self, record: TaskRecord) -> TaskRecord:
        """active  ──▶  active, ``delete_requested_at`` now, at a new version: a poll that read the
        record before the mark loses its phase write and decides again on the marked record."""
        return self._update(
            record,
            "SET delete_requested_at = :now, version = version + :one",
            "#state = :active",
            {":active": {"S": ACTIVE}, ":now": {"N": repr(self.clock())}, ":one": {"N": "1"}},
        )

    def status_read_failed(self, record: TaskRecord) -> TaskRecord:
        """active, no mark  ──▶  active, ``status_failing_since`` now (the first failure counts)."""
        return self._update(
            record,
            "SET status_failing_since = :now",
            "#state = :active AND attribute_not_exists(status_failing_since)",
            {":active": {"S": ACTIVE}, ":now": {"N": repr(self.clock())}},
        )

    def status_read_succeeded(self, record: TaskRecord) -> TaskRecord:
        """active, marked  ──▶  active, no mark."""
        return self._update(
            record,
            "REMOVE status_failing_since",
            "#state = :active AND attribute_exists(status_failing_since)",
            {":active": {"S": ACTIVE}},
        )


__all__ = ["StatusReads"]
