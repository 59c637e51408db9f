"""Jobs' state-change events keep task records current; a poll then reads DynamoDB only (issue 19).

Through the served app against the fake AWS: a Batch task is created as the executor creates it,
its job's "Batch Job State Change" events (shaped as AWS Batch documents them: the detail is the
job as DescribeJobs describes it) are handed to the receiver as the StatusEventsFunction hands
them, and the fake AWS counts the DescribeJobs calls each poll makes.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.batch import CANCEL_REASON, AwsBatchJobConnector
from connectors.event_receiver import EventReceiver
from tests.aws_job_events import batch_event
from tests.aws_world import STR

TYPE = "aws_batch_job"
CUSTOM = {"job_queue": "flyte-example", "job_definition": "flyte-example"}


class EventWorld:
    """An AWS world with events delivered: the receiver, a task, and the fake's call counts."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.receiver = EventReceiver(world.service)
        world.hold("batch::job")  # the fake's job stays SUBMITTED: only events move the record
        self.handle = world.create(world.request(TYPE, CUSTOM, inputs={"day": (STR, "monday")}))
        self.job_id = self.record().job_key.split("#", 1)[1]
        self.job = world.boto("batch").describe_jobs(jobs=[self.job_id])["jobs"][0]
        # The job's changes are stamped from a little after now: each happens after the polls
        # before it (a read tells the job as it is then; an event older than it is a late one).
        self.t0 = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=10)

    def record(self):
        return self.world.record(self.handle)

    def event(self, status: str, second: int, **detail: Any) -> dict[str, Any]:
        return batch_event(self.job, second, t0=self.t0, status=status, **detail)

    def push(self, status: str, second: int, **detail: Any) -> str:
        return asyncio.run(self.receiver.receive(self.event(status, second, **detail)))

    def describes(self) -> int:
        return self.world._post("/moto-api/fake-aws/faults", {})["counts"].get("batch:DescribeJobs", {}).get("calls", 0)

    def poll(self) -> tuple[str, int]:
        """The phase GetTask answers, and the DescribeJobs calls it made."""
        before = self.describes()
        phase = TaskExecution.Phase.Name(self.world.poll(self.handle, TYPE).phase)
        return phase, self.describes() - before


@pytest.fixture
def events(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0)
    made = EventWorld(world)
    yield made
    world.release("batch::job")


def test_phase_changes_reach_the_record_with_no_remote_call_in_between(events):
    assert events.poll()[0] == "QUEUED"  # the first poll reads: no event has told the status yet
    assert events.push("RUNNABLE", 1) == "applied"
    assert events.poll() == ("WAITING_FOR_RESOURCES", 0)
    assert events.push("STARTING", 2) == "applied"
    assert events.push("RUNNING", 3) == "applied"
    assert events.poll() == ("RUNNING", 0)
    assert events.push("FAILED", 9, statusReason="Essential container in task exited") == "applied"
    record = events.record()
    assert record.state == "ended" and record.phase == TaskExecution.FAILED
    assert "Essential container in task exited" in record.message
    assert events.poll() == ("FAILED", 0)


def test_a_succeeded_event_makes_the_next_poll_read_the_job_once(events):
    events.poll()
    assert events.push("RUNNING", 1) == "applied"
    assert events.poll() == ("RUNNING", 0)
    assert events.push("SUCCEEDED", 5) == "due"
    assert events.record().status_read_at is None and events.record().status_pushed_at is None
    _, reads = events.poll()
    assert reads == 1  # its outputs and final answer come from the job itself
    assert events.poll()[1] == 0  # then the stored status is fresh again


def test_duplicate_late_and_out_of_order_events_leave_the_record_correct(events):
    assert events.push("RUNNING", 10) == "applied"
    version = events.record().version
    assert events.push("RUNNING", 10) == "unchanged"  # delivered twice
    assert events.push("RUNNABLE", 5) == "unchanged"  # older than one applied
    assert events.push("RUNNABLE", 20) == "unchanged"  # newer, but a phase never moves back
    assert events.push("STARTING", 10) == "unchanged"  # the same second, an earlier phase
    record = events.record()
    assert record.phase == TaskExecution.RUNNING and record.version == version
    assert events.push("FAILED", 30, statusReason="out of memory") == "applied"
    # an ended record is never touched: it left the job index as it ended, so the event finds none
    assert events.push("RUNNING", 40) == "unknown job"
    assert events.record().phase == TaskExecution.FAILED


def test_an_event_never_touches_a_deleted_task(events):
    events.world.delete(events.handle, TYPE)
    assert events.push("RUNNING", 1) == "unknown job"  # it left the job index as it ended
    assert events.push("FAILED", 2, statusReason=CANCEL_REASON) == "unknown job"
    record = events.record()
    assert record.phase == TaskExecution.ABORTED and "deleted" in record.notes


def test_events_about_other_jobs_or_other_things_change_nothing(events):
    before = events.record()
    assert events.push("RUNNING", 1, jobId="not-a-job-of-this-service") == "unknown job"
    assert asyncio.run(events.receiver.receive({"source": "aws.batch"})) == "malformed"
    other = {**events.event("RUNNING", 1), "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}
    assert asyncio.run(events.receiver.receive(other)) == "not ours"
    assert events.record().version == before.version


def test_past_the_safety_interval_a_poll_reads_the_job(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=0.02, status_read_interval_seconds=0.5)
    events = EventWorld(world)
    try:
        events.poll()
        assert events.push("RUNNING", 1) == "applied"
        assert events.poll() == ("RUNNING", 0)
        time.sleep(1.5)  # an event was lost: no news for longer than the safety interval
        assert events.poll()[1] == 1
    finally:
        world.release("batch::job")


def test_without_events_delivered_every_poll_reads_as_before(aws_world):
    world = aws_world(AwsBatchJobConnector())  # status_safety_read_minutes 0: no events delivered
    events = EventWorld(world)
    try:
        assert events.push("RUNNING", 1) == "applied"  # a stray event is still applied
        assert events.poll()[1] == 1
        assert events.poll()[1] == 1
    finally:
        world.release("batch::job")
