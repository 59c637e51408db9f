"""sagemaker_processing_job through the served app against moto's SageMaker over HTTP."""

from __future__ import annotations

import asyncio
import pathlib
import time
import uuid

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors import literals
from connectors.builtin.aws.sagemaker_jobs import NAME_PATTERN, TOKEN_TAG, job_name
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector, SageMakerProcessingJobMeta
from connectors.dev.aws_resources.sagemaker_processing_job import CODE, FEATURES
from connectors.dev.aws_resources.sagemaker_training_job import ROLE
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import DIR, FILE, FLOAT, STR

TYPE = "sagemaker_processing_job"
MODEL = "sagemaker::processing-job"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE}"
EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "sagemaker_processing_job.json"
REPORT = "s3://flyte-examples/sagemaker/report"


def output(name: str, uri: str) -> dict:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/output/{name}", "S3UploadMode": "EndOfJob"},
    }


def custom(**extra):
    return {
        "app_specification": {"ImageUri": "sklearn:1.2-1", "ContainerEntrypoint": ["python3", "run.py"]},
        "role_arn": ROLE_ARN,
        "processing_resources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        "processing_outputs": [output("features", FEATURES), output("report", REPORT)],
        **extra,
    }


def token_of(request: pb.CreateTaskRequest) -> str:
    return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()


def meta_of(world, handle: bytes) -> SageMakerProcessingJobMeta:
    return SageMakerProcessingJobMeta.decode(world.record(handle).resource_meta)


def described(world, handle: bytes) -> dict:
    """The job as DescribeProcessingJob answers it (which, in the fake, moves it on)."""
    return world.boto("sagemaker").describe_processing_job(ProcessingJobName=meta_of(world, handle).job_name)


def jobs_named(world, text: str) -> set[str]:
    found = world.boto("sagemaker").list_processing_jobs(NameContains=text, MaxResults=100)["ProcessingJobSummaries"]
    return {job["ProcessingJobName"] for job in found}


def test_a_processing_job_runs_to_success_and_its_s3_outputs_are_the_dir_outputs(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    code_input = {
        "InputName": "code",
        "S3Input": {
            "S3Uri": CODE,
            "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }
    request = world.request(
        TYPE,
        custom(
            processing_inputs=[code_input],
            environment={"LOG_LEVEL": "info"},
            stopping_condition={"MaxRuntimeInSeconds": 600},
            tags={"team": "ml"},
        ),
        inputs={
            "raw": (DIR, literals.DirRef(uri="s3://flyte-examples/raw/")),
            "scale": (FLOAT, 0.5),
            "mode": (STR, "fast"),
        },
        outputs={"features": DIR, "report": DIR},
    )
    handle = world.create(request)
    name = meta_of(world, handle).job_name
    assert name == job_name(token_of(request), request.task_execution_metadata) and NAME_PATTERN.match(name)
    job = described(world, handle)
    assert job["ProcessingInputs"] == [
        code_input,
        {
            "InputName": "raw",
            "S3Input": {
                "S3Uri": "s3://flyte-examples/raw/",
                "LocalPath": "/opt/ml/processing/input/raw",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        },
    ]
    assert job["Environment"] == {"LOG_LEVEL": "info", "scale": "0.5", "mode": "fast"}
    assert job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    tags = world.boto("sagemaker").list_tags(ResourceArn=job["ProcessingJobArn"])["Tags"]
    assert {"Key": TOKEN_TAG, "Value": token_of(request)} in tags and {"Key": "team", "Value": "ml"} in tags
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert world.outputs(resource, {"features": DIR, "report": DIR}) == {
        "features": literals.DirRef(uri=FEATURES),
        "report": literals.DirRef(uri=REPORT),
    }
    assert resource.custom_info["status"] == "Completed" and resource.custom_info["job_name"] == name
    assert f"#/processing-jobs/{name}" in resource.log_links[0].uri and "ProcessingJobs" in resource.log_links[1].uri


@pytest.mark.parametrize(
    "outputs, needle",
    [
        ({"other": DIR}, "output 'other' must be a directory named like an S3 output's OutputName"),
        ({"features": FILE}, "output 'features' must be a directory"),
        ({"features": STR}, "output 'features' must be a directory"),
    ],
)
def test_a_declared_output_no_processing_output_fills_is_invalid_argument(aws_world, outputs, needle):
    world = aws_world(SageMakerProcessingJobConnector())
    request = world.request(TYPE, custom(), outputs=outputs)
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message and "features, report" in error.message
    assert jobs_named(world, token_of(request)) == set()


def test_get_task_logs_reads_the_jobs_cloudwatch_streams(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    handle = world.create(world.request(TYPE, custom()))
    name, group, logs = meta_of(world, handle).job_name, "/aws/sagemaker/ProcessingJobs", world.boto("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=f"{name}/algo-1-1234")
    logs.put_log_events(
        logGroupName=group,
        logStreamName=f"{name}/algo-1-1234",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "preprocessing"}],
    )
    assert world.logs(handle, TYPE) == ["preprocessing"]


def test_a_running_job_is_stopped_by_delete_and_ends_aborted(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    world.hold(MODEL)
    try:
        handle = world.create(world.request(TYPE, custom()))
        assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING  # InProgress
        world.delete(handle, TYPE)
        connector, meta = SageMakerProcessingJobConnector(), meta_of(world, handle)
        stopping = asyncio.run(connector.get(meta))
        assert stopping.phase == TaskExecution.RUNNING and stopping.custom_info["status"] == "Stopping"
        asyncio.run(connector.delete(meta))  # already stopping: quiet
        stopped = asyncio.run(connector.get(meta))
        assert stopped.phase == TaskExecution.ABORTED and stopped.custom_info["status"] == "Stopped"
        asyncio.run(connector.delete(meta))  # stopped: quiet
    finally:
        world.release(MODEL)


def test_deleting_a_job_that_already_ended_in_sagemaker_is_quiet_and_changes_nothing(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    handle = world.create(world.request(TYPE, custom()))  # the fake's job ends at once; no poll saw it
    world.delete(handle, TYPE)  # StopProcessingJob is refused (status Completed): the connector checks and is quiet
    assert described(world, handle)["ProcessingJobStatus"] == "Completed"


@pytest.mark.parametrize(
    "reason, phase",
    [
        ("AlgorithmError: See job logs for more information", TaskExecution.FAILED),
        ("CapacityError: Unable to provision requested ML compute capacity.", TaskExecution.RETRYABLE_FAILED),
        ("InternalServerError: We encountered an internal error. Please try again.", TaskExecution.RETRYABLE_FAILED),
    ],
)
def test_a_failed_job_is_failed_with_its_reason_and_retryable_on_capacity_or_internal_errors(aws_world, reason, phase):
    world = aws_world(SageMakerProcessingJobConnector())
    handle = world.create(world.request(TYPE, custom(), outputs={"features": DIR}))
    world.fate("sagemaker", meta_of(world, handle).job_name, "Failed", reason)
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and resource.message == reason and not resource.outputs.literals
    asyncio.run(SageMakerProcessingJobConnector().delete(meta_of(world, handle)))  # failed: quiet


def test_a_create_retried_after_a_crash_adopts_the_job_it_started(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    request = world.request(TYPE, custom())
    token = token_of(request)
    first = world.first_try(SageMakerProcessingJobConnector(), request)
    handle = world.create(request)
    assert jobs_named(world, token) == {first.job_name} == {meta_of(world, handle).job_name}


def test_a_job_of_that_name_without_the_attempts_token_is_failed_precondition_naming_it(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    request = world.request(TYPE, custom())
    name = job_name(token_of(request), request.task_execution_metadata)
    world.boto("sagemaker").create_processing_job(
        ProcessingJobName=name,
        AppSpecification={"ImageUri": "other"},
        RoleArn=ROLE_ARN,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
    )
    error = world.error(world.create, request)
    assert error.code == Code.FAILED_PRECONDITION and name in error.message and TOKEN_TAG in error.message


def test_a_newer_attempt_stops_the_older_attempts_job(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    world.hold(MODEL)
    try:
        run = f"smp-supersede-{uuid.uuid4().hex[:8]}"
        first = world.create(world.request(TYPE, custom(), run=run))
        second = world.create(world.request(TYPE, custom(), run=run, attempt=1))
        assert described(world, first)["ProcessingJobStatus"] in ("Stopping", "Stopped")
        assert described(world, second)["ProcessingJobStatus"] == "InProgress"
    finally:
        world.release(MODEL)


@pytest.mark.parametrize(
    "fields, inputs, needle",
    [
        ({"app_specification": None}, {}, "template.custom.app_specification is required"),
        ({"role_arn": None}, {}, "template.custom.role_arn is required"),
        ({"processing_resources": None}, {}, "template.custom.processing_resources is required"),
        ({"processing_outputs": {"features": FEATURES}}, {}, "template.custom.processing_outputs must be a list"),
        ({"environment": {"N": 1}}, {}, "template.custom.environment.N must be a string"),
        ({"network_config": "vpc"}, {}, "template.custom.network_config must be an object"),
        ({"tags": {TOKEN_TAG: "mine"}}, {}, f"template.custom.tags may not set {TOKEN_TAG}"),
        (
            {"processing_inputs": [{"InputName": "raw"}]},
            {"raw": (DIR, literals.DirRef(uri="s3://b/raw/"))},
            "already has an input named 'raw'",
        ),
        ({}, {"raw": (DIR, literals.DirRef(uri="gs://b/raw/"))}, "input 'raw' is at 'gs://b/raw/'"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, fields, inputs, needle):
    world = aws_world(SageMakerProcessingJobConnector())
    given = {key: value for key, value in custom(**fields).items() if value is not None}
    error = world.error(world.create, world.request(TYPE, given, inputs=inputs))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_the_job_is_its_code_by_kind_with_awss_message(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    error = world.error(world.create, world.request(TYPE, custom(app_specification={"ContainerEntrypoint": ["x"]})))
    assert error.code == Code.INVALID_ARGUMENT and "sagemaker CreateProcessingJob" in error.message
    assert "ImageUri" in error.message


def test_the_example_runs_to_success_unchanged(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    resource = world.wait(world.create(request), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource
    assert world.outputs(resource, {"features": DIR}) == {"features": literals.DirRef(uri=FEATURES)}
