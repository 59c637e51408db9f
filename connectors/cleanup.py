"""No orphaned remote jobs: cancel what no executor is watching any more.

Two ways a job is orphaned. A newer attempt of the same action starts (the executor gave up
on the older one after an error or a timeout, and never deletes it): CreateTask cancels the
older attempts' jobs. Or no executor polls a task any more (its workflow was aborted while the
executor was down, a cluster was deleted): the scheduled reaper cancels tasks not polled for
``ABANDONED_AFTER_MINUTES``. Either way the record says so: phase ABORTED, a message, a note.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flyteidl2.core.execution_pb2 import TaskExecution

from .errors import ConnectError
from .phase import is_terminal_phase
from .store import CREATED, RecordChanged, TaskRecord

if TYPE_CHECKING:
    from .service import ConnectorService

logger = logging.getLogger(__name__)


@dataclass
class CleanupReport:
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"cancelled": len(self.cancelled), "failed": len(self.failed),
                "cancelled_tasks": self.cancelled, "failed_tasks": self.failed}


async def cancel_task(service: "ConnectorService", record: TaskRecord, reason: str, note: str,
                      connection: dict[str, str] | None = None) -> bool:
    """Cancel one active task through its connector and mark its record ABORTED; False on failure."""
    name = f"{record.action_id}/{record.attempt}"
    try:
        connector = service.registry.get_connector(record.task_type, record.task_version)
        meta = service.decode_meta(connector, record)
        await service.call_connector(connector, "delete", connector.delete(resource_meta=meta, **(connection or {})))
    except ConnectError as error:
        logger.warning("could not cancel %s (%s): %s", name, note, error.message)
        try:  # keep it active, note the failure, and wait another window before the next try
            await service.run_store(service.store.record_poll, record, record.phase, record.message,
                                    f"{note} failed: {error.message}")
        except (ConnectError, RecordChanged):
            pass
        return False
    try:
        await service.run_store(service.store.record_poll, record, TaskExecution.ABORTED, reason, note)
    except RecordChanged:
        pass  # it finished meanwhile; the job is stopped either way
    logger.info("cancelled %s: %s", name, reason)
    return True


async def cancel_earlier_attempts(service: "ConnectorService", record: TaskRecord,
                                  connection: dict[str, str]) -> CleanupReport:
    """Cancel the still-active jobs of attempts of ``record``'s action older than it."""
    report = CleanupReport()
    earlier = [
        other for other in await service.run_store(service.store.attempts, record.action_id)
        if other.attempt < record.attempt and other.state == CREATED and not is_terminal_phase(other.phase)
    ]
    reason = f"cancelled: superseded by attempt {record.attempt}"
    results = await asyncio.gather(*(cancel_task(service, other, reason, "superseded", connection) for other in earlier))
    for other, ok in zip(earlier, results):
        (report.cancelled if ok else report.failed).append(f"{other.action_id}/{other.attempt}")
    return report


async def reap_abandoned(service: "ConnectorService", now: float | None = None, limit: int = 500) -> CleanupReport:
    """Cancel active tasks that no executor has polled for ``abandoned_after_minutes``."""
    minutes = service.settings.abandoned_after_minutes
    cutoff = (now if now is not None else time.time()) - minutes * 60
    report = CleanupReport()
    stale = []
    for record in await service.run_store(lambda: list(service.store.active_polled_before(cutoff))):
        if record.state == CREATED and not is_terminal_phase(record.phase):
            stale.append(record)
        if len(stale) >= limit:
            break
    reason = f"cancelled: no executor polled this task for {minutes:g} minutes"
    for record in stale:
        ok = await cancel_task(service, record, reason, "abandoned")
        (report.cancelled if ok else report.failed).append(f"{record.action_id}/{record.attempt}")
    return report
