"""``emr_serverless_job``: a Spark job run on an Amazon EMR Serverless application.

| | |
|---|---|
| create | StartJobRun on ``application_id`` as ``execution_role_arn``: ``entry_point`` (s3) with ``entry_point_arguments`` and each input appended as ``--<name> <input_text>``, ``spark_submit_parameters``, ``configuration_overrides`` (AWS shape), ``name``, ``execution_timeout_minutes``, ``tags`` and the stack's scope tag; clientToken = the idempotency token |
| get | GetJobRun |
| delete | CancelJobRun (a run that has ended stays as it ended) |
| log links | the EMR console's job run page; the CloudWatch log group when configuration_overrides.monitoringConfiguration.cloudWatchLoggingConfiguration is enabled |
| custom_info | application id, job run id, state and its details, duration, billed resources |
| events | "EMR Serverless Job Run State Change" (aws.emr-serverless), keyed by ``applicationId`` and ``jobRunId`` |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...job_events import JobEvents, detail_field, detail_status
from .base import (
    AwsConnector,
    IamActions,
    PhaseTable,
    cloudwatch_log_url,
    console_url,
    input_text,
    json_data,
    log_link,
    scoped_tags,
    stem_of,
    token_name,
)
from .fields import Limit, MapLimits

PHASES = PhaseTable(
    "emr-serverless",
    {
        "SUBMITTED": TaskExecution.QUEUED,
        "PENDING": TaskExecution.INITIALIZING,
        "SCHEDULED": TaskExecution.INITIALIZING,
        "QUEUED": TaskExecution.WAITING_FOR_RESOURCES,  # the application is at its maximum capacity
        "RUNNING": TaskExecution.RUNNING,
        "CANCELLING": TaskExecution.RUNNING,  # still ending: ABORTED once CANCELLED
        "SUCCESS": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,  # RETRYABLE_FAILED when stateDetails says AWS ran short or failed itself
        "CANCELLED": TaskExecution.ABORTED,
    },
)
TRANSIENT = re.compile(
    r"insufficient capacity|InsufficientCapacity|InternalServerError|internal (server )?error|"
    r"ServiceUnavailable",
    re.IGNORECASE,
)
DEFAULT_LOG_GROUP = "/aws/emr-serverless"
# botocore's emr-serverless model: StartJobRun's tags is a TagMap (max 200 entries) of TagKey
# (1..128) to TagValue (max 256). The connector adds one of its own in a deployment: the scope tag
# (base.scope_tag), by which IAM lets it start, look up and cancel the run (its clientToken is the token).
TAGS = MapLimits(
    Limit("emr-serverless", "TagMap", 200, means="an EMR Serverless job run's tags", unit="tags"),
    Limit("emr-serverless", "TagKey", 128, least=1, means="a tag's key"),
    Limit("emr-serverless", "TagValue", 256, means="a tag's value"),
)


@dataclass
class EmrServerlessJobMeta(ResourceMeta):
    application_id: str
    job_run_id: str


class EmrServerlessJobConnector(AwsConnector[EmrServerlessJobMeta]):
    name = "Amazon EMR Serverless Connector"
    task_type_name = "emr_serverless_job"
    task_type_version = 0
    metadata_type = EmrServerlessJobMeta
    service = "emr-serverless"
    job_events = JobEvents(
        "aws.emr-serverless", "EMR Serverless Job Run State Change", detail_field("applicationId+jobRunId")
    )
    iam_actions: ClassVar[IamActions] = {
        "create": ("emr-serverless:StartJobRun", "emr-serverless:TagResource", "iam:PassRole"),
        "get": ("emr-serverless:GetJobRun",),
        "delete": ("emr-serverless:CancelJobRun", "emr-serverless:GetJobRun"),
    }
    # replay_window: None. AWS documents no window for clientToken: the deployment's
    # REPLAY_WINDOW_MINUTES bounds a replay (connectors/replay.py).

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        fields = self.fields(task_template)
        name = _run_name(fields, idempotency_token, task_execution_metadata)
        return (
            f"a job run named {name} on EMR Serverless application {fields.required('application_id')} "
            f"(clientToken {idempotency_token})"
        )

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> EmrServerlessJobMeta:
        fields = self.fields(task_template)
        self.refuse_unfilled_outputs(task_template)
        application_id = fields.required("application_id")
        role = fields.required("execution_role_arn")
        spark: dict[str, Any] = {"entryPoint": fields.s3_uri("entry_point", required=True)}
        arguments = fields.optional("entry_point_arguments", list, default=[])
        if not all(isinstance(item, str) for item in arguments):
            raise invalid_argument(
                "emr_serverless_job: template.custom.entry_point_arguments must be a list of strings"
            )
        for name, value in (inputs or {}).items():
            if f"--{name}" in arguments or any(item.startswith(f"--{name}=") for item in arguments):
                raise invalid_argument(
                    f"emr_serverless_job: template.custom.entry_point_arguments already sets "
                    f"--{name}, which is also the input {name!r}: rename one"
                )
            arguments = [*arguments, f"--{name}", input_text(value)]
        if arguments:
            spark["entryPointArguments"] = arguments
        submit = fields.optional("spark_submit_parameters")
        if submit:
            spark["sparkSubmitParameters"] = submit
        params: dict[str, Any] = {
            "applicationId": application_id,
            "executionRoleArn": role,
            "jobDriver": {"sparkSubmit": spark},
            "name": _run_name(fields, idempotency_token, task_execution_metadata),
        }
        if idempotency_token:
            params["clientToken"] = idempotency_token
        overrides = fields.optional("configuration_overrides", dict)
        if overrides:
            params["configurationOverrides"] = overrides
        timeout = fields.optional("execution_timeout_minutes", int)
        if timeout is not None:
            params["executionTimeoutMinutes"] = timeout
        tags = scoped_tags(fields, TAGS)
        if tags:
            params["tags"] = tags
        started = await self.aws("start_job_run", **params)
        return EmrServerlessJobMeta(
            application_id=started.get("applicationId") or application_id, job_run_id=started["jobRunId"]
        )

    async def get(self, resource_meta: EmrServerlessJobMeta, **kwargs: Any) -> Resource:
        return self.run_resource(await self._run(resource_meta), resource_meta)

    def job_key(self, resource_meta: EmrServerlessJobMeta) -> str:
        return f"{resource_meta.application_id}/{resource_meta.job_run_id}"

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: EmrServerlessJobMeta) -> Resource | None:
        """The detail, as the EMR Serverless user guide documents it ("Automating EMR Serverless
        with Amazon EventBridge", job run state change events): jobRunId, applicationId, arn,
        releaseLabel, state, previousState, createdBy, createdAt, updatedAt; GetJobRun's names for
        the fields it shares, so it is mapped as ``get`` maps the job run. None for FAILED without
        ``stateDetails``: whether AWS's own trouble failed it (RETRYABLE_FAILED), and why, is the
        poll's to read."""
        if detail_status(detail, "state", PHASES.phases, {"FAILED": "stateDetails"}) is None:
            return None
        return self.run_resource(detail, resource_meta)

    def run_resource(self, run: Mapping[str, Any], resource_meta: EmrServerlessJobMeta) -> Resource:
        """The task's report from a job run as GetJobRun (or its state-change event) describes it."""
        state = run.get("state", "")
        phase = PHASES.phase(state)
        details = run.get("stateDetails") or ""
        if phase == TaskExecution.FAILED and TRANSIENT.search(details):
            phase = TaskExecution.RETRYABLE_FAILED
        info = {
            "application_id": resource_meta.application_id,
            "job_run_id": resource_meta.job_run_id,
            "state": state,
            "state_details": details,
            "total_execution_duration_seconds": run.get("totalExecutionDurationSeconds", 0),
            "billed_resource_utilization": json_data(run.get("billedResourceUtilization", {})),
        }
        if run.get("name"):
            info["name"] = run["name"]
        return Resource(
            phase=phase,
            message=details or f"EMR Serverless job run {state.lower()}",
            log_links=self._links(resource_meta, run),
            custom_info=info,
        )

    async def delete(self, resource_meta: EmrServerlessJobMeta, **kwargs: Any) -> None:
        try:
            await self.aws(
                "cancel_job_run", applicationId=resource_meta.application_id, jobRunId=resource_meta.job_run_id
            )
        except ConnectError as error:
            if error.code == Code.NOT_FOUND:  # a run EMR Serverless no longer knows: nothing to stop
                return
            if error.code != Code.INVALID_ARGUMENT:
                raise
            # "not in a cancellable state": quiet if the run has ended or is already being cancelled
            state = (await self._run(resource_meta)).get("state", "")
            if state not in PHASES.terminal and state != "CANCELLING":
                raise

    async def _run(self, meta: EmrServerlessJobMeta) -> dict[str, Any]:
        return (await self.aws("get_job_run", applicationId=meta.application_id, jobRunId=meta.job_run_id))["jobRun"]

    @staticmethod
    def _links(meta: EmrServerlessJobMeta, run: Mapping[str, Any]) -> list[Any]:
        page = console_url(
            f"emr/home?region={{region}}#/serverless/applications/{meta.application_id}/job-runs/{meta.job_run_id}"
        )
        links = [log_link("EMR Serverless job run", page)]
        logging = ((run.get("configurationOverrides") or {}).get("monitoringConfiguration") or {}).get(
            "cloudWatchLoggingConfiguration"
        ) or {}
        if logging.get("enabled"):
            group = logging.get("logGroupName") or DEFAULT_LOG_GROUP
            links.append(log_link("CloudWatch logs", cloudwatch_log_url(group)))
        return links


def _run_name(fields: Any, token: str, task_execution_metadata: Any) -> str:
    """The job run's name: ``name`` as the template gives it, else ``<run>-<action>-<token>``."""
    stem = stem_of(task_execution_metadata)
    return fields.optional("name") or (token_name(token, 256, stem=stem) if token else stem)
