"""Jobs' state-change events into task records: status pushed by AWS, not polled.

EventBridge rules (template.yaml; ``make serve``'s fake AWS alike) route each enabled
connector's "... State Change" events through an SQS queue to the StatusEventsFunction, which
hands each event here. An event is applied as a poll's reading would be, with the same rules:

- it finds its task by the key it carries (``job_events.key``), indexed at create: one query;
  an event about a job this service did not start (others share the account) finds none;
- the connector reads the phase and message from the event's detail (``resource_from_event``),
  sanitised as a poll's report is (``answer_resource``), a job stopped not by this service
  told FAILED (``as_told``); its log links update those the record keeps for answers without a
  read, by name (store/log_links.py: a Batch job's log stream link comes with its RUNNING event);
- the write is conditional (store/pushed_status.py): only an active record at the version
  read, never one ended or being cancelled, never after a later event; a phase never moves back
  (a later rank only), so a duplicate, late or out-of-order event changes nothing; nor does a
  late one from before a status read (the read told the job as it was after it), unless it ends
  the job (an ending is final, whenever it is told);
- only events from the deployment's region (where its connectors start jobs) and only the
  connector of the record's own task version reads it: an event forwarded from another region
  names another job, whatever its key;
- a SUCCEEDED job, or an event the connector cannot read, makes the status due instead: the
  next poll reads the job (its outputs come from that read).

What the receiver answers per event is an outcome word for logs and metrics; a failure of the
store raises, so the queue delivers the event again (and, past its tries, to the dead-letter
queue, with an alarm).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from .answers import answer_resource
from .aws_calls import region
from .connector import AsyncConnector, Resource
from .connector_calls import log_connector_failure
from .job_events import event_job_key
from .phase import ends_attempt, phase_name
from .polling import as_told
from .store import ACTIVE, RecordChanged, TaskRecord
from .store.log_links import merge_links

logger = logging.getLogger(__name__)

WRITE_TRIES = 4
# An event this much older than a status read taken (EventBridge's time is to the second; the
# clocks and a describe's own lag add a little) happened before the read: what it tells, the read
# told as it was later.
READ_SINCE_SECONDS = 5.0
# How far a phase has come: an event never moves a task back (a poll may: it reads the job itself).
_RANK = {
    TaskExecution.UNDEFINED: 0,
    TaskExecution.QUEUED: 1,
    TaskExecution.WAITING_FOR_RESOURCES: 1,
    TaskExecution.INITIALIZING: 2,
    TaskExecution.RUNNING: 3,
}
_ENDED_RANK = 4


def rank(phase: int) -> int:
    return _ENDED_RANK if ends_attempt(phase) else _RANK.get(phase, 0)


class EventReceiver:
    """Applies state-change events to the records of the tasks whose jobs they are about."""

    def __init__(self, service: Any) -> None:
        self.service = service  # its registry, store, calls and run_store
        self._by_event: dict[tuple[str, str], list[AsyncConnector[Any]]] = {}
        for connector in service.registry.connectors():
            events = connector.job_events
            if events is not None:
                self._by_event.setdefault((events.source, events.detail_type), []).append(connector)

    def patterns(self) -> list[dict[str, Any]]:
        """The EventBridge patterns of every registered connector with events."""
        return [{"source": [source], "detail-type": [kind]} for source, kind in sorted(self._by_event)]

    async def receive(self, event: Mapping[str, Any]) -> str:
        """Apply one EventBridge event; what became of it: applied, due, unchanged, ended,
        unknown job, not ours (no connector for it) or malformed."""
        detail = event.get("detail")
        source, kind = event.get("source"), event.get("detail-type")
        if not isinstance(detail, Mapping) or not isinstance(source, str) or not isinstance(kind, str):
            return "malformed"
        connectors = self._by_event.get((source, kind))
        if not connectors or event.get("region", region()) != region():
            return "not ours"  # no connector reads it, or a job of another region (forwarded here)
        at = event_time(event)
        outcome = "unknown job"
        for connector in connectors:
            try:
                key = event_job_key(connector, detail)
            except Exception as error:  # its key function and another remote's job: not this one's event
                log_connector_failure(connector, "read an event's job key", error)
                continue
            if key is None:
                continue
            for record in await self.service.run_store(self.service.store.records_of_job, key):
                if (record.task_type, record.task_version) == (
                    connector.task_type_name,
                    int(connector.task_type_version),
                ):
                    outcome = await self._apply(connector, record, detail, at)
        return outcome

    async def _apply(
        self, connector: AsyncConnector[Any], record: TaskRecord, detail: Mapping[str, Any], at: float
    ) -> str:
        store = self.service.store
        answered: pb.Resource | None = None  # the event's report as a poll's would be stored; None: the poll reads
        try:
            meta = self.service.calls.decode_meta(connector, record)
            told = connector.resource_from_event(detail, meta)
            if told is not None and told.phase != TaskExecution.SUCCEEDED:
                answered = answer_resource(record, _checked(told))
        except Exception:  # a connector's bug or a detail no answer holds must not stop the queue
            logger.exception("task %s: %s could not read a state-change event", record.name, connector.name)
        for _ in range(WRITE_TRIES):
            if record.state != ACTIVE:
                return "ended"
            if record.status_event_at is not None and at < record.status_event_at:
                return "unchanged"  # an older event than one applied: late, or out of order
            try:
                if answered is None:
                    if record.status_read_at is not None or record.status_pushed_at is not None:
                        await self.service.run_store(store.status_due, record, at)
                    # else due already (no read or event since the last due one): no write; an
                    # array job's children send many events between two polls
                    return "due"
                reported = as_told(record, answered)
                if not ends_attempt(reported.phase) and _read_since(record, at):
                    return "unchanged"  # late: a read taken since told the job as it was later
                links = merge_links(record.log_links, reported.log_links)
                if rank(reported.phase) < rank(record.phase) or (
                    reported.phase == record.phase and reported.message == record.message and links == record.log_links
                ):
                    return "unchanged"
                await self.service.run_store(store.push_status, record, reported.phase, reported.message, at, links)
                logger.info(
                    "task %s: %s -> %s (state-change event)",
                    record.name,
                    phase_name(record.phase),
                    phase_name(reported.phase),
                )
                return "applied"
            except RecordChanged as changed:  # a poll, a DeleteTask or another event came first
                if changed.current is None:
                    return "ended"
                record = changed.current
        return "unchanged"  # it kept changing: the polls are reading it


def _read_since(record: TaskRecord, at: float) -> bool:
    """A status read was taken (and has not failed) after the event at ``at`` happened."""
    read = record.status_read_at
    return read is not None and record.status_failing_since is None and at + READ_SINCE_SECONDS < read


def _checked(told: Resource) -> Resource:
    if not isinstance(told, Resource):
        raise TypeError(f"resource_from_event returned {type(told).__name__}, not a Resource")
    return told


def event_time(event: Mapping[str, Any]) -> float:
    """The event's own time (EventBridge's ``time``, ISO 8601 to the second), as epoch seconds;
    0 when absent or unreadable (such an event is ordered before every other)."""
    raw = event.get("time")
    if not isinstance(raw, str):
        return 0.0
    try:
        return datetime.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


__all__ = ["EventReceiver", "event_time", "rank"]
