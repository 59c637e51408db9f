"""emr_serverless_job through the served app against moto's EMR Serverless over HTTP."""

from __future__ import annotations

import asyncio
import pathlib
import uuid

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors import literals
from connectors.builtin.aws.emr_serverless import PHASES, EmrServerlessJobConnector, EmrServerlessJobMeta
from connectors.dev.aws_resources.emr_serverless_job import APPLICATION_ID, ENTRY_POINT, ROLE
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import FILE, INT, STR

TYPE = "emr_serverless_job"
MODEL = "emr-serverless::job-run"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE}"
EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "emr_serverless_job.json"
LOGGING = {
    "monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/emr/flyte"}}
}


def custom(**extra):
    return {"application_id": APPLICATION_ID, "execution_role_arn": ROLE_ARN, "entry_point": ENTRY_POINT, **extra}


def run_id(world, handle: bytes) -> str:
    return EmrServerlessJobMeta.decode(world.record(handle).resource_meta).job_run_id


def job_run(world, handle: bytes) -> dict:
    """The run as GetJobRun answers it (which, in the fake, moves it on)."""
    meta = EmrServerlessJobMeta.decode(world.record(handle).resource_meta)
    return world.boto("emr-serverless").get_job_run(applicationId=meta.application_id, jobRunId=meta.job_run_id)[
        "jobRun"
    ]


def run_ids(world) -> set[str]:
    pages = world.boto("emr-serverless").get_paginator("list_job_runs").paginate(applicationId=APPLICATION_ID)
    return {run["id"] for page in pages for run in page["jobRuns"]}


def token_of(request: pb.CreateTaskRequest) -> str:
    return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()


def test_a_job_run_runs_to_success_with_the_inputs_as_arguments_and_its_log_links(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    request = world.request(
        TYPE,
        custom(
            entry_point_arguments=["--mode", "count"],
            name="wordcount",
            spark_submit_parameters="--conf spark.executor.cores=1",
            configuration_overrides=LOGGING,
            execution_timeout_minutes=30,
            tags={"team": "analytics"},
        ),
        inputs={
            "day": (STR, "2026-01-02"),
            "n": (INT, 7),
            "data": (FILE, literals.FileRef(uri="s3://flyte-examples/in.txt")),
        },
    )
    handle = world.create(request)
    started = job_run(world, handle)
    assert started["jobDriver"]["sparkSubmit"] == {
        "entryPoint": ENTRY_POINT,
        "sparkSubmitParameters": "--conf spark.executor.cores=1",
        "entryPointArguments": [
            "--mode",
            "count",
            "--day",
            "2026-01-02",
            "--n",
            "7",
            "--data",
            "s3://flyte-examples/in.txt",
        ],
    }
    assert started["executionRole"] == ROLE_ARN and started["executionTimeoutMinutes"] == 30
    assert started["configurationOverrides"] == LOGGING
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED and not resource.outputs.literals
    info = resource.custom_info
    assert info["job_run_id"] == started["jobRunId"] and info["application_id"] == APPLICATION_ID
    assert info["state"] == "SUCCESS" and "billed_resource_utilization" in info
    links = [link.uri for link in resource.log_links]
    assert f"/serverless/applications/{APPLICATION_ID}/job-runs/{started['jobRunId']}" in links[0]
    assert "cloudwatch" in links[1] and "$252Femr$252Fflyte" in links[1]


def test_deleting_a_run_that_already_ended_in_emr_is_quiet_and_changes_nothing(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    handle = world.create(world.request(TYPE, custom()))  # the fake's run ends at once; no poll saw it
    world.delete(handle, TYPE)  # CancelJobRun is refused (not cancellable): the connector checks and is quiet
    assert job_run(world, handle)["state"] == "SUCCESS"


def test_a_run_without_cloudwatch_logging_links_only_the_console(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    resource = world.wait(world.create(world.request(TYPE, custom())), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED and len(resource.log_links) == 1


def test_a_running_job_run_is_cancelled_by_delete_and_ends_aborted(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    world.hold(MODEL)
    try:
        handle = world.create(world.request(TYPE, custom()))
        assert world.poll(handle, TYPE).phase == TaskExecution.QUEUED  # SUBMITTED
        world.delete(handle, TYPE)
        # The service answers ABORTED from its record now; the connector sees the run end in EMR.
        connector, meta = EmrServerlessJobConnector(), EmrServerlessJobMeta.decode(world.record(handle).resource_meta)
        cancelling = asyncio.run(connector.get(meta))
        assert cancelling.phase == TaskExecution.RUNNING and cancelling.custom_info["state"] == "CANCELLING"
        asyncio.run(connector.delete(meta))  # already being cancelled: quiet
        cancelled = asyncio.run(connector.get(meta))
        assert cancelled.phase == TaskExecution.ABORTED and cancelled.custom_info["state"] == "CANCELLED"
        asyncio.run(connector.delete(meta))  # cancelled: quiet
    finally:
        world.release(MODEL)


@pytest.mark.parametrize(
    "reason, phase",
    [
        ("Job failed, ExitCode: 1. Error: ZeroDivisionError: division by zero", TaskExecution.FAILED),
        ("Job failed due to insufficient capacity in the account", TaskExecution.RETRYABLE_FAILED),
        ("InternalServerError: the service failed to run the job", TaskExecution.RETRYABLE_FAILED),
    ],
)
def test_a_failed_run_is_failed_with_its_state_details_and_retryable_when_aws_ran_short(aws_world, reason, phase):
    world = aws_world(EmrServerlessJobConnector())
    handle = world.create(world.request(TYPE, custom()))
    world.fate("emr-serverless", run_id(world, handle), "FAILED", reason)
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and resource.message == reason
    meta = EmrServerlessJobMeta.decode(world.record(handle).resource_meta)
    asyncio.run(EmrServerlessJobConnector().delete(meta))  # failed: quiet
    assert job_run(world, handle)["state"] == "FAILED"


def test_a_create_retried_after_a_crash_starts_one_job_run(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    request = world.request(TYPE, custom())
    before = run_ids(world)
    # The first try started the run and died before its record was finished: the same attempt's
    # token reaches EMR Serverless again as clientToken, which answers the run it already has.
    first = world.first_try(EmrServerlessJobConnector(), request)
    handle = world.create(request)
    assert run_ids(world) - before == {first.job_run_id}
    assert run_id(world, handle) == first.job_run_id


def test_a_newer_attempt_cancels_the_older_attempts_job_run(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    run = f"emr-supersede-{uuid.uuid4().hex[:8]}"
    first_request = world.request(TYPE, custom(), run=run)
    first = world.create(first_request)
    world.fate("emr-serverless", run_id(world, first), "RUNNING")  # still running when attempt 1 starts
    second = world.create(world.request(TYPE, custom(), run=run, attempt=1))
    assert job_run(world, first)["state"] in ("CANCELLING", "CANCELLED")
    assert run_id(world, second) != run_id(world, first)
    assert world.wait(second, TYPE).phase == TaskExecution.SUCCEEDED


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"application_id": None}, "template.custom.application_id is required"),
        ({"execution_role_arn": None}, "template.custom.execution_role_arn is required"),
        ({"entry_point": None}, "template.custom.entry_point is required"),
        ({"entry_point": "/tmp/job.py"}, "template.custom.entry_point must be an s3:// URI"),
        ({"entry_point_arguments": "--x 1"}, "template.custom.entry_point_arguments must be a list"),
        ({"entry_point_arguments": ["--x", 1]}, "template.custom.entry_point_arguments must be a list of strings"),
        ({"execution_timeout_minutes": 7.5}, "template.custom.execution_timeout_minutes must be a whole number"),
        ({"configuration_overrides": "x"}, "template.custom.configuration_overrides must be an object"),
        ({"tags": {"team": 5}}, "template.custom.tags.team must be a string"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, fields, needle):
    world = aws_world(EmrServerlessJobConnector())
    given = {key: value for key, value in custom(**fields).items() if value is not None}
    error = world.error(world.create, world.request(TYPE, given))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_the_run_is_its_code_by_kind_with_awss_message(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    error = world.error(world.create, world.request(TYPE, custom(application_id="00nosuchapp00000")))
    assert error.code == Code.NOT_FOUND and "emr-serverless StartJobRun" in error.message
    assert "Application 00nosuchapp00000 does not exist" in error.message
    error = world.error(world.create, world.request(TYPE, custom(execution_timeout_minutes=2)))
    assert error.code == Code.INVALID_ARGUMENT and "RunTimeout must be at least 5 minutes" in error.message


def test_every_emr_serverless_state_has_a_phase():
    assert set(PHASES.phases) == {
        "SUBMITTED",
        "PENDING",
        "SCHEDULED",
        "RUNNING",
        "SUCCESS",
        "FAILED",
        "CANCELLING",
        "CANCELLED",
        "QUEUED",
    }
    assert PHASES.terminal == {"SUCCESS", "FAILED", "CANCELLED"}


def test_the_example_runs_to_success_unchanged(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    resource = world.wait(world.create(request), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource
    assert resource.custom_info["name"] == "wordcount" and len(resource.log_links) == 2
