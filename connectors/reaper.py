"""The reaper: cancel the jobs of tasks that no executor is watching any more.

An executor polls every task it runs (GetTask, about every 30 s), and a poll keeps the task's
heartbeat fresh. A task whose heartbeat is older than ``ABANDONED_AFTER_MINUTES`` has been left
behind (its workflow was aborted while the executor was down, a cluster was deleted, or a
CreateTask died after starting a job and no newer attempt came). The reaper, run on a schedule
with one run at a time (reserved concurrency 1), pages lazily through the keys-only index of
such tasks, claims each with a write conditional on the stale heartbeat it read (a poll that
wrote since makes the claim lose, and the task is left alone), cancels with bounded
concurrency, and stops claiming while it still has time to finish what it started.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .cancel import Canceller, CleanupReport
from .connector_calls import STORE_RESERVE_SECONDS, invocation_seconds_left
from .observability import logs, metrics
from .store import RecordChanged, StaleTask

logger = logging.getLogger(__name__)

CONCURRENCY = 16
# Without a Lambda context (a local run), the reaper gives itself this long.
DEFAULT_BUDGET_SECONDS = 240.0


async def reap_abandoned(
    canceller: Canceller,
    now: float | None = None,
    limit: int = 2000,
    budget_seconds: float | None = None,
    concurrency: int = CONCURRENCY,
) -> CleanupReport:
    """Cancel up to ``limit`` tasks not polled for ``abandoned_after_minutes``, within the time budget
    (the Lambda's remaining time when it runs in one)."""
    settings, store = canceller.settings, canceller.store
    logs.start_request("reap")
    minutes = settings.abandoned_after_minutes
    cutoff = (now if now is not None else time.time()) - minutes * 60
    reason = f"cancelled: no executor polled this task for {minutes:g} minutes"
    # One task may take a claim, two connector calls (replayed create and delete) and a write.
    per_task = 2 * settings.connector_timeout_seconds + 3 * STORE_RESERVE_SECONDS
    left = invocation_seconds_left()
    budget = budget_seconds if budget_seconds is not None else (left if left is not None else DEFAULT_BUDGET_SECONDS)
    stop_claiming_at = time.monotonic() + budget - per_task
    report = CleanupReport()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def reap(stale: StaleTask) -> None:
        try:
            try:
                record = await asyncio.to_thread(
                    store.reap_claim,
                    stale,
                    canceller.new_owner(),
                    canceller.lease_seconds,
                    reason.removeprefix("cancelled: "),
                )
            except RecordChanged:  # polled since it was listed, or another canceller holds it
                report.skipped.append(f"{stale.action_id}/{stale.attempt}")
                return
            report.add(record.name, await canceller.cancel(record, {}, reason, "abandoned"))
        except Exception:
            logger.exception("reaping %s/%s failed", stale.action_id, stale.attempt)
            report.failed.append(f"{stale.action_id}/{stale.attempt}")
        finally:
            slots.release()

    pages = store.stale_tasks(cutoff)
    claimed = 0
    passed = False
    try:
        while claimed < limit:
            page = await asyncio.to_thread(next, pages, None)
            if page is None:
                break
            for stale in page:
                await slots.acquire()
                if claimed >= limit or time.monotonic() >= stop_claiming_at:
                    slots.release()
                    report.stopped_early = True
                    return report
                claimed += 1
                task = asyncio.create_task(reap(stale))
                running.add(task)
                task.add_done_callback(running.discard)
        passed = True
    finally:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        # A pass that could not list its tasks (the table or index unreadable) is a failure too.
        metrics.reaper_pass(len(report.failed) + (0 if passed else 1), len(report.skipped))
        if report.cancelled or report.failed or report.stopped_early:
            logger.info("reaper: %s", {k: v for k, v in report.as_dict().items() if not k.endswith("_tasks")})
    return report


__all__ = ["reap_abandoned"]
