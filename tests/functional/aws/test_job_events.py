"""Every AWS connector's state-change events keep its tasks' records current (issue 19).

Through the served app against the fake AWS, per connector: tasks are created from its example
(examples/<task type>.json), their jobs held in their first state; events shaped as the service
documents them (tests/aws_job_events.py), naming the real job, are handed to the receiver as the
StatusEventsFunction hands them; the fake AWS counts the status reads (the connector's ``get``
calls) each poll makes. An event the connector cannot read fully makes the status due: the next
poll reads the job, once.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws import aws_connector_class
from connectors.event_receiver import EventReceiver
from connectors.store import ACTIVE
from tests.aws_job_events import DETAILS, as_event_json, envelope
from tests.flyte_requests import execution_metadata

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
NOT_BY_US = "the job was stopped, not by this service"
ABSENT = object()  # a field of the describe answer the event leaves out


@dataclass(frozen=True)
class Step:
    """An event about the task's job, what the receiver answers, and what the record then says."""

    state: str
    outcome: str  # "applied": the record tells ``phase`` with ``says`` in its message; "due": a poll reads
    phase: str = ""
    says: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # fields beside the documented ones


def applied(state: str, phase: str, says: str = "", **detail: Any) -> Step:
    return Step(state, "applied", phase, says, detail)


def due(state: str, **detail: Any) -> Step:
    return Step(state, "due", detail=detail)


ATHENA_ERROR = {"errorCategory": 2.0, "errorType": 1306.0, "errorMessage": "Amazon S3 bucket not found"}
TRAINING_FAILED = "AlgorithmError: framework error: ExitCode 1"
SFN_FAILED = {"error": "States.TaskFailed", "cause": "the enrichment broke"}
# task type -> (moto's model held in its first state, the scenarios: each one task's events in order)
SCENARIOS: dict[str, tuple[str | None, list[list[Step]]]] = {
    "athena_query": (
        "athena::execution",
        [
            [
                applied("RUNNING", "RUNNING", "Athena query running"),
                applied(
                    "FAILED", "FAILED", "Amazon S3 bucket not found", athenaError={**ATHENA_ERROR, "retryable": False}
                ),
            ],
            [applied("FAILED", "RETRYABLE_FAILED", "bucket", athenaError={**ATHENA_ERROR, "retryable": True})],
            [due("CANCELLED")],  # no StateChangeReason: who cancelled it, and why, is the poll's to read
            [due("FAILED")],  # an older event, with no athenaError: retryable or not is the poll's to read
            [applied("RUNNING", "RUNNING"), due("SUCCEEDED")],
        ],
    ),
    "redshift_query": (  # the Data API sends events as a statement ends only, and none with its Error:
        # the poll reads why it failed or who aborted it
        "redshiftdata::statement",
        [[due("ABORTED")], [due("FAILED")], [due("FINISHED")]],
    ),
    "sfn_execution": (
        None,
        [
            [
                applied("RUNNING", "RUNNING"),
                applied("FAILED", "FAILED", "States.TaskFailed: the enrichment broke", **SFN_FAILED),
            ],
            [applied("TIMED_OUT", "FAILED", "States.Timeout", error="States.Timeout")],
            [applied("ABORTED", "FAILED", NOT_BY_US)],
            [due("SUCCEEDED")],
        ],
    ),
    "emr_serverless_job": (
        "emr-serverless::job-run",
        [
            [
                applied("RUNNING", "RUNNING"),
                applied("FAILED", "FAILED", "ExitCode: 1", stateDetails="Job failed, please check logs. ExitCode: 1."),
            ],
            [applied("FAILED", "RETRYABLE_FAILED", "capacity", stateDetails="Insufficient capacity to run the job")],
            [applied("CANCELLED", "FAILED", NOT_BY_US)],
            [due("FAILED")],  # no stateDetails: whether AWS's own trouble failed it is the poll's to read
            [due("SUCCESS")],
        ],
    ),
    "sagemaker_training_job": (
        "sagemaker::training-job",
        [
            [
                applied("InProgress", "INITIALIZING", SecondaryStatus="Starting"),
                applied("InProgress", "RUNNING", SecondaryStatus="Training"),
                applied("Failed", "FAILED", TRAINING_FAILED, SecondaryStatus="Failed", FailureReason=TRAINING_FAILED),
            ],
            [applied("Failed", "RETRYABLE_FAILED", "capacity", FailureReason="CapacityError: no ml.m5 capacity")],
            [applied("Stopped", "FAILED", NOT_BY_US, SecondaryStatus="Stopped")],
            [applied("Stopped", "FAILED", "MaxRuntimeInSeconds", SecondaryStatus="MaxRuntimeExceeded")],
            [due("Failed", FailureReason=ABSENT), due("InProgress", SecondaryStatus=ABSENT)],
            [due("Completed", SecondaryStatus="Completed")],
        ],
    ),
    "sagemaker_processing_job": (
        "sagemaker::processing-job",
        [
            [
                applied("InProgress", "RUNNING"),
                applied("Failed", "FAILED", "ClientError", FailureReason="ClientError: exit 2"),
            ],
            [applied("Stopped", "FAILED", NOT_BY_US)],
            [due("Failed")],
            [due("Completed")],
        ],
    ),
    "glue_job": (  # Glue sends "Glue Job State Change" as a run ends only
        "glue::job_run",
        [
            [applied("TIMEOUT", "FAILED", "Job run timeout")],
            [applied("STOPPED", "FAILED", NOT_BY_US)],
            [due("FAILED")],  # retryable or not is read from the run's ErrorMessage
            [due("SUCCEEDED")],
        ],
    ),
}
# The describe answer an event's detail is documented to be (laid under the documented fields).
DESCRIBED: dict[str, Callable[[Any, Any], Any]] = {
    "sfn_execution": lambda world, meta: world.boto("stepfunctions").describe_execution(
        executionArn=meta.execution_arn
    ),
    "sagemaker_training_job": lambda world, meta: world.boto("sagemaker").describe_training_job(
        TrainingJobName=meta.job_name
    ),
    "sagemaker_processing_job": lambda world, meta: world.boto("sagemaker").describe_processing_job(
        ProcessingJobName=meta.job_name
    ),
}


class EventTask:
    """A task created from its type's example, and the events and polls about its job."""

    def __init__(self, world: Any, receiver: EventReceiver, task_type: str) -> None:
        self.world, self.receiver, self.task_type = world, receiver, task_type
        request = json_format.Parse((EXAMPLES / f"{task_type}.json").read_text(), pb.CreateTaskRequest())
        request.task_execution_metadata.CopyFrom(execution_metadata())
        self.handle = world.create(request)
        self.meta = aws_connector_class(task_type).metadata_type.decode(self.record().resource_meta)
        describe = DESCRIBED.get(task_type)
        self.described = as_event_json(describe(world, self.meta)) if describe else {}

    def record(self) -> Any:
        return self.world.record(self.handle)

    def push(self, step: Step, second: int) -> str:
        detail = {**self.described, **DETAILS[self.task_type](self.meta, step.state), **step.detail}
        detail = {key: value for key, value in detail.items() if value is not ABSENT}
        event = envelope(aws_connector_class(self.task_type), detail, second)
        return asyncio.run(self.receiver.receive(event))

    def reads(self) -> int:
        counts = self.world._post("/moto-api/fake-aws/faults", {})["counts"]
        gets = aws_connector_class(self.task_type).iam_actions["get"]
        return sum(counts.get(action, {}).get("calls", 0) for action in gets)

    def poll(self) -> tuple[str, int]:
        """The phase GetTask answers, and the status reads it made."""
        before = self.reads()
        phase = TaskExecution.Phase.Name(self.world.poll(self.handle, self.task_type).phase)
        return phase, self.reads() - before


@pytest.mark.parametrize("task_type", sorted(SCENARIOS))
def test_events_tell_the_record_what_get_would_and_polls_read_nothing(aws_world, task_type):
    model, scenarios = SCENARIOS[task_type]
    world = aws_world(
        aws_connector_class(task_type)(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0
    )
    receiver = EventReceiver(world.service)
    if model:
        world.hold(model)
    try:
        for scenario in scenarios:
            task = EventTask(world, receiver, task_type)
            for second, step in enumerate(scenario, 1):
                assert task.push(step, second) == step.outcome, step
                if step.outcome == "due":
                    assert task.poll()[1] == 1, step  # the job is read, once
                    if task.record().state == ACTIVE:  # (a SUCCEEDED task's poll reads its outputs)
                        assert task.poll()[1] == 0, step  # then the status read is fresh
                    continue
                record = task.record()
                assert TaskExecution.Phase.Name(record.phase) == step.phase, (step, record.message)
                assert step.says in record.message, (step, record.message)
                assert task.poll() == (step.phase, 0), step
    finally:
        if model:
            world.release(model)
