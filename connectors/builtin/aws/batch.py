"""``aws_batch_job``: an AWS Batch job (or array job) on a job queue, from a registered job definition.

| | |
|---|---|
| create | ListJobs of ``job_queue`` filtered by JOB_NAME = the attempt's name (every status): a job found is adopted; else SubmitJob: jobName = ``token_name(token, 128, stem)``, ``job_definition``, each input as a Batch ``parameters`` entry (``Ref::<name>`` in the command), ``container_overrides`` with ``environment`` merged into its environment, ``array_size``, ``timeout_seconds``, ``tags`` and the stack's scope tag |
| get | DescribeJobs; an array job's phase is its parent's status |
| delete | TerminateJob (a finished job stays as it ended) |
| outputs | none; log links to the job's console page and its CloudWatch stream |
| logs | GetTaskLogs from the job's stream (``container.logStreamName`` in the job's awslogs group, default ``/aws/batch/job``) |
| custom_info | job id and name, queue, status, status reason, exit code, attempts, array status summary |
| events | "Batch Job State Change" (aws.batch), keyed by ``jobId``; an array child's (``<parent id>:<index>``) is its parent's task's, which the next poll then reads |

A task may set resources (``vcpus``, ``memory``, ``instanceType``, ``resourceRequirements``) and
environment variables; the command, and variables that make the container load other code
(fields.CODE_VARIABLES), are the job definition's unless the deployment lists ``command`` or
``environment`` in BatchAllowedOverrides (docs/security.md). Batch's ContainerOverrides has no
image or role: those stay the job definition's.

Batch takes no client token, so the job's name is derived from the attempt's idempotency token
and looked up before submitting. ListJobs is eventually consistent: a job submitted a moment ago
may not be listed yet. That is safe for a crashed create: its retry with the same token comes only
once the first try's claim lease has run out (CreateClaimSeconds, at least 30 s), long after the
first SubmitJob is listed. SubmitJob itself is sent once (botocore would resend it after a lost
answer, starting a second job); when its answer is lost, the name is looked up once more (see
docs/connectors/aws_batch_job.md for the window that leaves).
"""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from flyteidl2.connector.connector_pb2 import GetTaskLogsResponse, GetTaskLogsResponseBody, GetTaskLogsResponseHeader
from flyteidl2.core.execution_pb2 import TaskExecution

from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument, not_found
from ...job_events import JobEvents
from ...settings import BATCH_OVERRIDES
from .base import (
    AwsConnector,
    IamActions,
    PhaseTable,
    cloudwatch_log_url,
    console_url,
    input_text,
    log_link,
    scoped_tags,
    stem_of,
    token_name,
)
from .fields import Limit, MapLimits, loads_code, refuse_unless_listed
from .logs import cloudwatch_log_pages

PHASES = PhaseTable(
    "batch",
    {
        "SUBMITTED": TaskExecution.QUEUED,  # accepted, not yet evaluated by the scheduler
        "PENDING": TaskExecution.QUEUED,  # waiting on dependencies
        "RUNNABLE": TaskExecution.WAITING_FOR_RESOURCES,  # in the queue, waiting for compute capacity
        "STARTING": TaskExecution.INITIALIZING,  # placed on a host, its container starting
        "RUNNING": TaskExecution.RUNNING,
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,  # ABORTED when terminated by delete; RETRYABLE_FAILED when its host went away
    },
)

CANCEL_REASON = "Cancelled by Flyte: the task execution was aborted"
# The job's (or last attempt's) statusReason when its host went away, not the job's own fault:
# "Host EC2 (instance i-...) terminated." (EC2, the Spot reclaim that AWS's retry strategies match
# with onStatusReason "Host EC2*") and "Your Spot Task was interrupted." (Fargate Spot).
HOST_LOST = re.compile(r"^Host EC2|Spot Task was interrupted", re.IGNORECASE)
DEFAULT_LOG_GROUP = "/aws/batch/job"
LOOKUP_PAGES = 5  # ListJobs pages read looking for the attempt's name (one job is expected)
# botocore's batch model: SubmitJob's tags is a TagrisTagsMap (1..50 entries) of TagKey (1..128)
# to TagValue (max 256). The connector adds one of its own in a deployment: the scope tag
# (base.scope_tag), without which IAM refuses the submission and, later, TerminateJob.
TAGS = MapLimits(
    Limit("batch", "TagrisTagsMap", 50, least=1, means="a Batch job's tags", unit="tags"),
    Limit("batch", "TagKey", 128, least=1, means="a tag's key"),
    Limit("batch", "TagValue", 256, means="a tag's value"),
)


@dataclass
class AwsBatchJobMeta(ResourceMeta):
    job_id: str
    job_name: str
    job_queue: str


def _task_job_id(detail: Mapping[str, Any]) -> str | None:
    """The job whose task an event is about: the job's own id, or for a child of an array job
    (``<parent id>:<index>``) its parent's. The parent "remain[s] in PENDING status while child jobs
    are running" and sends no event meanwhile: only its children's tell that the task runs."""
    job_id = detail.get("jobId")
    return job_id.split(":", 1)[0] if isinstance(job_id, str) and job_id else None


class AwsBatchJobConnector(AwsConnector[AwsBatchJobMeta]):
    name = "AWS Batch Job Connector"
    task_type_name = "aws_batch_job"
    task_type_version = 0
    metadata_type = AwsBatchJobMeta
    service = "batch"
    # ListJobs is eventually consistent: a create whose outcome is unknown is replayed (its job
    # looked up by the token) no sooner than this after it began (connectors/connector.py).
    replay_settle_seconds = 60.0
    # The job is found by ListJobs, which lists a job at least 7 days after it ends.
    replay_window = timedelta(days=7)
    job_events = JobEvents("aws.batch", "Batch Job State Change", _task_job_id)
    iam_actions: ClassVar[IamActions] = {
        "create": ("batch:ListJobs", "batch:SubmitJob", "batch:TagResource"),
        "get": ("batch:DescribeJobs",),
        "delete": ("batch:TerminateJob",),
        "logs": ("batch:DescribeJobs", "logs:FilterLogEvents"),
    }

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        queue = self.fields(task_template).required("job_queue")
        return f"the AWS Batch job named {_job_name(idempotency_token, task_execution_metadata)} in queue {queue}"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> AwsBatchJobMeta:
        fields = self.fields(task_template)
        self.refuse_unfilled_outputs(task_template)
        queue = fields.required("job_queue")
        params: dict[str, Any] = {"jobQueue": queue, "jobDefinition": fields.required("job_definition")}
        overrides = copy.deepcopy(fields.optional("container_overrides", dict, {}))
        if "command" in overrides:
            refuse_unless_listed(
                self.task_type_name,
                "template.custom.container_overrides.command",
                "command",
                "replaces the command of the job definition, which runs with the job definition's role",
                BATCH_OVERRIDES,
            )
        environment = fields.string_map("environment")
        given = overrides.get("environment", [])
        if not isinstance(given, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in given
        ):
            raise invalid_argument(
                "aws_batch_job: template.custom.container_overrides.environment must be a list of {name, value} objects"
            )
        for where, names in (
            ("template.custom.environment", list(environment)),
            ("template.custom.container_overrides.environment", [entry["name"] for entry in given]),
        ):
            for name in filter(loads_code, names):
                refuse_unless_listed(
                    self.task_type_name,
                    f"{where}.{name}",
                    "environment",
                    "makes the container's shell, loader or runtime load code it names",
                    BATCH_OVERRIDES,
                )
        if environment:
            merged = {entry["name"]: entry.get("value", "") for entry in given} | environment
            overrides["environment"] = [{"name": key, "value": value} for key, value in merged.items()]
        if overrides:
            params["containerOverrides"] = overrides
        size = fields.optional("array_size", int)
        if size is not None:
            if not 2 <= size <= 10_000:
                raise invalid_argument(f"aws_batch_job: template.custom.array_size must be from 2 to 10000, got {size}")
            params["arrayProperties"] = {"size": size}
        timeout = fields.optional("timeout_seconds", int)
        if timeout is not None:
            if timeout < 60:
                raise invalid_argument(
                    f"aws_batch_job: template.custom.timeout_seconds must be at least 60, got {timeout}"
                )
            params["timeout"] = {"attemptDurationSeconds": timeout}
        tags = scoped_tags(fields, TAGS)
        if tags:
            params["tags"] = tags
        if inputs:
            params["parameters"] = {name: input_text(value) for name, value in inputs.items()}
        name = _job_name(idempotency_token, task_execution_metadata)
        found = await self._find(queue, name)
        if found is None:
            try:
                found = (await self.aws_once("submit_job", jobName=name, **params))["jobId"]
            except ConnectError as error:
                if error.code not in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED):
                    raise
                found = await self._find(queue, name)  # the answer was lost: the job may have started
                if found is None:
                    raise
        return AwsBatchJobMeta(job_id=found, job_name=name, job_queue=queue)

    async def _find(self, queue: str, name: str) -> str | None:
        """The id of the job named ``name`` in ``queue`` (newest first, any status), if there is one."""
        request: dict[str, Any] = {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [name]}]}
        for _ in range(LOOKUP_PAGES):
            page = await self.aws("list_jobs", **request)
            for job in page.get("jobSummaryList", []):
                # JOB_NAME matches without regard to case; an array child (``<id>:<index>``) is not the job.
                if job.get("jobName") == name and ":" not in job.get("jobId", ":"):
                    return job["jobId"]
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]
        return None

    async def _describe(self, meta: AwsBatchJobMeta) -> dict[str, Any]:
        jobs = (await self.aws("describe_jobs", jobs=[meta.job_id])).get("jobs", [])
        if not jobs:
            raise not_found(
                f"batch DescribeJobs: job {meta.job_id} ({meta.job_name}) is not known to AWS Batch "
                f"(finished jobs are kept for at least 7 days)"
            )
        return jobs[0]

    async def get(self, resource_meta: AwsBatchJobMeta, **kwargs: Any) -> Resource:
        return self.job_resource(await self._describe(resource_meta), resource_meta)

    def job_key(self, resource_meta: AwsBatchJobMeta) -> str:
        return resource_meta.job_id

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: AwsBatchJobMeta) -> Resource | None:
        # "The detail of a Batch Job State Change event is the job as DescribeJobs describes it"
        # (AWS Batch user guide, EventBridge: job state change events).
        if detail.get("jobId") != resource_meta.job_id:
            return None  # a child's: the parent's DescribeJobs counts its children (the next poll reads it)
        return self.job_resource(detail, resource_meta)

    def job_resource(self, job: Mapping[str, Any], resource_meta: AwsBatchJobMeta) -> Resource:
        """The task's report from a job as DescribeJobs (or its state-change event) describes it."""
        status = job.get("status", "")
        phase = PHASES.phase(status)
        attempts = job.get("attempts") or []
        reason = job.get("statusReason") or (attempts[-1].get("statusReason") if attempts else "") or ""
        container = job.get("container") or {}
        exit_code = container.get("exitCode")
        if phase == TaskExecution.FAILED:
            last_reason = attempts[-1].get("statusReason", "") if attempts else ""
            if reason == CANCEL_REASON:
                phase = TaskExecution.ABORTED
            elif HOST_LOST.search(reason) or HOST_LOST.search(last_reason or ""):
                phase = TaskExecution.RETRYABLE_FAILED
        message = reason or f"Batch job {status.lower()}"
        array = job.get("arrayProperties") or {}
        started = _children_started(array.get("statusSummary") or {})
        if status == "PENDING" and started:
            # The model: an array parent "remain[s] in PENDING status while child jobs are running".
            phase = TaskExecution.RUNNING
            counts = ", ".join(f"{word} {n}" for word, n in sorted((array.get("statusSummary") or {}).items()) if n)
            message = f"Batch array job running: {started} of {array.get('size', '?')} children started ({counts})"
        if phase == TaskExecution.FAILED and exit_code is not None:
            message += f" (exit code {exit_code})"
        links = [
            log_link("AWS Batch job", console_url(f"batch/home?region={{region}}#jobs/detail/{resource_meta.job_id}"))
        ]
        stream = container.get("logStreamName")
        if stream:
            links.append(log_link("CloudWatch logs", cloudwatch_log_url(_log_group(container), stream)))
        info: dict[str, Any] = {
            "job_id": resource_meta.job_id,
            "job_name": resource_meta.job_name,
            "job_queue": resource_meta.job_queue,
            "status": status,
            "attempts": len(attempts),
        }
        if reason:
            info["status_reason"] = reason
        if exit_code is not None:
            info["exit_code"] = exit_code
        if stream:
            info["log_stream_name"] = stream
        summary = (job.get("arrayProperties") or {}).get("statusSummary")
        if summary:
            info["array_status_summary"] = summary
        return Resource(phase=phase, message=message, log_links=links, custom_info=info)

    async def delete(self, resource_meta: AwsBatchJobMeta, **kwargs: Any) -> None:
        await self.aws("terminate_job", jobId=resource_meta.job_id, reason=CANCEL_REASON)

    async def get_logs(
        self, resource_meta: AwsBatchJobMeta, token: str = "", lines: int = 0, **kwargs: Any
    ) -> AsyncIterator[Any]:
        container = (await self._describe(resource_meta)).get("container") or {}
        stream = container.get("logStreamName")
        if not stream:  # not started yet, or an array parent (its children log): an empty page
            yield GetTaskLogsResponse(header=GetTaskLogsResponseHeader(token=""))
            yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(lines=[]))
            return
        async for page in cloudwatch_log_pages(self, _log_group(container), stream=stream, token=token, lines=lines):
            yield page


def _log_group(container: dict[str, Any]) -> str:
    options = (container.get("logConfiguration") or {}).get("options") or {}
    return options.get("awslogs-group") or DEFAULT_LOG_GROUP


def _children_started(summary: dict[str, Any]) -> int:
    """How many of an array job's children have started (STARTING, RUNNING or ended)."""
    return sum(int(n or 0) for word, n in summary.items() if word in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED"))


def _job_name(token: str, task_execution_metadata: Any) -> str:
    """The attempt's job name: ``<run>-<action>-<token>``, cut to Batch's 128."""
    return token_name(token, 128, stem=stem_of(task_execution_metadata), allowed="A-Za-z0-9_-")
