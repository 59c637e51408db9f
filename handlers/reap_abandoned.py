"""Scheduled entry point: cancel tasks that no executor has polled for ABANDONED_AFTER_MINUTES."""

import asyncio

from connectors.cleanup import reap_abandoned
from connectors.runtime import default_service


def handler(event, context):
    return asyncio.run(reap_abandoned(default_service())).as_dict()
