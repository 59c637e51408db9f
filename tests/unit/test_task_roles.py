"""connectors/task_roles.py without AWS: the pattern (connectors/task_role_pattern.py), the names
and tags a session is assumed with, the declared-role rules, and a client's credentials chosen per
task at signing time."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import security_pb2, tasks_pb2

from connectors import task_role_pattern, task_roles
from connectors.errors import Code, ConnectError
from connectors.settings import Settings

PATTERN = "arn:aws:iam::123456789012:role/flyte-{project}-{domain}"
EXECUTION = {"org": "", "project": "flytesnacks", "domain": "development", "run": "r1", "action": "a0"}
STS_NAME = re.compile(r"[\w+=,.@-]{2,64}")  # RoleSessionName and SourceIdentity


def scope(**changes: Any) -> task_roles.TaskScope:
    fields = {**EXECUTION, "attempt": 0, "role_arn": "arn:aws:iam::123456789012:role/x", **changes}
    return task_roles.TaskScope(**fields)


# -- the pattern --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        PATTERN,
        "arn:aws:iam::123456789012:role/flyte/{domain}/{project}",
        "arn:aws-us-gov:iam::123456789012:role/{org}.{project}",
        "arn:aws:iam::123456789012:role/one-role-for-all",
    ],
)
def test_a_role_arn_with_known_placeholders_is_a_pattern(text: str) -> None:
    assert task_role_pattern.parse_pattern(text) == task_role_pattern.RolePattern(text)
    assert Settings(task_role_arn_pattern=text).task_role_arn_pattern == text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("flyte-{project}", "must be an IAM role ARN"),
        ("arn:aws:iam::123:role/flyte-{project}", "must be an IAM role ARN"),
        ("arn:aws:iam::123456789012:user/{project}", "must be an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/flyte-{team}", "only {org}, {project} and {domain}"),
        ("arn:aws:iam::123456789012:role/flyte-*", "no wildcards"),
        ("arn:aws:iam::123456789012:role/flyte {project}", "no wildcards"),
    ],
)
def test_anything_else_fails_the_cold_start_naming_why(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        Settings(task_role_arn_pattern=text)


def test_the_iam_resource_is_the_pattern_with_stars() -> None:
    assert task_role_pattern.RolePattern(PATTERN).iam_resource() == "arn:aws:iam::123456789012:role/flyte-*-*"


def test_a_project_and_domain_name_their_role() -> None:
    pattern = task_role_pattern.RolePattern(PATTERN)
    assert (
        pattern.role_for("", "flytesnacks", "development")
        == "arn:aws:iam::123456789012:role/flyte-flytesnacks-development"
    )
    # a placeholder the pattern does not use needs no value
    assert task_role_pattern.RolePattern("arn:aws:iam::123456789012:role/p-{project}").role_for("", "a", "") == (
        "arn:aws:iam::123456789012:role/p-a"
    )


@pytest.mark.parametrize(
    ("project", "domain", "needle"),
    [
        ("", "development", "names no project"),
        ("flytesnacks", "", "names no domain"),
        ("a/b", "development", "characters an IAM role name cannot hold"),
        ("a*", "development", "characters an IAM role name cannot hold"),
        ("sn\u00e4cks", "development", "characters an IAM role name cannot hold"),
        ("p" * 60, "development", "longer than IAM's 64"),
    ],
)
def test_a_project_that_cannot_name_a_role_is_permission_denied(project: str, domain: str, needle: str) -> None:
    with pytest.raises(ConnectError) as caught:
        task_role_pattern.RolePattern(PATTERN).role_for("", project, domain)
    assert caught.value.code == Code.PERMISSION_DENIED and needle in caught.value.message


# -- what a session is assumed with -------------------------------------------------------------


def test_a_session_is_named_after_the_task() -> None:
    assert scope().session_name == "flytesnacks.development.r1.a0.0"
    assert scope(attempt=3, action="n-2").session_name == "flytesnacks.development.r1.n-2.3"


def test_a_long_name_drops_the_project_then_is_cut_with_a_digest() -> None:
    run = "r" * 40
    assert scope(run=run).session_name == f"{run}.a0.0"  # project and domain are in the role's name
    long = scope(run="r" * 80).session_name
    assert len(long) == 64 and STS_NAME.fullmatch(long)
    assert long != scope(run="r" * 79 + "s").session_name  # cut alike, told apart by the digest


def test_characters_sts_refuses_are_replaced_and_a_digest_keeps_names_apart() -> None:
    odd = scope(action="a:0/1").session_name
    assert STS_NAME.fullmatch(odd) and odd.startswith("r1.a-0-1.0-")
    assert odd != scope(action="a-0-1").session_name
    assert scope(action="a-0-1").session_name == "flytesnacks.development.r1.a-0-1.0"


def test_the_session_tags_name_project_domain_run_and_action() -> None:
    assert scope().tags == [
        {"Key": "flyte-project", "Value": "flytesnacks"},
        {"Key": "flyte-domain", "Value": "development"},
        {"Key": "flyte-run", "Value": "r1"},
        {"Key": "flyte-action", "Value": "a0"},
    ]


def test_a_tag_value_keeps_what_sts_allows_and_fits_its_length() -> None:
    assert task_roles.tag_value("a b_c.d:e/f=g+h-i@j") == "a b_c.d:e/f=g+h-i@j"
    assert (
        task_roles.tag_value("caf\u00e9 \u6771\u4eac 42") == "caf\u00e9 \u6771\u4eac 42"
    )  # letters and numbers of any script
    assert task_roles.tag_value("a*b,c;d\n\"e'") == "a_b_c_d__e_"
    assert len(task_roles.tag_value("x" * 300)) == 256


# -- declared roles -----------------------------------------------------------------------------


def request(template_role: str = "", metadata_role: str = "") -> pb.CreateTaskRequest:
    made = pb.CreateTaskRequest(template=tasks_pb2.TaskTemplate(type="athena_query"))
    if template_role:
        made.template.security_context.run_as.iam_role = template_role
    if metadata_role:
        made.task_execution_metadata.identity.CopyFrom(security_pb2.Identity(iam_role=metadata_role))
    return made


OWN = "arn:aws:iam::123456789012:role/flyte-flytesnacks-development"
OTHER = "arn:aws:iam::123456789012:role/flyte-analytics-production"


def enter(pattern: str, made: pb.CreateTaskRequest) -> task_roles.TaskScope | None:
    async def run() -> task_roles.TaskScope | None:  # in a task of its own: the scope stays there
        task_roles.enter_create(pattern, EXECUTION, 0, made)
        return task_roles.current()

    return asyncio.run(run())


def test_with_the_pattern_the_task_acts_as_its_project_role() -> None:
    found = enter(PATTERN, request())
    assert found == scope(role_arn=OWN)
    assert enter(PATTERN, request(OWN, OWN)) == found  # naming its own role changes nothing


@pytest.mark.parametrize(
    ("made", "where"),
    [
        (request(template_role=OTHER), "template.security_context.run_as.iam_role"),
        (request(metadata_role=OTHER), "task_execution_metadata.identity.iam_role"),
        (request(OWN, OTHER), "task_execution_metadata.identity.iam_role"),
    ],
)
def test_with_the_pattern_another_role_is_refused_naming_both(made: pb.CreateTaskRequest, where: str) -> None:
    with pytest.raises(ConnectError) as caught:
        enter(PATTERN, made)
    assert caught.value.code == Code.PERMISSION_DENIED
    assert OTHER in caught.value.message and OWN in caught.value.message and where in caught.value.message


def test_without_the_pattern_a_template_role_is_refused_and_a_metadata_role_left_aside(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConnectError) as caught:
        enter("", request(template_role=OWN))
    assert caught.value.code == Code.PERMISSION_DENIED and "TaskRoleArnPattern is not set" in caught.value.message
    with caplog.at_level("INFO", logger="connectors.task_roles"):
        assert enter("", request(metadata_role=OWN)) is None
    assert OWN in caplog.text and "service's role" in caplog.text
    assert enter("", request()) is None


# -- credentials chosen per task at signing time --------------------------------------------------


class FakeSts:
    """Answers AssumeRole with a new key each time, and counts."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def assume_role(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{len(self.asked):04d}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
            }
        }


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> FakeSts:
    fake = FakeSts()
    sessions = task_roles._Sessions()
    monkeypatch.setattr(sessions, "_client", lambda: fake)
    monkeypatch.setattr(task_roles, "SESSIONS", sessions)
    return fake


def signed_key(execution: dict[str, str], attempt: int = 0) -> str:
    """The access key a client of task_roles.botocore_session() signs with, for this task."""
    credentials = task_roles.botocore_session().get_credentials()

    async def run() -> str:
        task_roles.enter_record(PATTERN, execution, attempt)
        frozen = await asyncio.to_thread(credentials.get_frozen_credentials)  # as a call's worker thread
        return str(frozen.access_key)

    return asyncio.run(run())


def test_each_task_signs_with_its_own_session_assumed_once(sts: FakeSts) -> None:
    first = signed_key(EXECUTION)
    assert signed_key(EXECUTION) == first  # cached for the session's lifetime
    second = signed_key({**EXECUTION, "run": "r2"})
    other = signed_key({**EXECUTION, "project": "analytics"})
    assert len({first, second, other}) == 3
    assert [asked["RoleArn"] for asked in sts.asked] == [
        OWN,
        OWN,
        "arn:aws:iam::123456789012:role/flyte-analytics-development",
    ]
    assert sts.asked[0]["SourceIdentity"] == sts.asked[0]["RoleSessionName"] == "flytesnacks.development.r1.a0.0"
    assert sts.asked[0]["DurationSeconds"] == 3600


def test_a_session_near_its_end_is_assumed_again_before_it_expires(sts: FakeSts, monkeypatch) -> None:
    signed_key(EXECUTION)
    credentials = task_roles.SESSIONS.credentials(scope(role_arn=OWN))
    # botocore refreshes from 15 minutes before the end (advisory), and blocks from 10 (mandatory)
    credentials._expiry_time = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=12)
    assert signed_key(EXECUTION) == "ASIA0002" and len(sts.asked) == 2


def test_a_call_with_no_task_in_scope_or_a_refused_one_is_never_signed() -> None:
    credentials = task_roles.botocore_session().get_credentials()
    with pytest.raises(ConnectError, match="for no task"):
        asyncio.run(asyncio.to_thread(credentials.get_frozen_credentials))

    async def refused() -> None:
        task_roles.enter_record(PATTERN, {**EXECUTION, "project": ""}, 0)
        await asyncio.to_thread(credentials.get_frozen_credentials)

    with pytest.raises(ConnectError, match="names no project") as caught:
        asyncio.run(refused())
    assert caught.value.code == Code.PERMISSION_DENIED


def test_an_assume_role_refused_by_aws_is_permission_denied_saying_what_the_role_needs(monkeypatch) -> None:
    from botocore.exceptions import ClientError

    class Refusing:
        def assume_role(self, **params: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"}},
                "AssumeRole",
            )

    sessions = task_roles._Sessions()
    monkeypatch.setattr(sessions, "_client", lambda: Refusing())
    monkeypatch.setattr(task_roles, "SESSIONS", sessions)
    with pytest.raises(ConnectError) as caught:
        signed_key(EXECUTION)
    assert caught.value.code == Code.PERMISSION_DENIED
    assert OWN in caught.value.message and "sts:TagSession" in caught.value.message
