"""AWS's answers that moto never gives, as botocore's service models document them, sent to the
served app by a scripted endpoint on loopback (issue 17): the connector must read them as AWS
means them. Where the fake AWS (connectors/dev/fake_aws) has since learnt to end a job that way,
the same ending from it, through the served app, stands beside the scripted one.

- Glue's ``OperationTimeoutException`` ("The operation timed out") from StartJobRun: the run may
  have started, so CreateTask's outcome is unknown (``unavailable``): the record keeps its claim
  for the look-up and settle hold a lost answer gets, never ended as a clean refusal.
- Redshift Data's ``ActiveStatementsExceededException`` (HTTP 400, "The number of active
  statements exceeds the limit"): a quota, ``resource_exhausted``, not ``invalid_argument``.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws.batch import AwsBatchJobConnector, AwsBatchJobMeta
from connectors.builtin.aws.glue import GlueJobConnector
from connectors.builtin.aws.redshift import RedshiftQueryConnector
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector, SageMakerTrainingJobMeta
from connectors.dev.aws_resources.aws_batch_job import JOB_DEFINITION, QUEUE
from connectors.dev.aws_resources.sagemaker_training_job import OUTPUT_PATH
from connectors.errors import Code
from connectors.store import CLAIMED
from tests.aws_world import task_request
from tests.scripted_endpoint import scripted_endpoint

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"


def example(task_type: str, **custom: Any) -> Any:
    """``examples/<task_type>.json`` as a new run (its own name, so its own job), ``custom`` over its template's."""
    request = json_format.Parse((EXAMPLES / f"{task_type}.json").read_text(), pb.CreateTaskRequest())
    request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = f"r{uuid.uuid4().hex[:12]}"
    request.template.custom.update(custom)
    return request


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
    custom = {"query": "select 1", "database": "dev", "cluster_identifier": "flyte-example"}
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


def training_job(world: Any, handle: bytes) -> dict[str, Any]:
    name = SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name
    return world.boto("sagemaker").describe_training_job(TrainingJobName=name)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "secondary, limit, saved",
    [
        ("MaxRuntimeExceeded", "MaxRuntimeInSeconds", True),
        ("MaxWaitTimeExceeded", "MaxWaitTimeInSeconds", True),
        ("MaxRuntimeExceeded", "MaxRuntimeInSeconds", False),  # saving it is "only a best effort case"
    ],
)
def test_on_the_fake_aws_a_training_job_stopped_by_its_stopping_condition_failed_naming_its_artifact(
    aws_world, secondary, limit, saved
):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(example("sagemaker_training_job"))
    name = SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name
    world.fate("sagemaker", name, "Stopped", secondary_status=secondary, **({} if saved else {"model_artifacts": ""}))
    resource = world.wait(handle, "sagemaker_training_job")
    artifact = f"{OUTPUT_PATH}/{name}/output/model.tar.gz"  # S3OutputPath/<job name>/output/model.tar.gz
    assert resource.phase == TaskExecution.FAILED and limit in resource.message
    assert (artifact in resource.message) == saved and ("model artifact" in resource.message) == saved
    assert "not by this service" not in resource.message  # the connector knows who stopped it: its limit
    assert resource.custom_info["secondary_status"] == secondary and not resource.outputs.literals
    assert training_job(world, handle).get("ModelArtifacts", {}).get("S3ModelArtifacts") == (
        artifact if saved else None
    )


def test_on_the_fake_aws_a_training_job_past_its_max_runtime_is_stopped_by_sagemaker_itself(aws_world):
    """Held running (a fate of InProgress) past StoppingCondition.MaxRuntimeInSeconds (1 s):
    SageMaker ends it, Stopping then Stopped with SecondaryStatus MaxRuntimeExceeded."""
    world = aws_world(SageMakerTrainingJobConnector())
    request = example("sagemaker_training_job", stopping_condition={"MaxRuntimeInSeconds": 1})
    handle = world.create(request)
    world.fate("sagemaker", SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name, "InProgress")
    assert world.poll(handle, "sagemaker_training_job").phase == TaskExecution.RUNNING
    resource = world.wait(handle, "sagemaker_training_job", timeout=15)
    assert resource.phase == TaskExecution.FAILED and "MaxRuntimeInSeconds (MaxRuntimeExceeded)" in resource.message
    found = training_job(world, handle)
    assert (found["TrainingJobStatus"], found["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_on_the_fake_aws_a_training_job_being_deleted_is_failed(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(example("sagemaker_training_job"))
    world.fate("sagemaker", SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name, "Deleting")
    resource = world.wait(handle, "sagemaker_training_job")
    assert resource.phase == TaskExecution.FAILED and "being deleted (not by this service)" in resource.message
    assert resource.custom_info["status"] == "Deleting"


def test_on_the_fake_aws_delete_training_job_of_an_ended_job_is_deleting_then_gone(aws_world):
    """The model: "You can delete only training jobs that are in a terminal state ... You cannot
    delete a job that is in the InProgress or Stopping state"; then "all of the metadata for the
    training job is lost". Someone deletes the job between its end and the next poll."""
    world = aws_world(SageMakerTrainingJobConnector())
    running = world.create(example("sagemaker_training_job"))
    name = SageMakerTrainingJobMeta.decode(world.record(running).resource_meta).job_name
    world.fate("sagemaker", name, "InProgress")
    sagemaker = world.boto("sagemaker")
    with pytest.raises(ClientError) as refused:
        sagemaker.delete_training_job(TrainingJobName=name)
    assert refused.value.response["Error"]["Code"] == "ResourceInUse"
    handle = world.create(example("sagemaker_training_job"))  # Completed at once on the fake
    name = SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name
    sagemaker.delete_training_job(TrainingJobName=name)
    resource = world.wait(handle, "sagemaker_training_job")
    assert resource.phase == TaskExecution.FAILED and "being deleted" in resource.message
    with pytest.raises(ClientError) as gone:
        sagemaker.describe_training_job(TrainingJobName=name)
    assert "Could not find" in gone.value.response["Error"]["Message"]


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


def test_on_the_fake_aws_an_array_parent_pending_while_its_children_run_is_running_then_ends_by_them(aws_world):
    """A fate of RUNNING for the parent's id holds each child RUNNING: the parent is PENDING with
    the children counted in arrayProperties.statusSummary, and GetTask answers RUNNING. One child
    failing leaves the parent PENDING while the others run; once they end, the parent is FAILED."""
    world = aws_world(AwsBatchJobConnector())
    request = task_request("aws_batch_job", {"job_queue": QUEUE, "job_definition": JOB_DEFINITION, "array_size": 3})
    handle = world.create(request)
    parent = AwsBatchJobMeta.decode(world.record(handle).resource_meta).job_id
    world.fate("batch", parent, "RUNNING")
    running = polled_until(world, handle, "(RUNNING 3)")  # STARTING first: started too
    assert running.phase == TaskExecution.RUNNING and "3 of 3 children started" in running.message
    assert running.custom_info["status"] == "PENDING"
    world.fate("batch", f"{parent}:1", "FAILED", "Essential container in task exited", exit_code=2)
    running = polled_until(world, handle, "FAILED 1")
    assert running.phase == TaskExecution.RUNNING and "(FAILED 1, RUNNING 2)" in running.message
    world.fate("batch", parent, "SUCCEEDED")  # the other two children end well
    ended = world.wait(handle, "aws_batch_job")
    assert ended.phase == TaskExecution.FAILED and "Essential container in task exited" in ended.message
    assert ended.custom_info["array_status_summary"]["SUCCEEDED"] == 2
    children = world.boto("batch").list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(children) == 2


def polled_until(world: Any, handle: bytes, words: str, polls: int = 30) -> Any:
    for _ in range(polls):
        resource = world.poll(handle, "aws_batch_job")
        if words in resource.message:
            return resource
    raise AssertionError(f"no poll said {words!r}: {resource.message}")
