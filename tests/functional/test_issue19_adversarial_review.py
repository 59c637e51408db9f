"""Adversarial review of issue 19 (status pushed by AWS's state-change events, not polled).

Each test breaks the feature as bad luck or a hostile sender would, through the served app, the
fake AWS (moto's server) and the receiver as the StatusEventsFunction calls it; its docstring says
what went wrong before the fix.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.event_queue import receive_records
from tests.functional.test_status_events import EventWorld
from tests.functional.test_status_events_handler import sqs_record

TYPE = "aws_batch_job"


def stamped(event: dict[str, Any], epoch: float) -> dict[str, Any]:
    """``event`` with EventBridge's ``time`` (ISO 8601, to the second) set to ``epoch``."""
    when = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return {**event, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


def receive(events: EventWorld, event: dict[str, Any]) -> str:
    return asyncio.run(events.receiver.receive(event))


@pytest.fixture
def events(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0)
    made = EventWorld(world)
    yield made
    world.release("batch::job")


def test_a_late_event_older_than_a_status_read_does_not_overwrite_what_the_read_told(events) -> None:
    """The queue held an event (the function throttled, or SQS redelivered it after its 3-minute
    visibility timeout): RUNNING, from a minute before a poll read the job, which by then was back
    in the queue (a Batch retry: RUNNING -> RUNNABLE). Before the fix the late event was applied
    (a phase further along than the read's) and, as it stamped the status known "now", the polls
    answered that stale RUNNING for StatusSafetyReadMinutes without reading the job: the docs'
    "the events, once applied, change nothing the reads already told" did not hold."""
    assert events.poll() == ("QUEUED", 1)  # the read: the job waits (held SUBMITTED by the fake)
    read_at = events.record().status_read_at
    assert read_at is not None
    late = stamped(events.event("RUNNING", 0), read_at - 60)
    assert receive(events, late) == "unchanged"
    assert events.poll() == ("QUEUED", 0)  # what the read told stands, with no read in between
    # An ending is final: told late, it is applied all the same.
    ended = stamped(events.event("FAILED", 0, statusReason="Essential container in task exited"), read_at - 60)
    assert receive(events, ended) == "applied"
    assert events.record().state == "ended"


def test_a_detail_the_answer_cannot_hold_is_read_by_the_next_poll_not_dead_lettered(events) -> None:
    """A garbage detail (a ``statusReason`` that is a number) for a task's job: the connector's
    mapping took it, but turning its report into an answer raised outside the receiver's guard,
    so the event failed each of its 5 deliveries and went to the dead-letter queue, firing its
    alarm. A detail the receiver cannot read makes the status due instead, as documented."""
    assert events.poll()[1] == 1
    assert events.push("RUNNING", 1, statusReason=12345) == "due"
    assert events.poll()[1] == 1  # the next poll reads the job itself


def test_a_body_nested_too_deep_to_parse_fails_only_itself(events) -> None:
    """A message whose body is JSON nested deeper than Python's parser recurses (SQS takes 256 KB
    of "[[[["): json.loads raised RecursionError, which the body check (ValueError only) let out,
    so the whole batch failed: every good event of it was delivered again with the bad one, and
    after 5 receives all went to the dead-letter queue together."""
    good = sqs_record(json.dumps(events.event("RUNNING", 1)))
    deep = sqs_record("[" * 200_000)
    response = asyncio.run(receive_records(events.receiver, [deep, good]))
    assert response == {"batchItemFailures": []}  # the deep one is dropped: it will never parse
    assert events.record().phase == TaskExecution.RUNNING  # the good event of the batch applied


def test_an_event_from_another_region_is_not_applied(events) -> None:
    """Events forwarded to this default bus from another region (a central event bus set-up)
    match the rules too. A job there whose key equals one of ours (SageMaker's key is the job
    name, derived from the run, action and attempt: the same in two regions' deployments of one
    Flyte project, without IDEMPOTENCY_TOKEN_SALT) moved or ended our task: before the fix a
    FAILED event from eu-west-1 failed this us-east-1 task, whose job runs on."""
    foreign = {**events.event("FAILED", 1, statusReason="another region's job failed"), "region": "eu-west-1"}
    assert receive(events, foreign) == "not ours"
    record = events.record()
    assert record.state == "active" and record.phase != TaskExecution.FAILED


def test_an_event_is_read_only_by_the_connector_of_its_tasks_version(aws_world) -> None:
    """Two versions of one task type registered (a plugin's v1 beside the built-in v0) share the
    job key's prefix (the task type). An event for a v0 task was read by both connectors: v1's
    reading (its own metadata type, its own mapping) was applied to the v0 record too; here its
    refusal made the status due right after v0 had applied it, so the next poll read the job
    for nothing. Each record's event is read by the connector of the record's version only."""

    class BatchV1(AwsBatchJobConnector):
        task_type_version = 1

        def resource_from_event(self, detail: Any, resource_meta: Any) -> Any:
            raise AssertionError("v1 read an event of a v0 task")

    world = aws_world(
        AwsBatchJobConnector(), BatchV1(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0
    )
    events = EventWorld(world)  # its receiver holds both versions' connectors
    try:
        assert events.poll()[1] == 1
        assert events.push("RUNNING", 1) == "applied"
        assert events.record().status_pushed_at is not None
        assert events.poll() == ("RUNNING", 0)
    finally:
        world.release("batch::job")
