"""What the AWS connectors share: clients, the template's fields (``fields.py``), phase tables,
names, errors.

Each AWS connector is one short module that reads like its row in docs/aws-connectors.md: it
subclasses :class:`AwsConnector`, reads its template with :class:`Fields`, calls AWS through
:meth:`AwsConnector.aws` and maps AWS's status words with a :class:`PhaseTable`.

- Clients are built once per process (per service), with the service's retry and timeout
  settings; boto3 finds the endpoint the usual way (``AWS_ENDPOINT_URL``, or
  ``AWS_ENDPOINT_URL_<SERVICE>``: ``make serve`` points them at its embedded moto server).
- Every AWS call runs in a worker thread (boto3 blocks) and its failure becomes a Connect error by
  kind: validation -> invalid_argument, access denied -> permission_denied, throttling ->
  resource_exhausted, not found -> not_found, conflict -> failed_precondition, AWS's own
  failures and the network -> unavailable; AWS's message is kept.
- :func:`token_name` derives a remote job's name from the attempt's idempotency token, for APIs
  that take no client token: the same attempt always gets the same name, so a create retried
  after a crash finds the job it started instead of starting another.
- :func:`scope_tag` is the tag template.yaml's IAM policies scope the service by: the connectors
  whose jobs can be tagged at creation (Batch, EMR Serverless, SageMaker) put it on each job.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl2.core.tasks_pb2 import TaskTemplate

from ... import task_roles
from ...aws_calls import aws_error, client_config, error_code, forget_profile_region, region
from ...connector import AsyncConnector, M
from ...connector_calls import call_seconds_left
from ...errors import Code, internal, invalid_argument
from .fields import Fields, MapLimits, aws_shape

__all__ = [
    "AwsConnector",
    "Fields",
    "PhaseTable",
    "aws_error",
    "aws_shape",
    "client",
    "cloudwatch_log_url",
    "console_url",
    "error_code",
    "input_text",
    "inputs_json",
    "is_blob",
    "is_dataframe",
    "json_data",
    "log_link",
    "output_names",
    "region",
    "scope_tag",
    "scoped_tags",
    "stem_of",
    "token_name",
]

T = TypeVar("T")

# -- clients -----------------------------------------------------------------------------------

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client(service: str, *, once: bool = False) -> Any:
    """The process's boto3 client for ``service``, built on first use. ``once``: a client that
    never resends a call, for start calls that carry no client token (a call resent after its
    answer was lost would start a second job). While the service acts for a task under
    TaskRoleArnPattern, a client that signs each call as that task's project role
    (connectors/task_roles.py)."""
    as_task = task_roles.in_scope()
    key = (f"{service}/once" if once else service) + ("/task-role" if as_task else "")
    found = _clients.get(key)
    if found is not None:
        return found
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = client_config()
            if once:
                # total_max_attempts: botocore reads "max_attempts" as retries (1 = two sends)
                config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))
            # The region the console links name too: AWS_REGION first (Lambda sets it; botocore
            # alone reads only AWS_DEFAULT_REGION and the profile).
            session = (
                boto3.session.Session(botocore_session=task_roles.botocore_session())
                if as_task
                else boto3.session.Session()
            )
            _clients[key] = session.client(service, region_name=region(), config=config)
        return _clients[key]


def reset_clients() -> None:
    """Forget every client built (after a SnapStart restore: their connections and credentials
    belong to the snapshot); the next call builds them again."""
    forget_profile_region()
    task_roles.reset()
    with _clients_lock:
        _clients.clear()


# -- the scope tag -----------------------------------------------------------------------------

SCOPE_TAG_KEY_ENV = "CONNECTOR_TAG_KEY"
SCOPE_TAG_VALUE_ENV = "CONNECTOR_TAG_VALUE"


def scope_tag() -> tuple[str, str] | None:
    """The tag (key, value) template.yaml scopes this stack's IAM grants by: ConnectorTagKey and
    ConnectorTagValue (the stack's name by default), in CONNECTOR_TAG_KEY and CONNECTOR_TAG_VALUE.
    A job started with it is one IAM lets the service look up and stop later, and a Batch job, an
    EMR Serverless run or a SageMaker job started without it is refused (aws:RequestTag;
    docs/security.md). None where the variables are unset (``make serve``, most tests)."""
    key = os.environ.get(SCOPE_TAG_KEY_ENV, "").strip()
    return (key, os.environ.get(SCOPE_TAG_VALUE_ENV, "").strip()) if key else None


def scoped_tags(fields: Fields, limits: MapLimits) -> dict[str, str]:
    """``template.custom.tags`` (a string map within ``limits``) with :func:`scope_tag` added; a
    template may not set that key itself, in any case."""
    tags = fields.string_map("tags")
    scope = scope_tag()
    if scope is None:
        limits.check(fields.task_type, "template.custom.tags", list(tags.items()))
        return tags
    key, value = scope
    # In any case: IAM reads a condition key's name (aws:RequestTag/<key>, aws:ResourceTag/<key>)
    # without regard to case, where Batch and EMR Serverless keep "Flyte-Connectors" beside
    # "flyte-connectors": a job would carry two values of the one tag IAM scopes the service by.
    taken = [given for given in tags if given.casefold() == key.casefold()]
    if taken:
        raise invalid_argument(
            f"{fields.task_type}: template.custom.tags may not set {key!r} (in any case, as {taken[0]!r}), "
            f"which the connector sets (the tag this service's IAM grants are scoped by)"
        )
    limits.check(
        fields.task_type, "template.custom.tags", list(tags.items()), own=(1, f"{key}, the tag IAM scopes it by")
    )
    return {**tags, key: value}


# -- phases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseTable:
    """AWS's status words of one job kind, each to a Flyte phase."""

    service: str
    phases: Mapping[str, TaskExecution.Phase.ValueType]

    def phase(self, status: str) -> TaskExecution.Phase.ValueType:
        """The phase for a status; an unknown word is ``internal`` (a poll error the executor counts),
        never a guess that could end a running job's task."""
        try:
            return self.phases[status]
        except KeyError:
            raise internal(f"{self.service} reported status {status!r}, which this connector does not know") from None

    @property
    def terminal(self) -> frozenset[str]:
        ended = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}
        return frozenset(word for word, phase in self.phases.items() if phase in ended)


# -- names and links ---------------------------------------------------------------------------


def token_name(token: str, limit: int, *, stem: str = "flyte", allowed: str = "A-Za-z0-9-") -> str:
    """A remote job's name for an attempt: ``<stem>-<token>``, the stem cut to fit ``limit`` and its
    characters outside ``allowed`` (a regex character class) replaced by ``-``. The token (32
    hex characters, one per attempt) is always whole, so the name is one attempt's and only its."""
    if not token or not re.fullmatch(r"[0-9a-f]{16,64}", token):
        raise internal(f"idempotency token {token!r} is not the service's hex form")
    room = limit - len(token) - 1
    clean = re.sub(r"-{2,}", "-", re.sub(rf"[^{allowed}]+", "-", stem)).strip("-_")[: max(0, room)].rstrip("-_")
    return f"{clean}-{token}" if clean else token


def stem_of(task_execution_metadata: Any, default: str = "flyte") -> str:
    """A readable stem for remote names: the run's name and the action's, when the executor sent them."""
    try:
        node = task_execution_metadata.task_execution_id.node_execution_id
        parts = [node.execution_id.name, node.node_id]
    except AttributeError:
        return default
    text = "-".join(part for part in parts if part)
    return text or default


def console_url(path: str) -> str:
    """An AWS console link in the service's region (``path`` after ``console.aws.amazon.com/``)."""
    where = region()
    return f"https://{where}.console.aws.amazon.com/{path.replace('{region}', where)}"


def cloudwatch_log_url(group: str, stream: str = "") -> str:
    """The CloudWatch console page of a log group, or of one stream in it."""

    def escape(text: str) -> str:  # the console's own escaping of slashes and the like in its fragment
        from urllib.parse import quote

        return quote(quote(text, safe=""), safe="").replace("%", "$")

    fragment = f"logsV2:log-groups/log-group/{escape(group)}"
    if stream:
        fragment += f"/log-events/{escape(stream)}"
    return console_url(f"cloudwatch/home?region={{region}}#{fragment}")


def log_link(name: str, uri: str) -> TaskLog:
    return TaskLog(name=name, uri=uri)


def input_text(value: Any) -> str:
    """An input as the text AWS APIs take for parameters and arguments: numbers and strings as
    written, booleans as ``true``/``false``, times in ISO 8601, files and DataFrames by their
    URI, lists and objects as JSON."""
    import datetime
    import json

    from ... import literals

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value.total_seconds())
    if isinstance(value, (literals.FileRef, literals.DirRef, literals.DataFrameRef)):
        return value.uri
    if value is None:
        return ""
    return json.dumps(json_data(value), separators=(",", ":"), sort_keys=True)


def json_data(value: Any) -> Any:
    """Inputs, or an AWS answer, as plain JSON data (references by URI, times in ISO 8601)."""
    if isinstance(value, dict):
        return {str(key): json_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_data(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return input_text(value)


def inputs_json(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inputs as one JSON object (Step Functions input, and the like)."""
    return {name: json_data(value) for name, value in (inputs or {}).items()}


# -- the connector base ------------------------------------------------------------------------


IamActions = Mapping[str, tuple[str, ...]]  # an operation ("create", "get"...) -> the IAM actions it needs


class AwsConnector(AsyncConnector[M]):
    """An AWS connector: ``service`` names its boto3 client; :meth:`aws` makes its calls."""

    service: str  # the boto3 service name ("athena", "batch", ...)
    iam_actions: ClassVar[IamActions]  # what template.yaml grants each function that serves an operation

    @property
    def client(self) -> Any:
        return client(self.service)

    async def aws(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``operation`` (the client's snake_case method) in a worker thread; AWS's failures
        come back as Connect errors by kind (see :func:`aws_error`)."""
        return await self.aws_call(self.service, operation, **params)

    async def aws_once(self, operation: str, **params: Any) -> dict[str, Any]:
        """:meth:`aws`, sent once and never resent by botocore: for a start call with no client
        token. When its answer is lost the job may exist: look it up before failing."""
        return await self.aws_call(self.service, operation, _once=True, **params)

    async def aws_call(self, service: str, operation: str, *, _once: bool = False, **params: Any) -> dict[str, Any]:
        """:meth:`aws` on another service's client (CloudWatch Logs, IAM...)."""
        method = getattr(client(service, once=_once), operation)
        what = f"{service} {_api_name(operation)}"
        for pause in ONCE_THROTTLE_PAUSES:
            try:
                return await asyncio.to_thread(functools.partial(method, **params))
            except Exception as error:
                failure = aws_error(error, what)
            # A call sent once (no client token: botocore's retries could start a second job) may
            # still be tried again when AWS throttled it: a throttled call is refused before it acts.
            left = call_seconds_left()
            if not _once or failure.code != Code.RESOURCE_EXHAUSTED or (left is not None and left < pause + 1):
                raise failure
            await asyncio.sleep(pause * (0.5 + random.random() / 2))  # noqa: S311 - jitter, nothing secret
        raise failure

    def fields(self, template: TaskTemplate) -> Fields:
        return Fields(self.task_type_name, template)

    def refuse_unfilled_outputs(self, template: TaskTemplate, fillable: tuple[str, ...] | list[str] = ()) -> None:
        """``invalid_argument`` for a declared output this kind of job never gives: its task could
        only end FAILED (or wait for an outputs.pb no one writes), so no job is started for it."""
        unfilled = [name for name in output_names(template) if name not in fillable]
        if unfilled:
            raise invalid_argument(
                f"{self.task_type_name}: the task declares output(s) {', '.join(map(repr, unfilled))}, which a "
                f"{self.task_type_name} job does not give"
                + (f" (it gives only {', '.join(map(repr, fillable))})" if fillable else " (declare none)")
            )


# The pauses before each further try of a throttled call sent once (jittered by up to half).
ONCE_THROTTLE_PAUSES = (0.25, 0.5, 1.0, 0.0)


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def output_names(template: TaskTemplate, predicate: Callable[[Any], bool] | None = None) -> list[str]:
    """The declared outputs' names, in order; with ``predicate``, those whose LiteralType it accepts."""
    return [
        entry.key for entry in template.interface.outputs.variables if predicate is None or predicate(entry.value.type)
    ]


def is_dataframe(literal_type: Any) -> bool:
    return literal_type.HasField("structured_dataset_type")


def is_blob(literal_type: Any, multipart: bool | None = None) -> bool:
    if not literal_type.HasField("blob"):
        return False
    return multipart is None or (literal_type.blob.dimensionality == 1) == multipart
