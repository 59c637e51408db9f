"""``glue_job``: a run of an AWS Glue job (Spark, Ray or Python shell), with the inputs as job arguments.

| | |
|---|---|
| create | GetJobRuns of ``job_name`` (paged, newest first): a run whose Arguments carry the attempt's token is adopted; else StartJobRun with Arguments = ``arguments`` + each input as ``--<name>`` (input_text) + ``--flyte-idempotency-token``, ``worker_type``, ``number_of_workers``, ``timeout_minutes``, ``max_capacity`` |
| get | GetJobRun; a failure's message is its ErrorMessage |
| delete | BatchStopJobRun (a run that has ended stays as it ended) |
| outputs | none; log links to the run in the Glue console and its CloudWatch output and error streams |
| logs | GetTaskLogs from ``<LogGroupName>/output``, stream = the run id |
| custom_info | job name, run id, state, attempt, execution time, DPU seconds, error message |
| events | "Glue Job State Change" (aws.glue), keyed by ``jobRunId``: sent as a run ends (SUCCEEDED, FAILED, TIMEOUT, STOPPED) |

Run arguments that choose the job's code, where it writes besides its outputs or its access
controls (:data:`DEPLOYMENT_ARGUMENTS`, from Glue's "Using job parameters in AWS Glue jobs" and its
Ray job parameters) are the job's, not the task's: one set in ``arguments``, or an input that
would become one, is ``invalid_argument`` unless the deployment lists it in
GlueAllowedCodeArguments (docs/security.md). Glue's own way to pin them is the job's
NonOverridableArguments.

Glue takes no client token, so the token rides in the run's Arguments and the job's runs are
looked up before starting one. GetJobRuns answers the newest runs first, so the run an earlier
try of this attempt started is on the first page unless more than 200 runs of the job started
since; the look-up reads at most LOOKUP_PAGES pages (one GetJobRuns call each, up to 200 runs
per page) and then starts the run. Glue keeps runs for 90 days: a busy job costs more calls per
create, never more than LOOKUP_PAGES. StartJobRun is sent once (botocore would resend it after
a lost answer, starting a second run); when its answer is lost, the runs are looked up again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...job_events import JobEvents, detail_field, detail_status
from ...settings import GLUE_CODE_ARGUMENTS
from .base import AwsConnector, IamActions, PhaseTable, aws_error, cloudwatch_log_url, console_url, input_text, log_link
from .fields import refuse_unless_listed
from .logs import cloudwatch_log_pages

PHASES = PhaseTable(
    "glue",
    {
        "WAITING": TaskExecution.WAITING_FOR_RESOURCES,  # waiting for capacity or a concurrency slot
        "STARTING": TaskExecution.INITIALIZING,
        "RUNNING": TaskExecution.RUNNING,
        "STOPPING": TaskExecution.RUNNING,  # until it is STOPPED
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "STOPPED": TaskExecution.ABORTED,
        "FAILED": TaskExecution.FAILED,  # RETRYABLE_FAILED when ErrorMessage says capacity or AWS failed
        "ERROR": TaskExecution.FAILED,  # the same rule
        "TIMEOUT": TaskExecution.FAILED,  # it ran past its timeout: would again
        "EXPIRED": TaskExecution.RETRYABLE_FAILED,  # queued for resources past its limit: never ran
    },
)

TOKEN_ARGUMENT = "--flyte-idempotency-token"  # noqa: S105 - the name of an argument, not a secret
# An ErrorMessage that says the run could not get resources, or Glue failed, not the job's script:
# AWS's "Max concurrent runs exceeded", "Exceeded maximum concurrent compute capacity", "Resource
# unavailable", an internal service error or throttling.
TRANSIENT = re.compile(
    r"concurrent (job )?runs|concurrent compute|insufficient capacity|capacity (is )?(not available|"
    r"unavailable)|resource\s*(is\s*)?(not\s*|un)available|internal\s*(service|server)?\s*(error|"
    r"exception|failure)|throttl|rate exceeded",
    re.IGNORECASE,
)
STOPPED_ALREADY = frozenset({"STOPPING", *PHASES.terminal})
LOOKUP_PAGES = 10


def _argument(name: str) -> str:
    """An argument's name as it is matched: any case, with its ``--`` or (in the deployment's list)
    without, and only up to an ``=`` (``--scriptLocation=s3://x`` is the option-parser spelling of
    ``--scriptLocation s3://x``)."""
    return "--" + name.strip().lstrip("-").split("=", 1)[0].strip().casefold()


# Glue's special run arguments that are the job's (its registered script, libraries and role
# belong together), each with why; matched whatever their case.
_CODE = "chooses code the job runs"
_WRITES = "chooses where the job writes besides its outputs"
_ACCESS = "changes the job's access controls"
DEPLOYMENT_ARGUMENTS = {
    _argument(name): (name, why)
    for name, why in (
        ("--scriptLocation", f"{_CODE} (Glue runs it in place of the job's script)"),
        ("--job-language", f"{_CODE} (the language its script is run as)"),
        ("--class", f"{_CODE} (the Scala class run as the entry point)"),
        ("--extra-py-files", f"{_CODE} (Python files put on its path)"),
        ("--extra-jars", f"{_CODE} (jars put on its classpath)"),
        ("--extra-files", f"{_CODE} (files copied to its working directory)"),
        ("--user-jars-first", f"{_CODE} (its classpath order)"),
        ("--additional-python-modules", f"{_CODE} (Python packages pip installs)"),
        ("--python-modules-installer-option", f"{_CODE} (pip's options: its index, its sources)"),
        ("--conf", f"{_CODE} (Spark configuration: JVM options, packages, classpath)"),
        ("--customer-driver-env-vars", f"{_CODE} (the driver's environment)"),
        ("--customer-executor-env-vars", f"{_CODE} (the executors' environment)"),
        ("--pip-install", f"{_CODE} (Ray: packages pip installs)"),
        ("--s3-py-modules", f"{_CODE} (Ray: Python modules from S3)"),
        ("--working-dir", f"{_CODE} (Ray: its working directory from S3)"),
        ("--TempDir", f"{_WRITES} (its temporary data)"),
        ("--spark-event-logs-path", f"{_WRITES} (its Spark event logs)"),
        ("--enable-lakeformation-fine-grained-access", _ACCESS),
        ("--encryption-type", _ACCESS),
    )
}
PAGE_SIZE = 200  # GetJobRuns' maximum


@dataclass
class GlueJobMeta(ResourceMeta):
    job_name: str
    job_run_id: str


def _refuse_unless_allowed(key: str, where: str) -> None:
    """A run argument of :data:`DEPLOYMENT_ARGUMENTS` is refused unless GlueAllowedCodeArguments lists it."""
    found = DEPLOYMENT_ARGUMENTS.get(_argument(key))
    if found is not None:
        name, why = found
        refuse_unless_listed(GlueJobConnector.task_type_name, where, name, why, GLUE_CODE_ARGUMENTS, same=_argument)


class GlueJobConnector(AwsConnector[GlueJobMeta]):
    name = "AWS Glue Job Connector"
    task_type_name = "glue_job"
    task_type_version = 0
    metadata_type = GlueJobMeta
    service = "glue"
    job_events = JobEvents("aws.glue", "Glue Job State Change", detail_field("jobRunId"))
    # GetJobRuns is eventually consistent: a create whose outcome is unknown is replayed (its job
    # looked up by the token) no sooner than this after it began (connectors/connector.py).
    replay_settle_seconds = 60.0
    # The run is found by GetJobRuns, which lists a job's runs of the last 90 days (at most the
    # newest LOOKUP_PAGES x PAGE_SIZE of them are read).
    replay_window = timedelta(days=90)
    iam_actions: ClassVar[IamActions] = {
        "create": ("glue:GetJobRuns", "glue:StartJobRun"),
        "get": ("glue:GetJobRun",),
        "delete": ("glue:BatchStopJobRun", "glue:GetJobRun"),
        "logs": ("glue:GetJobRun", "logs:FilterLogEvents"),
    }

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        job = self.fields(task_template).required("job_name")
        return f"a run of Glue job {job} whose arguments carry {TOKEN_ARGUMENT} {idempotency_token}"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> GlueJobMeta:
        fields = self.fields(task_template)
        self.refuse_unfilled_outputs(task_template)
        job_name = fields.required("job_name")
        arguments = fields.string_map("arguments")
        for key in arguments:
            if not key.startswith("--") or key == TOKEN_ARGUMENT:
                raise invalid_argument(
                    f"glue_job: template.custom.arguments.{key} must be a key like '--day' "
                    f"(and not {TOKEN_ARGUMENT}, which the connector sets)"
                )
        for key in arguments:
            _refuse_unless_allowed(key, f"template.custom.arguments.{key}")
        for name, value in (inputs or {}).items():
            if f"--{name}" in arguments:
                raise invalid_argument(f"glue_job: template.custom.arguments.--{name} is also the input {name!r}")
            _refuse_unless_allowed(f"--{name}", f"the input {name!r} (the run argument --{name})")
            arguments[f"--{name}"] = input_text(value)
        if idempotency_token:
            arguments[TOKEN_ARGUMENT] = idempotency_token
        params: dict[str, Any] = {"JobName": job_name, "Arguments": arguments}
        for field, key, kind in (
            ("worker_type", "WorkerType", str),
            ("number_of_workers", "NumberOfWorkers", int),
            ("timeout_minutes", "Timeout", int),
            ("max_capacity", "MaxCapacity", float),
        ):
            value = fields.optional(field, kind)
            if value is not None:
                params[key] = value
        if "MaxCapacity" in params and ("WorkerType" in params or "NumberOfWorkers" in params):
            raise invalid_argument(
                "glue_job: template.custom.max_capacity cannot be given with worker_type or "
                "number_of_workers (Glue takes one or the other)"
            )
        found = await self._find(job_name, idempotency_token) if idempotency_token else None
        if found is None:
            try:
                found = (await self.aws_once("start_job_run", **params))["JobRunId"]
            except ConnectError as error:
                if error.code not in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED) or not idempotency_token:
                    raise
                found = await self._find(job_name, idempotency_token)  # the answer was lost: it may have started
                if found is None:
                    raise
        return GlueJobMeta(job_name=job_name, job_run_id=found)

    async def _find(self, job_name: str, token: str) -> str | None:
        """The id of the job's run started with ``token``, if one is within the newest pages."""
        request: dict[str, Any] = {"JobName": job_name, "MaxResults": PAGE_SIZE}
        for _ in range(LOOKUP_PAGES):
            page = await self.aws("get_job_runs", **request)
            for run in page.get("JobRuns", []):
                if (run.get("Arguments") or {}).get(TOKEN_ARGUMENT) == token:
                    return run["Id"]
            if not page.get("NextToken"):
                return None
            request["NextToken"] = page["NextToken"]
        return None

    async def _run(self, meta: GlueJobMeta) -> dict[str, Any]:
        return (await self.aws("get_job_run", JobName=meta.job_name, RunId=meta.job_run_id))["JobRun"]

    async def get(self, resource_meta: GlueJobMeta, **kwargs: Any) -> Resource:
        return self.run_resource(await self._run(resource_meta), resource_meta)

    def job_key(self, resource_meta: GlueJobMeta) -> str:
        return resource_meta.job_run_id

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: GlueJobMeta) -> Resource | None:
        """The detail, as the Glue developer guide documents it ("Automating AWS Glue with
        EventBridge"): jobName, severity, state, jobRunId, message; sent for SUCCEEDED, FAILED,
        TIMEOUT and STOPPED only (RUNNING and the like come as "Glue Job Run Status", and only past
        a job's notify-delay threshold). Translated into GetJobRun's shape, ``message`` for its
        ErrorMessage (Glue's own text of how the run ended), and mapped as ``get`` maps the run.
        None for FAILED (and ERROR): whether it may be retried is read from the run's ErrorMessage,
        which ``message`` is documented to hold only by example (the poll reads it). Only the
        console link: the event does not name the run's log group (GetJobRun's LogGroupName), so
        the CloudWatch links the record keeps from a read stay as read."""
        state = detail_status(detail, "state", PHASES.phases, {"FAILED": None, "ERROR": None})
        if state is None:
            return None
        told = self.run_resource({"JobRunState": state, "ErrorMessage": detail.get("message")}, resource_meta)
        told.log_links = (told.log_links or [])[:1]
        return told

    def run_resource(self, run: Mapping[str, Any], resource_meta: GlueJobMeta) -> Resource:
        """The task's report from a job run as GetJobRun describes it."""
        state = run.get("JobRunState", "")
        phase = PHASES.phase(state)
        error = run.get("ErrorMessage") or ""
        if state in ("FAILED", "ERROR") and TRANSIENT.search(error):
            phase = TaskExecution.RETRYABLE_FAILED
        message = error or f"Glue job run {state.lower()}"
        group = run.get("LogGroupName") or "/aws-glue/jobs"
        run_id, job = resource_meta.job_run_id, resource_meta.job_name
        links = [
            log_link("Glue job run", console_url(f"gluestudio/home?region={{region}}#/job/{job}/run/{run_id}")),
            log_link("CloudWatch output", cloudwatch_log_url(f"{group}/output", run_id)),
            log_link("CloudWatch errors", cloudwatch_log_url(f"{group}/error", run_id)),
        ]
        info: dict[str, Any] = {
            "job_name": job,
            "job_run_id": run_id,
            "state": state,
            "attempt": run.get("Attempt", 0),
            "execution_time_seconds": run.get("ExecutionTime", 0),
        }
        for key, name in (
            ("DPUSeconds", "dpu_seconds"),
            ("ErrorMessage", "error_message"),
            ("WorkerType", "worker_type"),
            ("NumberOfWorkers", "number_of_workers"),
            ("MaxCapacity", "max_capacity"),
        ):
            if run.get(key) is not None:
                info[name] = run[key]
        return Resource(phase=phase, message=message, log_links=links, custom_info=info)

    async def delete(self, resource_meta: GlueJobMeta, **kwargs: Any) -> None:
        try:
            answer = await self.aws(
                "batch_stop_job_run", JobName=resource_meta.job_name, JobRunIds=[resource_meta.job_run_id]
            )
            refused = [e for e in answer.get("Errors", []) if e.get("JobRunId") == resource_meta.job_run_id]
            if not refused or (await self._run(resource_meta)).get("JobRunState") in STOPPED_ALREADY:
                return  # stopping, or it has ended: nothing to stop
        except ConnectError as error:
            if error.code == Code.NOT_FOUND:
                return  # a job or run Glue no longer knows (runs are kept 90 days) is not running
            raise
        detail = refused[0].get("ErrorDetail") or {}
        from botocore.exceptions import ClientError

        raise aws_error(
            ClientError(
                {"Error": {"Code": detail.get("ErrorCode", ""), "Message": detail.get("ErrorMessage", "")}},
                "BatchStopJobRun",
            ),
            "glue BatchStopJobRun",
        )

    async def get_logs(
        self, resource_meta: GlueJobMeta, token: str = "", lines: int = 0, **kwargs: Any
    ) -> AsyncIterator[Any]:
        group = (await self._run(resource_meta)).get("LogGroupName") or "/aws-glue/jobs"
        async for page in cloudwatch_log_pages(
            self, f"{group}/output", stream=resource_meta.job_run_id, token=token, lines=lines
        ):
            yield page
