"""handlers/status_events.py in-process, with SQS batches shaped as Lambda's event source sends them.

Against the local DynamoDB (the ``lambda_environment`` table the handlers use): a Batch task's
record, created as CreateTask leaves it (its job's key indexed), takes the phase a "Batch Job
State Change" event tells; a record whose event could not be applied (the store failed) is
reported in ``batchItemFailures`` and so delivered again, a body that is no event is dropped
(not reported), records not started before the invocation's end are reported; each record
counts once in ``flyte_connector_status_events_total`` by outcome.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from collections import Counter
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin import builtin_connectors
from connectors.builtin.aws.batch import AwsBatchJobMeta
from connectors.dev import status_event_samples as samples
from connectors.errors import unavailable
from connectors.event_queue import receive_records
from connectors.event_receiver import EventReceiver
from connectors.registry import ConnectorRegistry, LazyConnector
from connectors.runtime import build_service
from connectors.settings import Settings
from connectors.store import TaskExecutionKey, TaskRecord, TaskStore
from tests import aws_job_events
from tests.conftest import NAMESPACE, LambdaContext


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    """One record of an SQS event as Lambda's event source mapping delivers it."""
    return samples.sqs_record(body, message_id or str(uuid.uuid4()))


def batch_event(job_id: str, status: str, second: int = 0, **detail: Any) -> dict[str, Any]:
    """A "Batch Job State Change" event as EventBridge puts it on the queue (its detail is the job
    as DescribeJobs describes it)."""
    job = {
        "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/{job_id}",
        "jobName": "flyte-job",
        "jobId": job_id,
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/flyte",
        "status": status,
        "attempts": [],
        "createdAt": 1795600790000,
        "retryStrategy": {"attempts": 1},
        "dependsOn": [],
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/flyte:1",
        "parameters": {},
        "container": {"image": "python:3.12", "command": ["python"], "vcpus": 1, "memory": 512},
    }
    return aws_job_events.batch_event(job, second, **detail)


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@pytest.fixture
def task_store(lambda_environment: str, dynamodb_client: Any) -> TaskStore:
    return TaskStore(lambda_environment, dynamodb_client)


def create_batch_task(task_store: TaskStore) -> tuple[TaskRecord, str]:
    """A Batch task's record as CreateTask leaves it: active, QUEUED, its job's key indexed."""
    job_id = str(uuid.uuid4())
    key = TaskExecutionKey(project="flytesnacks", domain="development", run=f"r{uuid.uuid4().hex[:12]}", action="a0")
    record = TaskRecord(
        action_id=key.action_digest().hex(),
        attempt=0,
        secret=uuid.uuid4().bytes,
        task_type="aws_batch_job",
        task_version=0,
        output_prefix=f"s3://flyte-data/{key.run}/a0",
        execution={"org": "", "project": key.project, "domain": key.domain, "run": key.run, "action": "a0"},
    )
    assert task_store.claim(record, lease_seconds=60).claimed
    meta = AwsBatchJobMeta(job_id=job_id, job_name="flyte-job", job_queue="flyte")
    created = task_store.finish_create(record, meta.encode(), TaskExecution.QUEUED, f"aws_batch_job#{job_id}")
    return created, job_id


def current(task_store: TaskStore, record: TaskRecord) -> TaskRecord:
    return task_store.load(record.handle)


def handler_module():
    return importlib.import_module("handlers.status_events")


def outcome_counts(stdout: str) -> Counter[str]:
    """``flyte_connector_status_events_total`` by outcome, from the EMF documents written."""
    counts: Counter[str] = Counter()
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        aws = document.get("_aws")
        if not aws or aws["CloudWatchMetrics"][0]["Namespace"] != NAMESPACE:
            continue
        if "flyte_connector_status_events_total" in document:
            value = document["flyte_connector_status_events_total"]
            counts[document["outcome"]] += int(sum(value) if isinstance(value, list) else value)
    return counts


def test_a_batch_event_moves_its_task_to_the_phase_it_tells(in_lambda, task_store, capsys) -> None:
    record, job_id = create_batch_task(task_store)
    capsys.readouterr()
    response = handler_module().handler(
        sqs_event(sqs_record(json.dumps(batch_event(job_id, "RUNNING", 1)))), LambdaContext()
    )
    assert response == {"batchItemFailures": []}
    updated = current(task_store, record)
    assert updated.phase == TaskExecution.RUNNING and updated.state == "active"
    assert updated.status_pushed_at is not None
    assert outcome_counts(capsys.readouterr().out) == {"applied": 1}

    # Its end: the record ends FAILED with the job's reason, and leaves the job index.
    failed = batch_event(job_id, "FAILED", 9, statusReason="Essential container in task exited")
    assert handler_module().handler(sqs_event(sqs_record(json.dumps(failed))), LambdaContext()) == {
        "batchItemFailures": []
    }
    ended = current(task_store, record)
    assert ended.state == "ended" and ended.phase == TaskExecution.FAILED
    assert "Essential container in task exited" in ended.message


def test_only_records_whose_event_could_not_be_applied_are_delivered_again(
    in_lambda, task_store, capsys, monkeypatch
) -> None:
    applied_task, applied_job = create_batch_task(task_store)
    failing_task, failing_job = create_batch_task(task_store)
    service = handler_module().receiver().service
    records_of_job = service.store.records_of_job

    def flaky(job_key: str, *args: Any, **kwargs: Any) -> list[TaskRecord]:
        if job_key.endswith(failing_job):
            raise unavailable("the task store is busy (ThrottlingException); retry")
        return records_of_job(job_key, *args, **kwargs)

    monkeypatch.setattr(service.store, "records_of_job", flaky)
    failing_id = "2e1424d4-f796-459a-8184-9c92662be6da"
    batch = sqs_event(
        sqs_record(json.dumps(batch_event(applied_job, "RUNNABLE", 1))),
        sqs_record(json.dumps(batch_event(failing_job, "RUNNING", 1)), failing_id),
        sqs_record("this is not an EventBridge event"),  # dropped: delivering it again would not help
        sqs_record("[1, 2]"),
        sqs_record(json.dumps({"source": "aws.batch", "detail-type": "Batch Job State Change"})),  # no detail
        sqs_record(json.dumps(batch_event("a-job-of-someone-else", "RUNNING", 1))),
        sqs_record(json.dumps({**batch_event(applied_job, "RUNNING", 1), "source": "aws.ec2"})),
    )
    capsys.readouterr()
    response = handler_module().handler(batch, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": failing_id}]}
    assert current(task_store, applied_task).phase == TaskExecution.WAITING_FOR_RESOURCES
    assert current(task_store, failing_task).phase == TaskExecution.QUEUED  # untouched: it comes again
    out = capsys.readouterr().out
    assert outcome_counts(out) == {"applied": 1, "failed": 1, "malformed": 3, "unknown_job": 1, "not_ours": 1}
    assert f"status event message {failing_id}" in out and "the queue delivers it again" in out  # its ERROR line

    # Delivered again once the store answers: applied.
    monkeypatch.setattr(service.store, "records_of_job", records_of_job)
    again = sqs_event(sqs_record(json.dumps(batch_event(failing_job, "RUNNING", 1)), failing_id))
    assert handler_module().handler(again, LambdaContext()) == {"batchItemFailures": []}
    assert current(task_store, failing_task).phase == TaskExecution.RUNNING


def test_records_not_started_before_the_invocation_ends_are_delivered_again(in_lambda, task_store) -> None:
    record, job_id = create_batch_task(task_store)

    class EndingContext(LambdaContext):
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 2000  # less than the reserve one event may need

    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = sqs_event(*(sqs_record(json.dumps(batch_event(job_id, "RUNNING", 1)), i) for i in ids))
    response = handler_module().handler(batch, EndingContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}
    assert current(task_store, record).phase == TaskExecution.QUEUED


def test_an_empty_batch_reports_nothing(in_lambda) -> None:
    assert handler_module().handler({"Records": []}, LambdaContext()) == {"batchItemFailures": []}


def test_a_disabled_connector_s_events_are_not_received(
    lambda_environment: str, dynamodb_client: Any, task_store: TaskStore
) -> None:
    """DISABLED_CONNECTORS leaves a connector out of the registry, and so out of the receiver: its
    events (a rule deleted while events were queued) change nothing."""
    record, job_id = create_batch_task(task_store)
    registry = ConnectorRegistry()
    for connector in builtin_connectors("aws_batch_job"):
        if isinstance(connector, LazyConnector):
            registry.register_lazy(connector)
        else:
            registry.register(connector)
    service = build_service(Settings(tasks_table=lambda_environment), dynamodb_client, registry)
    receiver = EventReceiver(service)
    assert {"source": ["aws.batch"], "detail-type": ["Batch Job State Change"]} not in receiver.patterns()
    response = asyncio.run(receive_records(receiver, [sqs_record(json.dumps(batch_event(job_id, "RUNNING", 1)))]))
    assert response == {"batchItemFailures": []}
    assert current(task_store, record).phase == TaskExecution.QUEUED
