"""What the SageMaker training and processing connectors share: the job's name, adoption, phases.

- Name: ``token_name(token, 63, stem=stem_of(metadata), allowed="A-Za-z0-9-")``, which always
  matches SageMaker's ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``: one attempt, one name.
- SageMaker has no client token, so create first describes that name: no such job -> create it,
  tagged ``flyte:idempotency-token=<token>`` (and with the stack's scope tag, base.scope_tag, by
  which IAM lets the service create, look up and stop it); a job carrying our token -> adopt it (a
  create retried after a crash); a job of that name without it -> failed_precondition naming the job.
- Phases: InProgress (INITIALIZING while instances start and data downloads, then RUNNING),
  Completed, Failed (RETRYABLE_FAILED when FailureReason says capacity or an internal error),
  Stopping, Stopped (ABORTED).
- delete: Stop; a job that has ended (or is already stopping) stays as it is.
- get: Describe, mapped by the kind's ``job_resource``; its state-change events ("SageMaker
  Training Job State Change", "SageMaker Processing Job State Change", aws.sagemaker), keyed by
  the job's name, are mapped by the same function.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from flyteidl2.connector.connector_pb2 import GetTaskLogsResponse
from flyteidl2.core.execution_pb2 import TaskExecution

from ... import literals
from ...connector import M, Resource
from ...errors import Code, ConnectError, failed_precondition, invalid_argument, not_found
from ...job_events import detail_status
from .base import (
    AwsConnector,
    Fields,
    PhaseTable,
    aws_shape,
    cloudwatch_log_url,
    console_url,
    input_text,
    log_link,
    scope_tag,
    stem_of,
    token_name,
)
from .fields import Limit, MapLimits
from .logs import cloudwatch_log_pages

TOKEN_TAG = "flyte:idempotency-token"  # noqa: S105 - the key of a tag, not a secret
NAME_LIMIT = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PHASES = PhaseTable(
    "sagemaker",
    {
        "InProgress": TaskExecution.RUNNING,  # INITIALIZING while its SecondaryStatus is one of STARTING
        "Completed": TaskExecution.SUCCEEDED,
        "Failed": TaskExecution.FAILED,  # RETRYABLE_FAILED when FailureReason matches TRANSIENT
        "Stopping": TaskExecution.RUNNING,  # still ending: ABORTED once Stopped
        "Stopped": TaskExecution.ABORTED,  # FAILED when its own StoppingCondition stopped it
        "Deleting": TaskExecution.FAILED,  # someone deletes the job: it will never give a result
    },
)
# SecondaryStatus of a job that SageMaker stopped by its StoppingCondition, not by a StopJob call.
STOPPED_BY_LIMIT = frozenset({"MaxRuntimeExceeded", "MaxWaitTimeExceeded"})
STARTING = frozenset(
    {"Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack", "Downloading", "DownloadingTrainingImage"}
)
TRANSIENT = re.compile(r"capacity|InternalServerError|internal (server )?error|ServiceUnavailable", re.IGNORECASE)
REFS = (literals.FileRef, literals.DirRef, literals.DataFrameRef)
# botocore's sagemaker model: Tags is a TagList (max 50) of Tag {Key: TagKey (1..128), Value:
# TagValue (max 256)}, for CreateTrainingJob and CreateProcessingJob alike. The connector adds
# TOKEN_TAG itself, and in a deployment the scope tag, so a template may give at most 49 (or 48).
TAGS = MapLimits(
    Limit("sagemaker", "TagList", 50, means="a SageMaker job's Tags", unit="tags"),
    Limit("sagemaker", "TagKey", 128, least=1, means="a tag's Key"),
    Limit("sagemaker", "TagValue", 256, means="a tag's Value"),
)
TOKEN_TAG_USE = f"{TOKEN_TAG}, by which a retried create finds its job"


def job_name(token: str, task_execution_metadata: Any) -> str:
    return token_name(token, NAME_LIMIT, stem=stem_of(task_execution_metadata), allowed="A-Za-z0-9-")


def tags_of(fields: Fields, token: str) -> list[dict[str, str]]:
    """``tags`` (a string map, or AWS's list of {Key, Value}), our token tag and the stack's scope
    tag, as AWS takes them."""
    given = fields.data.get("tags")
    if isinstance(given, list):
        if not all(
            isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str) for t in given
        ):
            raise invalid_argument(
                f"{fields.task_type}: template.custom.tags must be a string map or a list of {{Key, Value}} strings"
            )
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in given]
    else:
        tags = [{"Key": key, "Value": value} for key, value in fields.string_map("tags").items()]
    ours = [{"Key": TOKEN_TAG, "Value": token}] if token else []
    uses = [TOKEN_TAG_USE] if token else []
    scope = scope_tag()
    if scope is not None:
        ours.append({"Key": scope[0], "Value": scope[1]})
        uses.append(f"{scope[0]}, the tag IAM scopes it by")
    for key in (tag["Key"] for tag in ours):  # in any case, as IAM reads a tag key (base.scoped_tags)
        if any(tag["Key"].casefold() == key.casefold() for tag in tags):
            raise invalid_argument(
                f"{fields.task_type}: template.custom.tags may not set {key} (in any case), which the connector sets"
            )
    pairs = [(tag["Key"], tag["Value"]) for tag in tags]
    TAGS.check(fields.task_type, "template.custom.tags", pairs, own=(len(ours), "; ".join(uses)))
    return [*tags, *ours]


def s3_ref(task_type: str, name: str, value: Any) -> str:
    """A file/directory/DataFrame input's S3 URI (SageMaker reads S3 only)."""
    if not value.uri.startswith("s3://"):
        raise invalid_argument(
            f"{task_type}: input {name!r} is at {value.uri!r}, which SageMaker cannot read (it reads s3:// URIs only)"
        )
    return value.uri


def with_ref_inputs(
    fields: Fields,
    name: str,
    key: str,
    inputs: dict[str, Any] | None,
    clash: str,
    entry: Callable[[str, str], dict[str, Any]],
) -> list[Any]:
    """The objects of template.custom.``name`` (each named by its ``key``), then one per file,
    directory or DataFrame input: ``entry(input's name, its S3 URI)``. An input with the name of one
    of those objects is invalid_argument: ``clash`` (``{name}``: the input's name) says which."""
    items = fields.named_objects(name, key)
    taken = {item.get(key) for item in items if isinstance(item, dict)}
    for input_name, value in (inputs or {}).items():
        if not isinstance(value, REFS):
            continue
        if input_name in taken:
            raise invalid_argument(
                f"{fields.task_type}: template.custom.{name} already has {clash.format(name=repr(input_name))}"
            )
        items = [*items, entry(input_name, s3_ref(fields.task_type, input_name, value))]
    return items


def scalar_inputs(inputs: dict[str, Any] | None) -> dict[str, str]:
    """The inputs that are not files, directories or DataFrames, as text."""
    return {name: input_text(value) for name, value in (inputs or {}).items() if not isinstance(value, REFS)}


def with_scalar_inputs(fields: Fields, name: str, inputs: dict[str, Any] | None, limits: MapLimits) -> dict[str, str]:
    """The string map ``name`` with each scalar input by its text (an input wins over a template
    key of its name), within ``limits``: an entry too long is named as its input or its field."""
    scalars = scalar_inputs(inputs)
    merged = {**fields.string_map(name), **scalars}
    limits.check(fields.task_type, f"template.custom.{name}", list(merged.items()), inputs=scalars)
    return merged


class SageMakerJobConnector(AwsConnector[M]):
    """A SageMaker job kind: ``kind`` ("training"/"processing") names its API calls and fields."""

    service = "sagemaker"
    kind: str
    console_path: str  # the console page of one job, after "#/": "jobs" or "processing-jobs"
    log_group: str  # "/aws/sagemaker/TrainingJobs"
    # A job's name is refused while the job exists (until someone deletes it): no time limit.
    replay_window = timedelta.max

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        name = job_name(idempotency_token, task_execution_metadata)
        return f"the SageMaker {self.kind} job {name} (tagged {TOKEN_TAG}={idempotency_token})"

    # A status word to the field of the job that ``status`` decides its phase by: what a
    # state-change event must hold for ``resource_from_event`` to tell that phase.
    phase_fields: ClassVar[Mapping[str, str]]

    @property
    def _noun(self) -> str:
        return f"{self.kind.capitalize()}Job"

    async def describe(self, name: str) -> dict[str, Any] | None:
        """The job of that name as Describe answers it; None when there is none."""
        try:
            return await self.aws(f"describe_{self.kind}_job", **{f"{self._noun}Name": name})
        except ConnectError as error:
            if error.code in (Code.NOT_FOUND, Code.INVALID_ARGUMENT) and re.search(
                r"not found|could not find|does not exist", error.message, re.IGNORECASE
            ):
                return None
            raise

    async def described(self, name: str) -> dict[str, Any]:
        found = await self.describe(name)
        if found is None:
            raise not_found(f"{self.task_type_name}: SageMaker {self.kind} job {name!r} was not found")
        return found

    async def start(self, name: str, token: str, params: dict[str, Any]) -> None:
        """Create the job named ``name``, or adopt the one this attempt already created."""
        for _ in range(2):
            found = await self.describe(name)
            if found is not None:
                arn = found[f"{self._noun}Arn"]
                tags = (await self.aws("list_tags", ResourceArn=arn)).get("Tags", [])
                if {"Key": TOKEN_TAG, "Value": token} in [{"Key": t.get("Key"), "Value": t.get("Value")} for t in tags]:
                    return  # this attempt's job: a create retried after a crash
                raise failed_precondition(
                    f"{self.task_type_name}: a SageMaker {self.kind} job named {name!r} ({arn}) "
                    f"exists and is not this attempt's (no {TOKEN_TAG}={token} tag)"
                )
            try:
                await self.aws(f"create_{self.kind}_job", **{f"{self._noun}Name": name}, **aws_shape(params))
                return
            except ConnectError as error:
                if error.code != Code.FAILED_PRECONDITION:  # ResourceInUse: it appeared since: look again
                    raise
        raise failed_precondition(f"{self.task_type_name}: SageMaker {self.kind} job {name!r} could not be created")

    async def get(self, resource_meta: M, **kwargs: Any) -> Resource:
        return self.job_resource(await self.described(resource_meta.job_name), resource_meta)  # type: ignore[attr-defined]

    @abstractmethod
    def job_resource(self, found: Mapping[str, Any], resource_meta: M) -> Resource:
        """The task's report from a job as Describe (or its state-change event) describes it."""

    def job_key(self, resource_meta: M) -> str:
        return resource_meta.job_name  # type: ignore[attr-defined]

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: M) -> Resource | None:
        """The detail, as the SageMaker developer guide documents it ("Automating Amazon SageMaker
        with Amazon EventBridge"): the job as Describe describes it (``<Kind>JobName``,
        ``<Kind>JobArn``, ``<Kind>JobStatus``, FailureReason, ...), so it is mapped as ``get`` maps
        the job. None where it lacks the field its status is decided by (``phase_fields``)."""
        if detail_status(detail, f"{self._noun}Status", PHASES.phases, self.phase_fields) is None:
            return None
        return self.job_resource(detail, resource_meta)

    def status(self, found: Mapping[str, Any]) -> tuple[Any, str, str]:
        """The phase, AWS's status word and a message for a described job."""
        status = found.get(f"{self._noun}Status", "")
        phase = PHASES.phase(status)
        secondary = found.get("SecondaryStatus", "")
        if status == "InProgress" and secondary in STARTING:
            phase = TaskExecution.INITIALIZING
        reason = found.get("FailureReason") or ""
        if phase == TaskExecution.FAILED and TRANSIENT.search(reason):
            phase = TaskExecution.RETRYABLE_FAILED
        if status == "Stopped" and secondary in STOPPED_BY_LIMIT:  # its time limit, not a cancel
            artifact = (found.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            limit = "MaxRuntimeInSeconds" if secondary == "MaxRuntimeExceeded" else "MaxWaitTimeInSeconds"
            reason = f"SageMaker stopped the {self.kind} job at its StoppingCondition's {limit} ({secondary})" + (
                f"; the model artifact SageMaker saved is at {artifact}" if artifact else ""
            )
            phase = TaskExecution.FAILED
        if status == "Deleting":
            reason = reason or f"the SageMaker {self.kind} job is being deleted (not by this service)"
        message = (
            reason
            or found.get("ExitMessage")
            or f"SageMaker {self.kind} job {status.lower()}"
            + (f" ({secondary})" if secondary and secondary != status else "")
        )
        return phase, status, message

    def links(self, name: str) -> list[Any]:
        return [
            log_link(
                f"SageMaker {self.kind} job",
                console_url(f"sagemaker/home?region={{region}}#/{self.console_path}/{name}"),
            ),
            log_link("CloudWatch logs", cloudwatch_log_url(self.log_group)),
        ]

    async def delete(self, resource_meta: M, **kwargs: Any) -> None:
        name = resource_meta.job_name  # type: ignore[attr-defined]
        try:
            await self.aws(f"stop_{self.kind}_job", **{f"{self._noun}Name": name})
        except ConnectError as error:
            if error.code != Code.INVALID_ARGUMENT:
                raise
            found = await self.describe(name)  # "rejected because the job is in status Completed": quiet
            if found is None:  # a job SageMaker no longer knows: nothing to stop
                return
            if found.get(f"{self._noun}Status") not in (*PHASES.terminal, "Stopping"):
                raise

    async def get_logs(
        self, resource_meta: M, token: str = "", lines: int = 0, **kwargs: Any
    ) -> AsyncIterator[GetTaskLogsResponse]:
        """The job's CloudWatch log streams (``<job name>/algo-1-...``), a page at a time."""
        name = resource_meta.job_name  # type: ignore[attr-defined]
        async for part in cloudwatch_log_pages(self, self.log_group, prefix=f"{name}/", token=token, lines=lines):
            yield part
