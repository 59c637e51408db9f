"""Scheduled entry point: cancel tasks that no executor has polled for ABANDONED_AFTER_MINUTES."""

import asyncio

from connectors.reaper import reap_abandoned
from connectors.runtime import default_service, invocation


def handler(event, context):
    with invocation(context):
        return asyncio.run(reap_abandoned(default_service().canceller)).as_dict()
