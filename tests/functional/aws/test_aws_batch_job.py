"""aws_batch_job through the served app against moto's Batch (patched by connectors.dev.fake_aws.batch) over HTTP."""

from __future__ import annotations

import pathlib
import time

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws.batch import CANCEL_REASON, AwsBatchJobConnector, AwsBatchJobMeta
from connectors.dev.aws_resources.aws_batch_job import JOB_DEFINITION, QUEUE
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import STR, crashes_once

TYPE = "aws_batch_job"
EXAMPLE = pathlib.Path(__file__).parents[3] / "examples" / "aws_batch_job.json"
BASE = {"job_queue": QUEUE, "job_definition": JOB_DEFINITION}


def the_job(world, handle: bytes) -> dict:
    meta = AwsBatchJobMeta.decode(world.record(handle).resource_meta)
    return world.boto("batch").describe_jobs(jobs=[meta.job_id])["jobs"][0]


def jobs_of_run(world, run: str) -> list[dict]:
    return world.boto("batch").list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [f"{run}*"]}])[
        "jobSummaryList"
    ]


def test_a_job_runs_to_success_with_its_inputs_as_parameters_and_its_output_in_cloudwatch(aws_world):
    world = aws_world(AwsBatchJobConnector())
    custom = {
        **BASE,
        "environment": {"STAGE": "test", "MODE": "fast"},
        "tags": {"team": "data"},
        "container_overrides": {"environment": [{"name": "MODE", "value": "slow"}, {"name": "KEEP", "value": "1"}]},
    }
    handle = world.create(world.request(TYPE, custom, inputs={"day": (STR, "monday")}, run="rbatchlife"))
    job = the_job(world, handle)
    assert job["jobName"].startswith("rbatchlife-a0-") and job["parameters"]["day"] == "monday"
    environment = {entry["name"]: entry["value"] for entry in job["container"]["environment"]}
    assert environment["STAGE"] == "test" and environment["MODE"] == "fast" and environment["KEEP"] == "1"
    assert job["tags"] == {"team": "data"}
    phases = []  # moto steps the job once per describe (the test's own describes included)
    while (resource := world.poll(handle, TYPE)).phase != TaskExecution.SUCCEEDED:
        phases.append(resource.phase)
        assert len(phases) < 10 and resource.phase not in (TaskExecution.FAILED, TaskExecution.ABORTED)
    assert phases == [TaskExecution.WAITING_FOR_RESOURCES, TaskExecution.INITIALIZING, TaskExecution.RUNNING]
    assert resource.custom_info["job_id"] == job["jobId"] and resource.custom_info["status"] == "SUCCEEDED"
    names = [link.name for link in resource.log_links]
    assert names == ["AWS Batch job", "CloudWatch logs"] and job["jobId"] in resource.log_links[0].uri
    assert world.logs(handle, TYPE) == ["hello from flyte on monday"]
    world.delete(handle, TYPE)  # a finished job: delete is accepted and changes nothing
    assert the_job(world, handle)["status"] == "SUCCEEDED" and "statusReason" not in the_job(world, handle)


def test_a_waiting_job_is_terminated_by_delete_and_ends_aborted(aws_world):
    world = aws_world(AwsBatchJobConnector())
    world.hold("batch::job")
    try:
        handle = world.create(world.request(TYPE, BASE))
        assert world.poll(handle, TYPE).phase == TaskExecution.QUEUED
        assert world.logs(handle, TYPE) == []  # not started: no stream yet
        world.delete(handle, TYPE)
        job = the_job(world, handle)
        assert job["status"] == "FAILED" and job["statusReason"] == CANCEL_REASON
    finally:
        world.release("batch::job")
    assert world.record(handle).phase == TaskExecution.ABORTED


@pytest.mark.parametrize(
    "reason, extra, phase",
    [
        ("Essential container in task exited", {"exit_code": 3}, TaskExecution.FAILED),
        ("Host EC2 (instance i-0123456789abcdef0) terminated.", {}, TaskExecution.RETRYABLE_FAILED),
        (
            "Essential container in task exited",
            {"attempt_reason": "Your Spot Task was interrupted."},
            TaskExecution.RETRYABLE_FAILED,
        ),
    ],
)
def test_a_failed_job_is_failed_with_batchs_reason_and_retryable_when_its_host_went_away(
    aws_world, reason, extra, phase
):
    world = aws_world(AwsBatchJobConnector())
    handle = world.create(world.request(TYPE, BASE))
    world.fate("batch", the_job(world, handle)["jobId"], "FAILED", reason, **extra)
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and reason in resource.message
    if "exit_code" in extra:
        assert "exit code 3" in resource.message and resource.custom_info["exit_code"] == 3


def test_an_array_job_has_its_size_and_ends_with_its_children(aws_world):
    world = aws_world(AwsBatchJobConnector())
    handle = world.create(world.request(TYPE, {**BASE, "array_size": 3, "timeout_seconds": 600}))
    job = the_job(world, handle)
    assert job["arrayProperties"]["size"] == 3 and job["timeout"] == {"attemptDurationSeconds": 600}
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert resource.custom_info["array_status_summary"]["SUCCEEDED"] == 3
    assert world.logs(handle, TYPE) == []  # the parent has no stream of its own


def test_a_create_retried_after_a_crash_starts_one_job(aws_world):
    world = aws_world(AwsBatchJobConnector())
    request = world.request(TYPE, BASE, run="rbatchcrash")
    # The first try submitted the job and died before its record was finished: the same
    # attempt's name is looked up (ListJobs by JOB_NAME) and the job found is adopted.
    first = world.first_try(AwsBatchJobConnector(), request)
    handle = world.create(request)
    assert [job["jobId"] for job in jobs_of_run(world, "rbatchcrash")] == [first.job_id]
    assert the_job(world, handle)["jobId"] == first.job_id


CrashesOnce = crashes_once(AwsBatchJobConnector)


@pytest.mark.parametrize("crash", [False, True])
def test_a_newer_attempt_terminates_the_older_attempts_job_found_by_its_name(aws_world, crash):
    CrashesOnce.crashed = not crash
    world = aws_world(CrashesOnce())
    world.hold("batch::job")
    try:
        older = world.request(TYPE, BASE, run=f"rbatchsup{int(crash)}", attempt=0)
        if crash:  # attempt 0 started its job but its CreateTask failed: its record has no job id
            assert world.error(world.create, older).code == Code.UNAVAILABLE
        else:
            world.create(older)
        world.create(world.request(TYPE, BASE, run=f"rbatchsup{int(crash)}", attempt=1))
        if crash:  # held for the look-up to settle: the newer attempt left it to the reaper
            assert world.records(f"rbatchsup{int(crash)}")[0].superseded_by == 1
            time.sleep(CrashesOnce.replay_settle_seconds)
            assert len(world.reap().cancelled) == 1
        jobs = {job["jobName"].split("-")[-1]: job for job in jobs_of_run(world, f"rbatchsup{int(crash)}")}
    finally:
        world.release("batch::job")
    tokens = {TaskExecutionKey.from_metadata(older.task_execution_metadata).idempotency_token()}
    assert len(jobs) == 2 and tokens <= set(jobs)  # one job per attempt: the replay found attempt 0's
    for token, job in jobs.items():
        described = world.boto("batch").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
        assert (described.get("statusReason") == CANCEL_REASON) == (token in tokens)


@pytest.mark.parametrize(
    "custom, needle",
    [
        ({"job_definition": JOB_DEFINITION}, "template.custom.job_queue is required"),
        ({"job_queue": QUEUE}, "template.custom.job_definition is required"),
        ({**BASE, "array_size": 1}, "template.custom.array_size must be from 2 to 10000"),
        ({**BASE, "timeout_seconds": 30}, "template.custom.timeout_seconds must be at least 60"),
        ({**BASE, "environment": {"A": 1}}, "template.custom.environment.A must be a string"),
        ({**BASE, "container_overrides": "big"}, "template.custom.container_overrides must be an object"),
        (
            {**BASE, "environment": {"A": "1"}, "container_overrides": {"environment": {"A": "2"}}},
            "template.custom.container_overrides.environment must be a list",
        ),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, custom, needle):
    world = aws_world(AwsBatchJobConnector())
    error = world.error(world.create, world.request(TYPE, custom))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


@pytest.mark.parametrize(
    "custom, needle",
    [
        (
            {"job_queue": "no-such-queue", "job_definition": JOB_DEFINITION},
            "batch ListJobs: ClientException: Job queue no-such-queue does not exist",
        ),
        (
            {"job_queue": QUEUE, "job_definition": "no-such-definition"},
            "batch SubmitJob: ClientException: Job definition no-such-definition does not exist",
        ),
    ],
)
def test_aws_refusing_the_job_is_its_code_by_kind_with_awss_message(aws_world, custom, needle):
    world = aws_world(AwsBatchJobConnector())
    error = world.error(world.create, world.request(TYPE, custom))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_the_example_request_runs_to_success(aws_world):
    world = aws_world(AwsBatchJobConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    resource = world.wait(world.create(request), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
