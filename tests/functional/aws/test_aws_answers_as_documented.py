"""AWS's answers that moto never gives, as botocore's service models document them, sent to the
served app by a scripted endpoint on loopback (issue 17): the connector must read them as AWS
means them.

- Glue's ``OperationTimeoutException`` ("The operation timed out") from StartJobRun: the run may
  have started, so CreateTask's outcome is unknown (``unavailable``): the record keeps its claim
  for the look-up and settle hold a lost answer gets, never ended as a clean refusal.
- Redshift Data's ``ActiveStatementsExceededException`` (HTTP 400, "The number of active
  statements exceeds the limit"): a quota, ``resource_exhausted``, not ``invalid_argument``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.glue import GlueJobConnector
from connectors.builtin.aws.redshift import RedshiftQueryConnector
from connectors.errors import Code
from connectors.store import CLAIMED
from tests.aws_world import task_request
from tests.scripted_endpoint import scripted_endpoint


@pytest.fixture
def endpoint(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:

        def serve(service_env: str, error_type: str) -> None:
            """Every call answers one JSON error, as AWS's json protocol writes it (HTTP 400)."""
            body = json.dumps({"__type": error_type, "message": "scripted by the test"}).encode()
            stack.enter_context(scripted_endpoint(monkeypatch, service_env, 400, "application/x-amz-json-1.1", body))

        yield serve


def test_a_glue_start_that_timed_out_is_an_unknown_outcome_not_a_refusal(aws_world, endpoint):
    endpoint("AWS_ENDPOINT_URL_GLUE", "OperationTimeoutException")
    world = aws_world(GlueJobConnector())
    request = task_request("glue_job", {"job_name": "nightly"})
    error = world.error(world.create, request)
    assert error.code == Code.UNAVAILABLE and "OperationTimeoutException" in error.message
    (record,) = world.records(
        request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name
    ).values()
    assert record.state == CLAIMED and record.create_error == Code.UNAVAILABLE.value  # kept for the look-up


def test_redshift_datas_active_statement_quota_is_resource_exhausted(aws_world, endpoint):
    endpoint("AWS_ENDPOINT_URL_REDSHIFT_DATA", "ActiveStatementsExceededException")
    world = aws_world(RedshiftQueryConnector())
    custom = {"query": "select 1", "database": "dev", "cluster_identifier": "flyte-example", "db_user": "flyte"}
    error = world.error(world.create, task_request("redshift_query", custom))
    assert error.code == Code.RESOURCE_EXHAUSTED and "ActiveStatementsExceededException" in error.message


# -- SageMaker: statuses and secondary statuses moto never reports (botocore's model) -----------


def sagemaker_status(found: dict[str, Any]) -> tuple[int, str, str]:
    from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector

    return SageMakerTrainingJobConnector().status(found)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "secondary, limit", [("MaxRuntimeExceeded", "MaxRuntimeInSeconds"), ("MaxWaitTimeExceeded", "MaxWaitTimeInSeconds")]
)
def test_a_training_job_stopped_by_its_own_stopping_condition_failed_and_names_its_artifact(secondary, limit):
    """TrainingJobStatus Stopped with SecondaryStatus MaxRuntimeExceeded: SageMaker stopped it at
    the limit the connector sets by default (24 h). Not a cancel: FAILED, the artifact SageMaker
    documents as saved named in the message (the task's declared output stays unset: a model cut
    off by its time limit is not the task's result)."""
    phase, status, message = sagemaker_status(
        {
            "TrainingJobStatus": "Stopped",
            "SecondaryStatus": secondary,
            "ModelArtifacts": {"S3ModelArtifacts": "s3://models/train-1/output/model.tar.gz"},
        }
    )
    assert phase == TaskExecution.FAILED and status == "Stopped"
    assert limit in message and "s3://models/train-1/output/model.tar.gz" in message


def test_a_training_job_being_deleted_is_failed_not_a_poll_error():
    phase, _, message = sagemaker_status({"TrainingJobStatus": "Deleting", "SecondaryStatus": "Deleting"})
    assert phase == TaskExecution.FAILED and "deleted" in message


def test_a_training_job_stopped_by_a_stop_call_is_still_aborted_by_the_connector():
    phase, _, _ = sagemaker_status({"TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped"})
    assert phase == TaskExecution.ABORTED  # the service decides, from its record, who stopped it


# -- Batch: an array job's parent (botocore's model: it stays PENDING while its children run) ----


def test_an_array_parent_pending_while_its_children_run_is_running(aws_endpoint, monkeypatch):
    """The model: "Array job parents are updated to PENDING when any child job is updated to
    RUNNABLE and remain in PENDING status while child jobs are running." The child status summary
    (arrayProperties.statusSummary) says the job runs: RUNNING, with the counts in the message."""
    import asyncio

    from connectors.builtin.aws.batch import AwsBatchJobConnector, AwsBatchJobMeta

    described = {
        "jobs": [
            {
                "jobId": "parent-1",
                "jobName": "nightly",
                "jobQueue": "queue",
                "status": "PENDING",
                "startedAt": 1,
                "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/train:1",
                "arrayProperties": {"size": 10, "statusSummary": {"RUNNING": 3, "SUCCEEDED": 2, "RUNNABLE": 5}},
            }
        ]
    }
    meta = AwsBatchJobMeta(job_id="parent-1", job_name="nightly", job_queue="queue")
    with scripted_endpoint(
        monkeypatch, "AWS_ENDPOINT_URL_BATCH", 200, "application/json", json.dumps(described).encode()
    ):
        running = asyncio.run(AwsBatchJobConnector().get(meta))
        described["jobs"][0]["arrayProperties"]["statusSummary"] = {"RUNNABLE": 10}
    assert running.phase == TaskExecution.RUNNING
    assert "5 of 10 children started" in running.message and "RUNNING 3" in running.message
    with scripted_endpoint(
        monkeypatch, "AWS_ENDPOINT_URL_BATCH", 200, "application/json", json.dumps(described).encode()
    ):
        waiting = asyncio.run(AwsBatchJobConnector().get(meta))
    assert waiting.phase == TaskExecution.QUEUED  # no child has started: still queued
