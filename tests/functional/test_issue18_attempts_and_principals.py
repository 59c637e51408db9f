"""Issue 18 (security): attempts belong to their task, tasks to the principal that created them.

Any caller who can write a Flyte task is a possible adversary: it knows (or guesses) a victim's
run and action names, and can send any CreateTask. Each finding was a test that failed on the code
before it (its comment says what it did then); the Lambda path runs API Gateway's own events
(connectors/dev/events.py) in-process, the served app over loopback, both against moto's DynamoDB
and the ledger's remote jobs (tests/remote_ledger.py), which count what really started.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.create import MAX_RETRY_ATTEMPT
from connectors.dev.events import http_api_event
from connectors.errors import Code
from connectors.runtime import lambda_handler
from connectors.store import ENDED, TaskExecutionKey, TaskRecord, new_secret
from tests.conftest import LambdaContext
from tests.flyte_requests import int_literal
from tests.ledger_world import LEDGER, LedgerWorld
from tests.remote_ledger import LedgerMeta

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
ACCOUNT = "123456789012"
ANSWERS = {
    "CreateTask": pb.CreateTaskResponse,
    "GetTask": pb.GetTaskResponse,
    "DeleteTask": pb.DeleteTaskResponse,
    "GetTaskMetrics": pb.GetTaskMetricsResponse,
}


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[LedgerWorld]:
    with LedgerWorld(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def signed_by(role: str, session: str = "session-1") -> dict[str, Any]:
    """API Gateway's ``requestContext.authorizer.iam`` for a caller in an assumed role."""
    return {
        "accountId": ACCOUNT,
        "callerId": f"AROA{role.upper()}:{session}",
        "userId": f"AROA{role.upper()}:{session}",
        "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
    }


class Lambda:
    """The API's functions (one handler per operation), invoked in-process with API Gateway's events."""

    def __init__(self, world: LedgerWorld) -> None:
        self.handlers = {op: lambda_handler([op], service=world.service) for op in ANSWERS}

    def call(self, operation: str, message: Any, iam: dict[str, Any] | None) -> Any:
        """The operation's answer, or its Connect code when it failed."""
        event = http_api_event("POST", f"{ASYNC}/{operation}", message.SerializeToString(), iam=iam)
        if iam is None:
            del event["requestContext"]["authorizer"]
        response = self.handlers[operation](event, LambdaContext())
        body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"].encode()
        if response["statusCode"] != 200:
            return Code(json.loads(body)["code"])
        return ANSWERS[operation].FromString(body)

    def create(self, request: pb.CreateTaskRequest, iam: dict[str, Any] | None) -> Any:
        answer = self.call("CreateTask", request, iam)
        return answer.resource_meta if isinstance(answer, pb.CreateTaskResponse) else answer

    def get(self, handle: bytes, iam: dict[str, Any] | None) -> Any:
        answer = self.call("GetTask", pb.GetTaskRequest(resource_meta=handle, task_category=LEDGER), iam)
        return answer.resource if isinstance(answer, pb.GetTaskResponse) else answer

    def delete(self, handle: bytes, iam: dict[str, Any] | None) -> Any:
        return self.call("DeleteTask", pb.DeleteTaskRequest(resource_meta=handle, task_category=LEDGER), iam)


@pytest.fixture
def aws(world) -> Lambda:
    return Lambda(world)


def run_name() -> str:
    return f"victim-{uuid.uuid4().hex[:8]}"


# == 1. Attempts belong to their task =========================================================================


# Was a break, now fixed: attempt 1 with another template started its own job (job-2) and cancelled the
# victim's attempt 0, whose next poll answered ABORTED
def test_a_newer_attempt_with_another_template_is_refused_and_cancels_nothing(world):
    run = run_name()
    victim = world.create(run, 0)
    error = world.error(world.create, run, 1, outputs={"x": 666})  # the victim's ids, the attacker's task
    assert error.code == Code.FAILED_PRECONDITION and "another task" in error.message
    assert world.jobs() == {"job-1": "running"}, "no job started, none cancelled"
    assert world.poll(victim).phase == TaskExecution.RUNNING
    assert set(world.records(run)) == {0}, "the refused attempt left no record behind"
    # The victim's own next attempt (the same task) still supersedes attempt 0, as before.
    newer = world.create(run, 1)
    assert (
        world.jobs() == {"job-1": "cancelled", "job-2": "running"} and world.poll(newer).phase == TaskExecution.RUNNING
    )


# Was a break, now fixed: other inputs under the victim's ids were taken as the victim's next attempt
def test_a_newer_attempt_with_other_inputs_is_refused(world):
    run = run_name()
    world.create(run, 0)
    request = world.request(run, 1)
    request.inputs.literals[0].value.CopyFrom(int_literal(7))
    with pytest.raises(ConnectError) as caught:
        world.client.create_task(request)
    assert caught.value.code == Code.FAILED_PRECONDITION
    assert world.jobs() == {"job-1": "running"}


# Was a break, now fixed: attempt 4294967295 was claimed, and every real attempt of the action after it was
# refused failed_precondition ("attempt 4294967295 of this action exists")
def test_an_absurd_attempt_number_is_invalid_and_blocks_no_real_attempt(world):
    run = run_name()
    world.create(run, 0)
    for attempt in (4294967295, MAX_RETRY_ATTEMPT + 1):
        error = world.error(world.create, run, attempt)
        assert error.code == Code.INVALID_ARGUMENT and str(MAX_RETRY_ATTEMPT) in error.message
    assert set(world.records(run)) == {0} and world.jobs() == {"job-1": "running"}
    world.create(run, 1)  # the executor's real next attempt
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}


# Was a break, now fixed: an attempt past the max_attempts the request itself carries was started
def test_an_attempt_at_or_beyond_max_attempts_is_invalid(world):
    run = run_name()
    request = world.request(run, 3)
    request.task_execution_metadata.max_attempts = 3  # attempts 0, 1 and 2
    with pytest.raises(ConnectError) as caught:
        world.client.create_task(request)
    assert caught.value.code == Code.INVALID_ARGUMENT and "max_attempts 3" in caught.value.message
    request = world.request(run, 2)
    request.task_execution_metadata.max_attempts = 3
    assert world.client.create_task(request).resource_meta and world.jobs() == {"job-1": "running"}


def container_request(world: LedgerWorld, run: str, attempt: int, *, code: str = "s3://code/v1.tgz") -> Any:
    """A container task's CreateTask as the v2 executor sends attempt ``attempt``: the output prefix
    is ``<run base>/<shard>/<action>/<attempt>`` (1-based there), rendered into the args; the inputs
    come from a map, in any order."""
    prefix = f"s3://bucket/x7/{run}/a0/{attempt + 1}"
    request = world.request(run, attempt)
    request.output_prefix = prefix
    request.template.container.CopyFrom(
        tasks_pb2.Container(
            image="ghcr.io/example/task:v1",
            args=[
                "a0",
                "--outputs-path",
                prefix,
                "--raw-data-path",
                prefix,
                "--checkpoint-path",
                f"{prefix}/_flytecheckpoints",
                "--tgz",
                code,
            ],
        )
    )
    if attempt % 2:
        request.inputs.literals.reverse()
    return request


def test_attempts_of_one_container_task_are_the_same_task_whatever_the_executor_renders_per_attempt(world):
    run = run_name()
    world.client.create_task(container_request(world, run, 0))
    newer = world.client.create_task(container_request(world, run, 1)).resource_meta
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}
    assert world.poll(newer).phase == TaskExecution.RUNNING
    # What the executor does not render per attempt is the task: another code bundle is another task.
    with pytest.raises(ConnectError) as caught:
        world.client.create_task(container_request(world, run, 2, code="s3://attacker/evil.tgz"))
    assert caught.value.code == Code.FAILED_PRECONDITION and world.jobs()["job-2"] == "running"


def test_a_refused_claim_that_raced_the_check_is_withdrawn_and_blocks_nothing(world):
    """The check before the claim passed (the action had no attempt yet), then another task's attempt
    appeared before the check after it: the fresh claim is withdrawn (create never ran), and the
    real attempt of that number claims over it."""
    run = run_name()
    store = world.service.store
    real_owners = store.attempt_owners
    store.attempt_owners = lambda action_id: []  # type: ignore[method-assign]  # the check ran before the other claim
    try:
        world.create(run, 0)  # the real attempt 0 (its own check saw nothing either)
        error = world.error(world.create, run, 1, outputs={"x": 666})
    finally:
        store.attempt_owners = real_owners  # type: ignore[method-assign]
    assert error.code == Code.FAILED_PRECONDITION
    withdrawn = world.records(run)[1]
    assert (withdrawn.state, withdrawn.withdrawn, withdrawn.phase) == (ENDED, True, TaskExecution.ABORTED)
    assert world.jobs() == {"job-1": "running"}
    newer = world.create(run, 1)  # the executor's attempt 1 claims over the withdrawn one
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}
    assert world.poll(newer).phase == TaskExecution.RUNNING


# == 2. The caller's principal ================================================================================


# Was a break, now fixed: another role's GetTask answered the victim's task (its outputs, once done), its
# DeleteTask cancelled the victim's job, and its newer attempt superseded it
def test_another_principals_get_delete_and_newer_attempt_are_permission_denied(world, aws):
    run, victim, attacker = run_name(), signed_by("flyte-executor"), signed_by("data-scientist")
    handle = aws.create(world.request(run, 0), victim)
    assert aws.get(handle, victim).phase == TaskExecution.RUNNING
    assert world.records(run)[0].principal == f"arn:aws:sts::{ACCOUNT}:assumed-role/flyte-executor"

    assert aws.get(handle, attacker) == Code.PERMISSION_DENIED
    assert aws.delete(handle, attacker) == Code.PERMISSION_DENIED
    metrics = pb.GetTaskMetricsRequest(resource_meta=handle, task_category=LEDGER)
    assert aws.call("GetTaskMetrics", metrics, attacker) == Code.PERMISSION_DENIED
    assert aws.create(world.request(run, 0), attacker) == Code.PERMISSION_DENIED  # no handle handed out
    assert aws.create(world.request(run, 1), attacker) == Code.PERMISSION_DENIED  # the same task, even
    assert world.jobs() == {"job-1": "running"} and set(world.records(run)) == {0}
    assert aws.get(handle, victim).phase == TaskExecution.RUNNING


def test_the_same_role_in_another_session_is_the_same_principal(world, aws):
    """Two relays of one executor rollout (or one relay after its credentials renewed) sign with the
    same role in other sessions: the role is compared, not the session."""
    run = run_name()
    handle = aws.create(world.request(run, 0), signed_by("flyte-executor", "botocore-session-1"))
    other_pod = signed_by("flyte-executor", "botocore-session-2")
    assert aws.get(handle, other_pod).phase == TaskExecution.RUNNING
    newer = aws.create(world.request(run, 1), other_pod)
    assert isinstance(newer, bytes) and world.jobs() == {"job-1": "cancelled", "job-2": "running"}
    assert aws.delete(newer, signed_by("flyte-executor", "botocore-session-3")) == pb.DeleteTaskResponse()
    assert world.jobs()["job-2"] == "cancelled"


def test_without_a_principal_a_caller_reaches_only_tasks_created_without_one(world, aws):
    """``connectors serve`` (and the served app here) has no IAM: its tasks carry no principal, and an
    IAM caller cannot reach them; a task an IAM caller created refuses a caller without one."""
    local = world.create(run_name(), 0)  # over loopback: no API Gateway, no principal
    assert world.poll(local).phase == TaskExecution.RUNNING
    assert aws.get(local, signed_by("flyte-executor")) == Code.PERMISSION_DENIED
    signed = aws.create(world.request(run_name(), 0), signed_by("flyte-executor"))
    with pytest.raises(ConnectError) as caught:
        world.poll(signed)
    assert caught.value.code == Code.PERMISSION_DENIED


def test_a_lambda_event_without_an_iam_caller_is_unauthenticated(world, aws):
    assert aws.create(world.request(run_name(), 0), None) == Code.UNAUTHENTICATED
    assert world.jobs() == {}


def test_a_record_written_before_principals_were_kept_stays_readable(world, aws):
    """Records of an earlier release have no principal: they load, and any caller reaches them (as
    before) until they end and expire (docs/security.md: drain before upgrading to avoid this)."""
    run = run_name()
    key = TaskExecutionKey.from_metadata(world.request(run, 0).task_execution_metadata)
    assert key is not None
    old = TaskRecord(  # what the earlier release wrote: no principal, no task digest
        action_id=key.action_digest().hex(),
        attempt=0,
        secret=new_secret(),
        task_type="ledger",
        task_version=0,
        execution={"project": "flytesnacks", "domain": "development", "run": run, "action": "a0"},
    )
    store = world.service.store
    assert store.claim(old, 60).claimed
    job_id, _ = world.ledger.start("an earlier release's token", False)
    store.finish_create(old, LedgerMeta(job_id=job_id).encode(), TaskExecution.QUEUED)
    loaded = world.record(old.handle.encode())
    assert (loaded.principal, loaded.task_digest, loaded.withdrawn) == (None, None, None)
    assert aws.get(old.handle.encode(), signed_by("flyte-executor")).phase == TaskExecution.RUNNING


# == 3. Every call attributable ===============================================================================


def test_every_log_line_of_a_request_names_its_principal(world, in_lambda, capsys):
    run = run_name()
    handler = lambda_handler(["CreateTask"], service=world.service)
    body = world.request(run, 0).SerializeToString()
    capsys.readouterr()
    event = http_api_event("POST", f"{ASYNC}/CreateTask", body, iam=signed_by("flyte-executor", "pod-7"))
    assert handler(event, LambdaContext())["statusCode"] == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logged = [line for line in lines if "_aws" not in line]
    created = [line for line in logged if line["message"].startswith("created ledger task")]
    assert created, logged
    for line in logged:
        assert line["principal"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/flyte-executor", line
        assert line["caller_arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/flyte-executor/pod-7", line
