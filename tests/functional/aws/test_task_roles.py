"""Per-project identity (TaskRoleArnPattern, connectors/task_roles.py) through the served app.

The fake AWS notes the access key id each call was signed with and what each AssumeRole asked
(connectors/dev/fake_aws/callers.py), so these tests see, as CloudTrail would, which identity made
each call: a task's AWS calls are signed with a session of its project's role (not the service's
own key), that session was assumed with tags and a source identity naming the task, a task naming
another project's role is refused before any call, and sessions are reused within their lifetime.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from flyteidl2.core import security_pb2
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import task_roles
from connectors.builtin.aws.athena import AthenaQueryConnector, AthenaQueryMeta
from connectors.dev.aws_resources.athena_query import WORK_GROUP
from connectors.dev.local_dynamodb import LOCAL_ENV
from connectors.errors import Code
from tests.aws_world import task_request

TYPE = "athena_query"
ACCOUNT = "123456789012"  # moto's account: a session of a role in another account would see other resources
PATTERN = f"arn:aws:iam::{ACCOUNT}:role/flyte-{{project}}-{{domain}}"
SNACKS = f"arn:aws:iam::{ACCOUNT}:role/flyte-flytesnacks-development"  # the requests' project and domain
SERVICE_KEY = LOCAL_ENV["AWS_ACCESS_KEY_ID"]
ATHENA_CALLS = {"StartQueryExecution", "GetQueryExecution", "StopQueryExecution"}


def calls(world: Any, *, reset: bool = False) -> list[dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the test's own fake AWS (http, loopback)
        f"{world.endpoint}/moto-api/fake-aws/callers",
        data=json.dumps({"reset": reset}).encode() if reset else None,
        method="POST" if reset else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - as above
        return json.loads(answer.read())["calls"]


def assumed(noted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call["assume_role"] for call in noted if call["operation"] == "AssumeRole"]


def athena_keys(noted: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for call in noted:
        if call["service"] == "athena":
            found.setdefault(call["operation"], set()).add(call["access_key"])
    return found


def query(project: str = "flytesnacks", domain: str = "development", **kwargs: Any) -> Any:
    request = task_request(TYPE, {"query": "select 1", "work_group": WORK_GROUP}, **kwargs)
    execution = request.task_execution_metadata.task_execution_id.node_execution_id.execution_id
    execution.project, execution.domain = project, domain
    return request


@pytest.fixture
def roles_world(aws_world):
    task_roles.reset()  # sessions of another test's world
    world = aws_world(AthenaQueryConnector(), task_role_arn_pattern=PATTERN)
    calls(world, reset=True)
    yield world
    task_roles.reset()


def test_a_tasks_start_and_polls_are_signed_as_its_project_role_assumed_with_tags_naming_the_task(roles_world):
    world = roles_world
    request = query()
    run = request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name
    handle = world.create(request)
    assert world.wait(handle, TYPE).phase == TaskExecution.SUCCEEDED
    noted = calls(world)
    (assume,) = assumed(noted)  # one session for the task, its polls included
    name = f"flytesnacks.development.{run}.a0.0"
    assert assume == {
        "role_arn": SNACKS,
        "role_session_name": name,
        "source_identity": name,
        "duration_seconds": "3600",
        "tags": {"flyte-project": "flytesnacks", "flyte-domain": "development", "flyte-run": run, "flyte-action": "a0"},
        "answered_access_key": assume["answered_access_key"],
    }
    session_key = assume["answered_access_key"]
    assert session_key.startswith("ASIA") and session_key != SERVICE_KEY
    keys = athena_keys(noted)
    assert keys["StartQueryExecution"] == keys["GetQueryExecution"] == {session_key}
    # The service's own calls keep the service's identity: its table, and the AssumeRole itself.
    assert {call["access_key"] for call in noted if call["service"] in ("dynamodb", "sts")} == {SERVICE_KEY}
    # What the executor sees is what it always saw.
    meta = AthenaQueryMeta.decode(world.record(handle).resource_meta)
    assert world.boto("athena").get_query_execution(QueryExecutionId=meta.query_execution_id)


def test_delete_stops_the_job_as_the_tasks_project_role(roles_world):
    world = roles_world
    world.hold("athena::execution")
    try:
        handle = world.create(query())
        task_roles.reset()  # DeleteTask served by another function instance: it assumes the role anew
        world.delete(handle, TYPE)
    finally:
        world.release("athena::execution")
    noted = calls(world)
    first, second = assumed(noted)
    assert first["role_arn"] == second["role_arn"] == SNACKS
    assert first["source_identity"] == second["source_identity"] and first["tags"] == second["tags"]
    keys = athena_keys(noted)
    assert keys["StartQueryExecution"] == {first["answered_access_key"]}
    assert keys["StopQueryExecution"] == {second["answered_access_key"]}


def test_the_reaper_cancels_an_abandoned_task_as_its_own_project_role(roles_world):
    world = roles_world
    world.hold("athena::execution")
    try:
        handle = world.create(query(project="analytics", domain="production"))
        task_roles.reset()  # the reaper is a function of its own
        report = world.reap(now=world.record(handle).heartbeat_at + 7200)
    finally:
        world.release("athena::execution")
    assert len(report.cancelled) == 1, report.as_dict()
    noted = calls(world)
    create, reap = assumed(noted)
    assert create["role_arn"] == reap["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/flyte-analytics-production"
    assert reap["tags"]["flyte-project"] == "analytics" and reap["source_identity"] == create["source_identity"]
    assert athena_keys(noted)["StopQueryExecution"] == {reap["answered_access_key"]}


def test_a_newer_attempt_cancels_the_older_attempts_job_as_the_older_attempt(roles_world):
    world = roles_world
    world.hold("athena::execution")
    try:
        older = query(run="rsupersede", attempt=0)
        world.create(older)
        world.create(query(run="rsupersede", attempt=1))
    finally:
        world.release("athena::execution")
    noted = calls(world)
    by_name = {call["source_identity"]: call["answered_access_key"] for call in assumed(noted)}
    assert set(by_name) == {"flytesnacks.development.rsupersede.a0.0", "flytesnacks.development.rsupersede.a0.1"}
    assert athena_keys(noted)["StopQueryExecution"] == {by_name["flytesnacks.development.rsupersede.a0.0"]}


def test_sessions_are_one_per_task_and_reused_by_its_later_calls(roles_world):
    """A session names one task (its tags and source identity are fixed when it is assumed): two
    tasks of one project are two AssumeRoles, and every later call of either reuses its own."""
    world = roles_world
    handles = [world.create(query()) for _ in range(2)]
    other = world.create(query(project="analytics", domain="production"))
    for _ in range(3):
        for handle in [*handles, other]:
            world.poll(handle, TYPE)
    noted = calls(world)
    sessions = assumed(noted)
    assert [s["role_arn"] for s in sessions] == [
        SNACKS,
        SNACKS,
        f"arn:aws:iam::{ACCOUNT}:role/flyte-analytics-production",
    ]
    assert len({s["answered_access_key"] for s in sessions}) == 3
    polls = [call for call in noted if call["operation"] == "GetQueryExecution"]
    assert len(polls) >= 9 and {call["access_key"] for call in polls} <= {s["answered_access_key"] for s in sessions}
    assert task_roles.SESSIONS.assumed >= 3


@pytest.mark.parametrize(
    ("declare", "where"),
    [
        ("template", "template.security_context.run_as.iam_role"),
        ("metadata", "task_execution_metadata.identity.iam_role"),
    ],
)
def test_a_task_naming_another_projects_role_is_refused_before_any_aws_call(roles_world, declare, where):
    world = roles_world
    request = query()
    other = f"arn:aws:iam::{ACCOUNT}:role/flyte-analytics-production"
    if declare == "template":
        request.template.security_context.run_as.iam_role = other
    else:
        request.task_execution_metadata.identity.CopyFrom(security_pb2.Identity(iam_role=other))
    error = world.error(world.create, request)
    assert error.code.value == Code.PERMISSION_DENIED.value
    assert other in error.message and SNACKS in error.message and where in error.message
    assert calls(world) == []  # no record written, no role assumed, nothing started
    assert world.records(request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name) == {}


def test_a_task_naming_its_own_project_role_runs(roles_world):
    world = roles_world
    request = query()
    request.template.security_context.run_as.iam_role = SNACKS
    request.task_execution_metadata.identity.CopyFrom(security_pb2.Identity(iam_role=SNACKS))
    handle = world.create(request)
    assert world.wait(handle, TYPE).phase == TaskExecution.SUCCEEDED
    assert [s["role_arn"] for s in assumed(calls(world))] == [SNACKS]


def test_a_project_no_role_name_can_hold_is_refused_before_any_aws_call(roles_world):
    world = roles_world
    error = world.error(world.create, query(project="flyte snacks"))
    assert error.code.value == Code.PERMISSION_DENIED.value and "'flyte snacks'" in error.message
    assert calls(world) == []


def test_without_the_pattern_every_call_is_the_services_own_and_a_declared_template_role_is_refused(aws_world):
    task_roles.reset()
    world = aws_world(AthenaQueryConnector())
    calls(world, reset=True)
    stamped = query()  # a role a platform stamps on every execution: left aside, as always
    stamped.task_execution_metadata.identity.CopyFrom(security_pb2.Identity(iam_role=SNACKS))
    handle = world.create(stamped)
    assert world.wait(handle, TYPE).phase == TaskExecution.SUCCEEDED
    noted = calls(world)
    assert assumed(noted) == [] and {call["access_key"] for call in noted} == {SERVICE_KEY}
    assert set(athena_keys(noted)) >= {"StartQueryExecution", "GetQueryExecution"}

    declared = query()  # the author asked for a role this deployment would not use
    declared.template.security_context.run_as.iam_role = SNACKS
    error = world.error(world.create, declared)
    assert error.code.value == Code.PERMISSION_DENIED.value and "TaskRoleArnPattern is not set" in error.message
    assert SNACKS in error.message


def test_a_batch_jobs_submit_polls_and_logs_are_all_signed_as_its_project_role(aws_world):
    from connectors.builtin.aws.batch import AwsBatchJobConnector
    from connectors.dev.aws_resources.aws_batch_job import JOB_DEFINITION, QUEUE

    task_roles.reset()
    world = aws_world(AwsBatchJobConnector(), task_role_arn_pattern=PATTERN)
    calls(world, reset=True)
    request = task_request("aws_batch_job", {"job_queue": QUEUE, "job_definition": JOB_DEFINITION})
    handle = world.create(request)
    assert world.wait(handle, "aws_batch_job").phase == TaskExecution.SUCCEEDED
    task_roles.reset()  # GetTaskLogs in a function instance of its own
    assert world.logs(handle, "aws_batch_job") == ["hello from flyte on today"]
    noted = calls(world)
    sessions = assumed(noted)
    assert [s["role_arn"] for s in sessions] == [SNACKS, SNACKS]
    made: dict[tuple[str, str], set[str]] = {}
    for call in noted:
        if call["service"] in ("batch", "logs"):
            made.setdefault((call["service"], call["operation"]), set()).add(call["access_key"])
    poller, reader = (session["answered_access_key"] for session in sessions)
    assert made[("batch", "SubmitJob")] == {poller}
    assert made[("batch", "DescribeJobs")] == {poller, reader}  # GetTask's reads; GetTaskLogs finds the stream
    assert made[("logs", "FilterLogEvents")] == {reader}
    assert SERVICE_KEY not in set().union(*made.values())
    task_roles.reset()
