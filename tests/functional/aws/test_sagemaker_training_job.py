"""sagemaker_training_job through the served app against moto's SageMaker over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
import uuid

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import literals
from connectors.builtin.aws.sagemaker_jobs import NAME_PATTERN, TOKEN_TAG, job_name
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector, SageMakerTrainingJobMeta
from connectors.dev.aws_resources.sagemaker_training_job import OUTPUT_PATH, ROLE, TRAIN_DATA
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import FILE, FLOAT, INT, STR
from tests.flyte_requests import execution_metadata

TYPE = "sagemaker_training_job"
MODEL = "sagemaker::training-job"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE}"
EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "sagemaker_training_job.json"
GROUP = "/aws/sagemaker/TrainingJobs"


def custom(**extra):
    return {
        "algorithm_specification": {"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File"},
        "role_arn": ROLE_ARN,
        "output_path": OUTPUT_PATH,
        "resource_config": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        **extra,
    }


def token_of(request: pb.CreateTaskRequest) -> str:
    return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()


def name_of(request: pb.CreateTaskRequest) -> str:
    return job_name(token_of(request), request.task_execution_metadata)


def meta_of(world, handle: bytes) -> SageMakerTrainingJobMeta:
    return SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta)


def described(world, handle: bytes) -> dict:
    """The job as DescribeTrainingJob answers it (which, in the fake, moves it on)."""
    return world.boto("sagemaker").describe_training_job(TrainingJobName=meta_of(world, handle).job_name)


def jobs_named(world, text: str) -> set[str]:
    found = world.boto("sagemaker").list_training_jobs(NameContains=text, MaxResults=100)["TrainingJobSummaries"]
    return {job["TrainingJobName"] for job in found}


def test_a_training_job_runs_to_success_and_its_model_artifact_is_the_file_output(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    request = world.request(
        TYPE,
        custom(
            hyperparameters={"objective": "binary:logistic"},
            environment={"A": "b"},
            stopping_condition={"MaxRuntimeInSeconds": 600},
            tags={"team": "ml"},
        ),
        inputs={
            "train": (FILE, literals.FileRef(uri=TRAIN_DATA)),
            "max_depth": (INT, 5),
            "eta": (FLOAT, 0.3),
            "note": (STR, "first"),
        },
        outputs={"model": FILE},
        run=f"Train_Run.{uuid.uuid4().hex[:6]}",
    )
    handle = world.create(request)
    name = meta_of(world, handle).job_name
    assert name == name_of(request) and NAME_PATTERN.match(name) and name.endswith(token_of(request))
    job = described(world, handle)
    assert job["HyperParameters"] == {"objective": "binary:logistic", "max_depth": "5", "eta": "0.3", "note": "first"}
    assert job["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": TRAIN_DATA,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ]
    assert job["ResourceConfig"]["InstanceCount"] == 1 and job["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    tags = world.boto("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {"Key": TOKEN_TAG, "Value": token_of(request)} in tags and {"Key": "team", "Value": "ml"} in tags
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    artifact = f"{OUTPUT_PATH}/{name}/output/model.tar.gz"
    assert world.outputs(resource, {"model": FILE}) == {"model": literals.FileRef(uri=artifact)}
    assert resource.custom_info["job_name"] == name and resource.custom_info["model_artifacts"] == artifact
    assert resource.custom_info["status"] == "Completed"
    assert f"#/jobs/{name}" in resource.log_links[0].uri and "TrainingJobs" in resource.log_links[1].uri


def test_the_stopping_condition_defaults_to_a_day(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(world.request(TYPE, custom()))
    assert described(world, handle)["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}


@pytest.mark.parametrize("outputs", [{"model": FILE, "other": FILE}, {"model": FILE, "accuracy": FLOAT}])
def test_an_output_besides_the_model_artifact_is_invalid_argument_before_a_job_starts(aws_world, outputs):
    world = aws_world(SageMakerTrainingJobConnector())
    request = world.request(TYPE, custom(), outputs=outputs)
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT and "cannot be filled" in error.message and "'model'" in error.message
    assert jobs_named(world, token_of(request)) == set()


def test_get_task_logs_reads_the_jobs_cloudwatch_streams(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(world.request(TYPE, custom()))
    name = meta_of(world, handle).job_name
    assert world.logs(handle, TYPE) == []  # nothing logged yet: an empty page
    logs = world.boto("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    now = int(time.time() * 1000)
    for stream, lines in (
        (f"{name}/algo-1-1234", ["[0] train-auc:0.91", "[1] train-auc:0.95"]),
        (f"{name}x/algo-1-1234", ["another job's line"]),
    ):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )
    assert world.logs(handle, TYPE) == ["[0] train-auc:0.91", "[1] train-auc:0.95"]


def test_a_running_job_is_stopped_by_delete_and_ends_aborted(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    world.hold(MODEL)
    try:
        handle = world.create(world.request(TYPE, custom()))
        assert world.poll(handle, TYPE).phase == TaskExecution.INITIALIZING  # InProgress, Starting
        world.delete(handle, TYPE)
        connector, meta = SageMakerTrainingJobConnector(), meta_of(world, handle)
        stopping = asyncio.run(connector.get(meta))
        assert stopping.phase == TaskExecution.RUNNING and stopping.custom_info["status"] == "Stopping"
        asyncio.run(connector.delete(meta))  # already stopping: quiet
        stopped = asyncio.run(connector.get(meta))
        assert stopped.phase == TaskExecution.ABORTED and stopped.custom_info["status"] == "Stopped"
        asyncio.run(connector.delete(meta))  # stopped: quiet
    finally:
        world.release(MODEL)


def test_deleting_a_job_that_already_ended_in_sagemaker_is_quiet_and_changes_nothing(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(world.request(TYPE, custom()))  # the fake's job ends at once; no poll saw it
    world.delete(handle, TYPE)  # StopTrainingJob is refused (status Completed): the connector checks and is quiet
    assert described(world, handle)["TrainingJobStatus"] == "Completed"


@pytest.mark.parametrize(
    "secondary, phase",
    [
        ("Starting", TaskExecution.INITIALIZING),
        ("Downloading", TaskExecution.INITIALIZING),
        ("Training", TaskExecution.RUNNING),
        ("Uploading", TaskExecution.RUNNING),
    ],
)
def test_an_in_progress_job_is_initializing_until_it_trains(aws_world, secondary, phase):
    world = aws_world(SageMakerTrainingJobConnector())
    request = world.request(TYPE, custom())
    world.fate("sagemaker", name_of(request), "InProgress", secondary_status=secondary)
    resource = world.poll(world.create(request), TYPE)
    assert resource.phase == phase and secondary in resource.message


@pytest.mark.parametrize(
    "reason, phase",
    [
        ("AlgorithmError: ExecuteUserScriptError: division by zero", TaskExecution.FAILED),
        (
            "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance "
            "type.",
            TaskExecution.RETRYABLE_FAILED,
        ),
        ("InternalServerError: We encountered an internal error. Please try again.", TaskExecution.RETRYABLE_FAILED),
    ],
)
def test_a_failed_job_is_failed_with_its_reason_and_retryable_on_capacity_or_internal_errors(aws_world, reason, phase):
    world = aws_world(SageMakerTrainingJobConnector())
    handle = world.create(world.request(TYPE, custom(), outputs={"model": FILE}))
    world.fate("sagemaker", meta_of(world, handle).job_name, "Failed", reason)
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and resource.message == reason and not resource.outputs.literals
    asyncio.run(SageMakerTrainingJobConnector().delete(meta_of(world, handle)))  # failed: quiet


def test_a_create_retried_after_a_crash_adopts_the_job_it_started(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    request = world.request(TYPE, custom())
    token = token_of(request)
    # The first try created the job and died before its record was finished: the retry finds the
    # job of the attempt's name carrying the attempt's token tag and adopts it.
    first = world.first_try(SageMakerTrainingJobConnector(), request)
    handle = world.create(request)
    assert jobs_named(world, token) == {first.job_name} == {meta_of(world, handle).job_name}


def test_a_job_of_that_name_without_the_attempts_token_is_failed_precondition_naming_it(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    request = world.request(TYPE, custom())
    name = name_of(request)
    world.boto("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "other", "TrainingInputMode": "File"},
        RoleArn=ROLE_ARN,
        OutputDataConfig={"S3OutputPath": OUTPUT_PATH},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    error = world.error(world.create, request)
    assert error.code == Code.FAILED_PRECONDITION and name in error.message and TOKEN_TAG in error.message
    assert jobs_named(world, token_of(request)) == {name}


def test_a_newer_attempt_stops_the_older_attempts_job(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    world.hold(MODEL)
    try:
        run = f"sm-supersede-{uuid.uuid4().hex[:8]}"
        first = world.create(world.request(TYPE, custom(), run=run))
        second = world.create(world.request(TYPE, custom(), run=run, attempt=1))
        assert described(world, first)["TrainingJobStatus"] in ("Stopping", "Stopped")
        assert described(world, second)["TrainingJobStatus"] == "InProgress"
    finally:
        world.release(MODEL)


@pytest.mark.parametrize(
    "fields, inputs, needle",
    [
        ({"algorithm_specification": None}, {}, "template.custom.algorithm_specification is required"),
        ({"role_arn": None}, {}, "template.custom.role_arn is required"),
        ({"output_path": None}, {}, "template.custom.output_path is required"),
        ({"resource_config": None}, {}, "template.custom.resource_config is required"),
        ({"output_path": "/tmp/models"}, {}, "template.custom.output_path must be an s3:// URI"),
        ({"resource_config": "ml.m5.large"}, {}, "template.custom.resource_config must be an object"),
        ({"hyperparameters": {"depth": 5}}, {}, "template.custom.hyperparameters.depth must be a string"),
        ({"tags": {TOKEN_TAG: "mine"}}, {}, f"template.custom.tags may not set {TOKEN_TAG}"),
        ({"tags": [{"Key": "a"}]}, {}, "template.custom.tags must be a string map or a list of {Key, Value}"),
        (
            {"input_data_config": [{"ChannelName": "train"}]},
            {"train": (FILE, literals.FileRef(uri=TRAIN_DATA))},
            "already has a channel named 'train'",
        ),
        ({}, {"train": (FILE, literals.FileRef(uri="/local/train.csv"))}, "input 'train' is at '/local/train.csv'"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, fields, inputs, needle):
    world = aws_world(SageMakerTrainingJobConnector())
    given_fields = {key: value for key, value in custom(**fields).items() if value is not None}
    error = world.error(world.create, world.request(TYPE, given_fields, inputs=inputs))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_the_job_is_its_code_by_kind_with_awss_message(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    error = world.error(world.create, world.request(TYPE, custom(stopping_condition={"MaxRuntimeInSeconds": "a day"})))
    assert error.code == Code.INVALID_ARGUMENT and "sagemaker CreateTrainingJob" in error.message
    assert "StoppingCondition.MaxRuntimeInSeconds" in error.message


@settings(max_examples=300, deadline=None)
@given(
    run=st.text(max_size=80), action=st.text(max_size=80), token=st.text("0123456789abcdef", min_size=32, max_size=32)
)
def test_the_job_name_always_matches_sagemakers_pattern(run, action, token):
    name = job_name(token, execution_metadata(run, action))
    assert NAME_PATTERN.match(name) and len(name) <= 63 and name.endswith(token)


def test_the_example_runs_to_success_unchanged(aws_world):
    world = aws_world(SageMakerTrainingJobConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    resource = world.wait(world.create(request), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource
    model = world.outputs(resource, {"model": FILE})["model"]
    assert model.uri.startswith(OUTPUT_PATH) and model.uri.endswith("/output/model.tar.gz")
