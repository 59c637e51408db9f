"""glue_job through the served app against moto's Glue (patched by connectors.dev.fake_aws.glue) over HTTP."""

from __future__ import annotations

import pathlib
import time

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws.glue import TOKEN_ARGUMENT, GlueJobConnector, GlueJobMeta
from connectors.dev.aws_resources.glue_job import JOB_NAME
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import INT, STR, crashes_once

TYPE = "glue_job"
EXAMPLE = pathlib.Path(__file__).parents[3] / "examples" / "glue_job.json"
BASE = {"job_name": JOB_NAME}


def the_run(world, handle: bytes) -> dict:
    meta = GlueJobMeta.decode(world.record(handle).resource_meta)
    return world.boto("glue").get_job_run(JobName=meta.job_name, RunId=meta.job_run_id)["JobRun"]


def token_of(request) -> str:
    return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()


def runs_with(world, *tokens: str) -> dict[str, list[dict]]:
    runs = world.boto("glue").get_paginator("get_job_runs").paginate(JobName=JOB_NAME).build_full_result()["JobRuns"]
    return {token: [run for run in runs if run.get("Arguments", {}).get(TOKEN_ARGUMENT) == token] for token in tokens}


def test_a_run_gets_its_inputs_as_arguments_and_runs_to_success(aws_world):
    world = aws_world(GlueJobConnector())
    custom = {
        **BASE,
        "arguments": {"--stage": "test"},
        "worker_type": "G.1X",
        "number_of_workers": 2,
        "timeout_minutes": 30,
    }
    request = world.request(TYPE, custom, inputs={"day": (STR, "monday"), "limit": (INT, 5)})
    handle = world.create(request)
    run = the_run(world, handle)
    assert run["Arguments"] == {"--day": "monday", "--limit": "5", "--stage": "test", TOKEN_ARGUMENT: token_of(request)}
    assert (run["WorkerType"], run["NumberOfWorkers"], run["Timeout"]) == ("G.1X", 2, 30)
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED and resource.custom_info["job_run_id"] == run["Id"]
    assert [link.name for link in resource.log_links] == ["Glue job run", "CloudWatch output", "CloudWatch errors"]
    assert run["Id"] in resource.log_links[0].uri and "aws-glue" in resource.log_links[1].uri
    assert world.logs(handle, TYPE) == [
        "flyte-example started with --day=monday --limit=5 --stage=test",
        "flyte-example succeeded",
    ]
    world.delete(handle, TYPE)  # an ended run: BatchStopJobRun refuses it, the connector returns quietly
    assert the_run(world, handle)["JobRunState"] == "SUCCEEDED"


def test_a_running_run_is_stopped_by_delete_and_ends_aborted(aws_world):
    world = aws_world(GlueJobConnector())
    world.hold("glue::job_run")
    try:
        handle = world.create(world.request(TYPE, BASE))
        assert world.poll(handle, TYPE).phase == TaskExecution.INITIALIZING
        world.delete(handle, TYPE)
        assert the_run(world, handle)["JobRunState"] == "STOPPING"
        world.delete(handle, TYPE)  # stopping already: quiet
        assert the_run(world, handle)["JobRunState"] == "STOPPED"
    finally:
        world.release("glue::job_run")
    assert world.record(handle).phase == TaskExecution.ABORTED


@pytest.mark.parametrize(
    "status, reason, phase",
    [
        ("FAILED", "SyntaxError: invalid syntax (flyte_example.py, line 3)", TaskExecution.FAILED),
        (
            "FAILED",
            "Exceeded maximum concurrent compute capacity for your account: 100.",
            TaskExecution.RETRYABLE_FAILED,
        ),
        ("ERROR", "Job flyte-example was deleted", TaskExecution.FAILED),
        ("ERROR", "Internal service error", TaskExecution.RETRYABLE_FAILED),
        ("TIMEOUT", "Job run timed out", TaskExecution.FAILED),
        ("EXPIRED", "", TaskExecution.RETRYABLE_FAILED),
    ],
)
def test_a_failed_run_is_failed_with_its_error_message_and_retryable_when_glue_lacked_capacity(
    aws_world, status, reason, phase
):
    world = aws_world(GlueJobConnector())
    handle = world.create(world.request(TYPE, BASE))
    world.fate("glue", the_run(world, handle)["Id"], status, reason)
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and resource.message == (reason or f"Glue job run {status.lower()}")
    if reason:
        assert resource.custom_info["error_message"] == reason


def test_a_create_retried_after_a_crash_starts_one_run(aws_world):
    world = aws_world(GlueJobConnector())
    request = world.request(TYPE, BASE)
    # The first try started the run and died before its record was finished: the same attempt's
    # token is found in the run's Arguments and that run is adopted.
    first = world.first_try(GlueJobConnector(), request)
    handle = world.create(request)
    assert [run["Id"] for run in runs_with(world, token_of(request))[token_of(request)]] == [first.job_run_id]
    assert the_run(world, handle)["Id"] == first.job_run_id


CrashesOnce = crashes_once(GlueJobConnector)


@pytest.mark.parametrize("crash", [False, True])
def test_a_newer_attempt_stops_the_older_attempts_run_found_by_its_token(aws_world, crash):
    CrashesOnce.crashed = not crash
    world = aws_world(CrashesOnce())
    older = world.request(TYPE, BASE, attempt=0)
    newer = world.request(
        TYPE, BASE, run=older.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name, attempt=1
    )
    world.hold("glue::job_run")
    try:
        if crash:  # attempt 0 started its run but its CreateTask failed: its record has no run id
            assert world.error(world.create, older).code == Code.UNAVAILABLE
        else:
            world.create(older)
        world.create(newer)
        if crash:  # held for the look-up to settle: the newer attempt left it to the reaper
            time.sleep(CrashesOnce.replay_settle_seconds)
            assert len(world.reap().cancelled) == 1
        found = runs_with(world, token_of(older), token_of(newer))
    finally:
        world.release("glue::job_run")
    assert [len(runs) for runs in found.values()] == [1, 1]  # the replay found attempt 0's run
    assert found[token_of(older)][0]["JobRunState"] in ("STOPPING", "STOPPED")
    assert found[token_of(newer)][0]["JobRunState"] not in ("STOPPING", "STOPPED")


@pytest.mark.parametrize(
    "custom, inputs, needle",
    [
        ({}, {}, "template.custom.job_name is required"),
        ({**BASE, "arguments": {"day": "x"}}, {}, "template.custom.arguments.day must be a key like '--day'"),
        ({**BASE, "arguments": {TOKEN_ARGUMENT: "x"}}, {}, f"template.custom.arguments.{TOKEN_ARGUMENT} must be"),
        (
            {**BASE, "arguments": {"--day": "x"}},
            {"day": (STR, "y")},
            "template.custom.arguments.--day is also the input",
        ),
        ({**BASE, "arguments": {"--n": 1}}, {}, "template.custom.arguments.--n must be a string"),
        ({**BASE, "number_of_workers": 2.5}, {}, "template.custom.number_of_workers must be a whole number"),
        ({**BASE, "max_capacity": 1, "worker_type": "G.1X"}, {}, "template.custom.max_capacity cannot be given with"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, custom, inputs, needle):
    world = aws_world(GlueJobConnector())
    error = world.error(world.create, world.request(TYPE, custom, inputs=inputs))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_an_unknown_job_is_not_found_with_awss_message(aws_world):
    world = aws_world(GlueJobConnector())
    error = world.error(world.create, world.request(TYPE, {"job_name": "no-such-job"}))
    assert (
        error.code == Code.NOT_FOUND
        and "glue GetJobRuns: EntityNotFoundException: Job no-such-job not found" in error.message
    )


def test_the_example_request_runs_to_success(aws_world):
    world = aws_world(GlueJobConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    resource = world.wait(world.create(request), TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
