"""The status-events queue's batches: each SQS record one EventBridge event, one outcome each.

template.yaml routes each enabled AWS connector's "... State Change" events from the default
event bus through the status-events queue (SQS) to the StatusEventsFunction, which hands each
batch here (handlers/status_events.py). Each record's body is the event itself, as EventBridge
put it on the queue; :class:`~connectors.event_receiver.EventReceiver` applies it.

- A record whose event could not be applied because ``receive`` raised (the table throttled or
  unreachable, a bug) is reported in ``batchItemFailures`` (the event source's
  ReportBatchItemFailures): the queue delivers it again after its visibility timeout, and past
  its tries (maxReceiveCount) moves it to the dead-letter queue, whose alarm fires. Applying an
  event twice changes nothing (the receiver's writes keep order), so the records that succeeded
  are never the worry.
- A body that is not an event (not JSON, not an object) is logged and dropped: delivering it
  again would not make it one.
- Records not started when the invocation is about to end are reported too, and come back.

Each record counts once in ``flyte_connector_status_events_total`` {outcome}
(connectors/observability/metrics.py): the receiver's word, ``failed`` for one that raised,
``not started`` for one left for the next delivery.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .connector_calls import invocation_seconds_left
from .event_receiver import EventReceiver
from .observability import logs, metrics

logger = logging.getLogger(__name__)

FAILED = "failed"
MALFORMED = "malformed"
# Records are not started with less time than this left: one event is a Query, a GetItem and an
# UpdateItem or two (each with botocore's retries, about 3 s at worst), and a record cut off by
# Lambda's timeout would fail its whole batch instead of only itself.
RESERVE_SECONDS = 5.0


async def receive_records(receiver: EventReceiver, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply each SQS record's event in turn; the SQS partial batch response: the message ids of
    the records to deliver again (``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``)."""
    logs.start_request("status_events")
    failures: list[dict[str, str]] = []
    outcomes: Counter[str] = Counter()
    for record in records:
        message_id = str(record.get("messageId") or "")
        left = invocation_seconds_left()
        if left is not None and left < RESERVE_SECONDS:
            failures.append({"itemIdentifier": message_id})
            outcomes["not started"] += 1
            metrics.status_event("not started")
            continue
        outcome = await _receive_one(receiver, record, message_id)
        if outcome == FAILED:
            failures.append({"itemIdentifier": message_id})
        outcomes[outcome] += 1
        metrics.status_event(outcome)
    if outcomes:
        logger.info("status events: %s", ", ".join(f"{word} {count}" for word, count in sorted(outcomes.items())))
    return {"batchItemFailures": failures}


async def _receive_one(receiver: EventReceiver, record: Mapping[str, Any], message_id: str) -> str:
    event = _event(record.get("body"))
    if event is None:
        logger.error("status event message %s: its body is not an EventBridge event; dropped", message_id)
        return MALFORMED
    try:
        outcome = await receiver.receive(event)
    except Exception:  # the store failed (or a bug): the queue delivers it again, then dead-letters it
        logger.exception(
            "status event message %s (%s, %s) was not applied; the queue delivers it again",
            message_id,
            event.get("source"),
            event.get("detail-type"),
        )
        return FAILED
    if outcome == MALFORMED:
        logger.error(
            "status event message %s: %s event without a detail, source or detail-type; dropped",
            message_id,
            event.get("source"),
        )
    return outcome


def _event(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, str):
        return None
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    return event if isinstance(event, dict) else None


__all__ = ["FAILED", "MALFORMED", "RESERVE_SECONDS", "receive_records"]
