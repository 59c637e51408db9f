"""`make serve`'s state-change events: the deployment's path, on the embedded fake AWS.

Deployed, EventBridge rules route each enabled connector's "... State Change" events through an
SQS queue to the status-events function (template.yaml), which hands each to the
:class:`~connectors.event_receiver.EventReceiver`. ``connectors serve`` on its embedded moto
builds the same path:

- the fake AWS publishes each job's status changes as its service's event on the default bus,
  its jobs moving on with time (connectors/dev/fake_aws/state_events.py, turned on here);
- one EventBridge rule per pattern of ``EventReceiver(service).patterns()`` targets the queue
  :data:`QUEUE`;
- :func:`consume` runs beside the server for its life: ReceiveMessage (long poll), each batch
  through the function's own code (connectors/event_queue.py: the receiver on each body),
  DeleteMessage for each message it did not report failed. An event the receiver fails on (the
  table busy) stays in the queue and comes back after the queue's visibility timeout, as SQS
  redelivers to the function; a body that is not an event never will be one, and is dropped;
- polls of a task whose connector has events then answer its record while its status is younger
  than ``STATUS_SAFETY_READ_MINUTES`` (5 here unless set), as a deployment with events does.

Against a real table or AWS account ``connectors serve`` does none of this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..event_queue import receive_records
from ..event_receiver import EventReceiver
from .aws_resources import client_factory

logger = logging.getLogger(__name__)

QUEUE = "connector-status-events"
RULE_PREFIX = "connector-status-"
VISIBILITY_SECONDS = 10  # an event that failed comes back this much later
WAIT_SECONDS = 2  # ReceiveMessage's long poll; also how long a stop may wait on it
SAFETY_READ_MINUTES = "5"


@dataclass
class Delivery:
    """The queue the rules deliver to, and the receiver its consumer hands events to."""

    receiver: EventReceiver
    sqs: Any
    queue_url: str
    rules: list[str]


def publish_on(endpoint: str) -> None:
    """Turn the fake AWS's state-change events on (POST /moto-api/fake-aws/events)."""
    request = urllib.request.Request(  # noqa: S310 - the http endpoint of the embedded moto server
        f"{endpoint}/moto-api/fake-aws/events",
        data=json.dumps({"enabled": True}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - as above
        pass


def deliver(endpoint: str, service: Any) -> Delivery | None:
    """Route the registry's state-change events on the fake AWS at ``endpoint`` to a queue;
    None when no registered connector has events (nothing to route)."""
    receiver = EventReceiver(service)
    patterns = receiver.patterns()
    if not patterns:
        return None
    publish_on(endpoint)
    clients = client_factory(endpoint)
    sqs = clients("sqs")
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = clients("events")
    rules = []
    for pattern in patterns:
        name = RULE_PREFIX + re.sub(r"[^A-Za-z0-9]+", "-", pattern["detail-type"][0]).strip("-").lower()
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "status-events-queue", "Arn": queue_arn}])
        rules.append(name)
    return Delivery(receiver, sqs, queue_url, rules)


async def consume(delivery: Delivery) -> None:
    """Apply the queue's events until cancelled (the server stops), each batch as the
    status-events function applies its batch (connectors/event_queue.py): the messages it does
    not report failed are deleted, the others come back after the visibility timeout."""
    sqs, url = delivery.sqs, delivery.queue_url
    while True:
        try:
            answer = await asyncio.to_thread(
                sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
            )
        except Exception as error:  # moto stopping, or busy: try again
            logger.warning("status events: ReceiveMessage failed: %s: %s", type(error).__name__, error)
            await asyncio.sleep(1)
            continue
        messages = answer.get("Messages", [])
        if not messages:
            continue
        records = [{"messageId": m["MessageId"], "body": m.get("Body", "")} for m in messages]
        failed = await receive_records(delivery.receiver, records)
        again = {item["itemIdentifier"] for item in failed["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in again:
                continue
            try:
                await asyncio.to_thread(sqs.delete_message, QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception as error:  # it comes back, and is applied again: changing nothing
                logger.warning("status events: DeleteMessage failed: %s: %s", type(error).__name__, error)
