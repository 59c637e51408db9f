"""SQS entry point (the status-events queue): apply jobs' state-change events to task records."""

import asyncio
import functools

from connectors.event_queue import receive_records
from connectors.event_receiver import EventReceiver
from connectors.runtime import default_service, invocation


@functools.cache
def receiver() -> EventReceiver:
    """Built once per process: the enabled connectors' events (DISABLED_CONNECTORS leaves the
    others out of the registry, and so out of the receiver)."""
    return EventReceiver(default_service())


receiver()  # at init, as the other handlers build their app: the connectors load before the first batch
# (with SnapStart, into the snapshot)


def handler(event, context):
    with invocation(context):
        return asyncio.run(receive_records(receiver(), event.get("Records") or []))
