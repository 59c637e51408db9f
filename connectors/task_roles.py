"""Per-project identity: each task's AWS calls signed as its project's role (``TaskRoleArnPattern``).

With ``TASK_ROLE_ARN_PATTERN`` set (say ``arn:aws:iam::123456789012:role/flyte-{project}-{domain}``),
every AWS call an AWS connector makes for a task is signed with credentials of the role the pattern
names for the task's project and domain (:mod:`connectors.task_role_pattern`: what the pattern is,
and the role it names): the service assumes it (STS AssumeRole) with session tags
naming the task (``flyte-project``, ``flyte-domain``, ``flyte-run``, ``flyte-action``) and a
RoleSessionName and SourceIdentity naming it too, so a task never has more rights than its project's
role, and CloudTrail names the task in every call it made. The service's own role keeps DynamoDB,
its secrets and the right to assume those roles (template.yaml, docs/security.md).

How it is wired: the service sets the task's :class:`TaskScope` in a context variable when it acts
for a task (CreateTask, GetTask, DeleteTask, GetTaskMetrics, GetTaskLogs, and a canceller, the
reaper included, from the record's project and domain). ``connectors.builtin.aws.base.client``
then hands out clients whose credentials are :class:`_TaskCredentials`: at signing time (in the
worker thread that makes the call, which inherits the context) they look the scope up and sign
with that task's session. A client is still built once per process and service; only the
credentials differ per task. A call signed outside any scope while one was expected is refused,
never signed with the service's own credentials.

Sessions are cached per task (role, project, domain, run, action, attempt) for their lifetime (one
hour: the most AWS allows a role assumed from a Lambda's role) and refreshed by botocore ahead of
expiry (15 minutes before, without blocking other calls; from 10 minutes before, every caller waits
for the refresh). A session per task, not per project, because a session's tags, RoleSessionName
and SourceIdentity are fixed when it is assumed: a project-wide session could not name the task in
CloudTrail. The cost is one AssumeRole per task per warm function instance (benchmarks/task_roles.py
measures it); the polls after the first in an instance reuse the session.

A task may also declare a role (``template.security_context.run_as.iam_role`` or
``task_execution_metadata.identity.iam_role``): with the pattern set it is accepted only when it is
its own project's role, else ``permission_denied`` naming both, before any AWS call or record.
Without the pattern a role declared in the template is refused (the author asked for an identity
this deployment would not use: it would run with the service's broader role instead), and one in
the execution metadata, which a Flyte platform may stamp on every execution for its pods, is logged
and left aside, as it always was.
"""

from __future__ import annotations

import collections
import datetime
import functools
import hashlib
import json
import logging
import re
import threading
import time
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .aws_calls import aws_error, client_config, region
from .errors import Code, ConnectError
from .task_role_pattern import PLACEHOLDERS, RolePattern, parse_pattern

logger = logging.getLogger(__name__)

# STS: RoleSessionName and SourceIdentity are 2-64 characters of [\w+=,.@-].
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_+=,.@\-]")
SESSION_NAME_LIMIT = 64
# STS: a session tag's key up to 128 characters, its value up to 256, both of letters, spaces,
# numbers and _.:/=+-@ (Unicode).
TAG_VALUE_LIMIT = 256
TAG_KEYS = {"project": "flyte-project", "domain": "flyte-domain", "run": "flyte-run", "action": "flyte-action"}
# A role assumed with a role's credentials (a Lambda's) lasts at most one hour (role chaining).
SESSION_SECONDS = 3600
CACHE_LIMIT = 2048  # sessions kept per process, the least recently used dropped first


# -- a task's scope -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskScope:
    """Who the AWS calls made now act for: the role and the task they are signed as."""

    role_arn: str
    org: str
    project: str
    domain: str
    run: str
    action: str
    attempt: int

    @property
    def task(self) -> str:
        return f"{self.project}/{self.domain} {self.run}/{self.action}/{self.attempt}"

    @property
    def session_name(self) -> str:
        """RoleSessionName and SourceIdentity: ``project.domain.run.action.attempt``, shortened to
        ``run.action.attempt`` when that does not fit 64 characters, and given a digest of the whole
        when a character had to be replaced or the name cut (two tasks never share a name)."""
        whole = [self.project, self.domain, self.run, self.action, str(self.attempt)]
        clean = [_NAME_UNSAFE.sub("-", part) for part in whole]
        changed = clean != whole
        for parts in (clean, clean[2:]):
            text = ".".join(parts)
            if not changed and len(text) <= SESSION_NAME_LIMIT:
                return text
        digest = hashlib.blake2b(json.dumps(whole).encode(), digest_size=4).hexdigest()
        return ".".join(clean[2:])[: SESSION_NAME_LIMIT - len(digest) - 1] + "-" + digest

    @property
    def tags(self) -> list[dict[str, str]]:
        values = {"project": self.project, "domain": self.domain, "run": self.run, "action": self.action}
        return [{"Key": key, "Value": tag_value(values[name])} for name, key in TAG_KEYS.items()]


def tag_value(text: str) -> str:
    """``text`` as a session tag's value may be: letters, spaces and numbers (any script) and
    ``_.:/=+-@``; anything else as ``_``; at most 256 characters."""
    kept = "".join(ch if unicodedata.category(ch)[0] in "LZN" or ch in "_.:/=+-@" else "_" for ch in text)
    return kept[:TAG_VALUE_LIMIT]


@dataclass(frozen=True)
class _Refused:
    """A task whose role cannot be named: every AWS call made for it is refused with ``error``."""

    error: ConnectError


_scope: ContextVar[TaskScope | _Refused | None] = ContextVar("task_role_scope", default=None)


def in_scope() -> bool:
    """True when AWS calls made now are signed as a task's role (the pattern is set)."""
    return _scope.get() is not None


def current() -> TaskScope | None:
    scope = _scope.get()
    return scope if isinstance(scope, TaskScope) else None


def _scope_of(pattern: RolePattern, execution: dict[str, str], attempt: int) -> TaskScope:
    org, project, domain = (execution.get(name, "") for name in PLACEHOLDERS)
    return TaskScope(
        role_arn=pattern.role_for(org, project, domain),
        org=org,
        project=project,
        domain=domain,
        run=execution.get("run", ""),
        action=execution.get("action", ""),
        attempt=attempt,
    )


def declared_roles(request: Any) -> list[tuple[str, str]]:
    """(where, role ARN) of each role a CreateTaskRequest declares for its task."""
    found = []
    template = request.template
    if template.HasField("security_context") and template.security_context.run_as.iam_role:
        found.append(("template.security_context.run_as.iam_role", template.security_context.run_as.iam_role))
    metadata = request.task_execution_metadata
    if metadata.HasField("identity") and metadata.identity.iam_role:
        found.append(("task_execution_metadata.identity.iam_role", metadata.identity.iam_role))
    return found


def enter_create(pattern_text: str, execution: dict[str, str], attempt: int, request: Any) -> None:
    """CreateTask: refuse a role the task may not have, and act as its project's role from here
    on (the pattern set). Raises ``permission_denied`` before any AWS call or record."""
    pattern = parse_pattern(pattern_text)
    declared = declared_roles(request)
    if pattern is None:
        _scope.set(None)
        for where, role in declared:
            if where.startswith("template."):
                raise ConnectError(
                    Code.PERMISSION_DENIED,
                    f"the task declares IAM role {role} ({where}), but this deployment runs no task as a role "
                    "of its own (TaskRoleArnPattern is not set): its AWS calls would run as the connector "
                    "service's role instead. Remove the role from the task, or set TaskRoleArnPattern.",
                )
            logger.info(
                "the task names IAM role %s (%s); TaskRoleArnPattern is not set, so its AWS calls run as the "
                "connector service's role",
                role,
                where,
            )
        return
    scope = _scope_of(pattern, execution, attempt)
    for where, role in declared:
        if role != scope.role_arn:
            raise ConnectError(
                Code.PERMISSION_DENIED,
                f"the task declares IAM role {role} ({where}), but tasks of project {scope.project!r}, domain "
                f"{scope.domain!r} run as {scope.role_arn} (TaskRoleArnPattern {pattern.text}): a task may "
                "not run as another project's role",
            )
    _scope.set(scope)


def enter_record(pattern_text: str, execution: dict[str, str], attempt: int) -> None:
    """GetTask, DeleteTask, metrics, logs and the cancellers: act as the recorded task's project
    role (the pattern set). A record whose project names no role is refused only when an AWS call
    is made for it (an ended task is still answered from its record)."""
    pattern = parse_pattern(pattern_text)
    if pattern is None:
        _scope.set(None)
        return
    try:
        _scope.set(_scope_of(pattern, execution, attempt))
    except ConnectError as error:
        _scope.set(_Refused(error))


# -- sessions -----------------------------------------------------------------------------------


class _Sessions:
    """Each task's credentials, assumed on the first call signed for it and refreshed by botocore
    ahead of expiry; the least recently used dropped beyond ``limit``."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._sessions: collections.OrderedDict[TaskScope, Any] = collections.OrderedDict()
        self._sts: Any = None
        self.assumed = 0  # AssumeRole calls that answered, for the benchmark and the tests
        self.assume_seconds = 0.0

    def credentials(self, scope: TaskScope) -> Any:
        with self._lock:
            found = self._sessions.get(scope)
            if found is not None:
                self._sessions.move_to_end(scope)
                return found
            from botocore.credentials import DeferredRefreshableCredentials

            found = DeferredRefreshableCredentials(
                refresh_using=functools.partial(self._assume, scope), method="flyte-task-role", time_fetcher=_utc_now
            )
            self._sessions[scope] = found
            while len(self._sessions) > self.limit:
                self._sessions.popitem(last=False)
            return found

    def forget(self) -> None:
        """Drop every session, keeping the STS client (a new function instance's first calls, as
        benchmarks/task_roles.py measures them)."""
        with self._lock:
            self._sessions.clear()

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._sts = None

    def _client(self) -> Any:
        with self._lock:
            if self._sts is None:
                import boto3

                # The service's own credentials (the function's role): the one client that uses them.
                self._sts = boto3.session.Session().client("sts", region_name=region(), config=client_config())
            return self._sts

    def _assume(self, scope: TaskScope) -> dict[str, str]:
        started = time.perf_counter()
        try:
            answer = self._client().assume_role(
                RoleArn=scope.role_arn,
                RoleSessionName=scope.session_name,
                SourceIdentity=scope.session_name,
                Tags=scope.tags,
                DurationSeconds=SESSION_SECONDS,
            )
        except Exception as error:
            failure = aws_error(error, f"sts AssumeRole of {scope.role_arn} for {scope.task}")
            if failure.code == Code.PERMISSION_DENIED:
                failure = ConnectError(
                    failure.code,
                    f"{failure.message} (the role must exist and trust this service's function roles with "
                    "sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity: docs/security.md)",
                )
            raise failure from None
        elapsed = time.perf_counter() - started
        with self._lock:
            self.assumed += 1
            self.assume_seconds += elapsed
        found = answer["Credentials"]
        logger.info("assumed %s for %s in %.0f ms", scope.role_arn, scope.task, elapsed * 1000)
        return {
            "access_key": found["AccessKeyId"],
            "secret_key": found["SecretAccessKey"],
            "token": found["SessionToken"],
            "expiry_time": found["Expiration"].isoformat(),
        }


def _utc_now() -> datetime.datetime:
    """What botocore compares a session's expiry with on every signing: its own default reads the
    local zone each time (about 55 us here), UTC about 3 us (benchmarks/task_roles.py)."""
    return datetime.datetime.now(datetime.UTC)


SESSIONS = _Sessions()


def reset() -> None:
    """Forget every session (after a SnapStart restore, and between benchmark runs)."""
    SESSIONS.reset()


def _frozen() -> Any:
    scope = _scope.get()
    if isinstance(scope, _Refused):
        raise scope.error
    if scope is None:  # a task-role client used outside any task: never the service's own identity
        raise ConnectError(
            Code.PERMISSION_DENIED, "an AWS call was made for no task while TaskRoleArnPattern is set; refused"
        )
    return SESSIONS.credentials(scope).get_frozen_credentials()


def _credentials_class() -> type[Any]:
    from botocore.credentials import Credentials

    class _TaskCredentials(Credentials):
        """A client's credentials that are, at each signing, those of the task the call is made for."""

        def __init__(self) -> None:  # no fixed keys: each read looks the task up
            self.method = "flyte-task-role"

        def get_frozen_credentials(self) -> Any:
            return _frozen()

        @property
        def access_key(self) -> str:
            return str(_frozen().access_key)

        @property
        def secret_key(self) -> str:
            return str(_frozen().secret_key)

        @property
        def token(self) -> str | None:
            return _frozen().token

        @property
        def account_id(self) -> None:
            return None

    return _TaskCredentials


def botocore_session() -> Any:
    """A botocore session whose clients sign as the task in scope (``base.client`` builds on it)."""
    import botocore.session
    from botocore.credentials import CredentialProvider, CredentialResolver

    credentials = _credentials_class()()

    class _Provider(CredentialProvider):
        METHOD = "flyte-task-role"

        def load(self) -> Any:
            return credentials

    session = botocore.session.get_session()
    session.register_component("credential_provider", CredentialResolver([_Provider()]))
    return session


__all__ = [
    "SESSIONS",
    "TaskScope",
    "botocore_session",
    "current",
    "declared_roles",
    "enter_create",
    "enter_record",
    "in_scope",
    "reset",
    "tag_value",
]
