"""The record's mark of failing status reads: two small writes beside the lifecycle's.

Neither moves a version: they change nothing the executor is told (the phase and message stay
the poll's to write, at the version read), as a heartbeat does not. Both write only an active
record, so an ended or cancelling one is never touched.
"""

from __future__ import annotations

from typing import Any

from .record import ACTIVE, TaskRecord


class StatusReads:
    """Mixed into the TaskStore: ``_update`` and ``clock`` are the table's."""

    _update: Any
    clock: Any

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
