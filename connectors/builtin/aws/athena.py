"""``athena_query``: an Amazon Athena query; its result file is the task's DataFrame output.

| | |
|---|---|
| create | StartQueryExecution: ``query`` (``?`` placeholders take the inputs named in ``parameters``, by default every input in declared order, as typed SQL literals), ``work_group``, ``catalog``/``database``, ``output_location``; ClientRequestToken = the idempotency token; a literal over 1,024 characters (ExecutionParameter) is invalid_argument |
| get | GetQueryExecution |
| delete | StopQueryExecution (a finished query stays as it ended) |
| outputs | the first declared DataFrame output refers to the result CSV in S3; FAILED when Athena gives no OutputLocation (a work group with managed query results) |
| custom_info | query execution id, state, work group, statistics |
| events | "Athena Query State Change" (aws.athena), keyed by ``queryExecutionId`` |
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ... import literals
from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...job_events import JobEvents, detail_field, detail_status
from .base import AwsConnector, IamActions, PhaseTable, console_url, is_dataframe, json_data, log_link, output_names
from .fields import Limit

PHASES = PhaseTable(
    "athena",
    {
        "QUEUED": TaskExecution.QUEUED,
        "RUNNING": TaskExecution.RUNNING,
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,  # RETRYABLE_FAILED when AthenaError.Retryable says so
        "CANCELLED": TaskExecution.ABORTED,
    },
)

# botocore's athena model: ExecutionParameters is a list of ExecutionParameter, each 1..1024
# characters (an input's SQL literal, quotes included, is never empty).
EXECUTION_PARAMETER = Limit("athena", "ExecutionParameter", 1024, least=1, means="an Athena execution parameter")


@dataclass
class AthenaQueryMeta(ResourceMeta):
    query_execution_id: str
    work_group: str = "primary"
    dataframe_output: str | None = None  # the output that gets the result file


class AthenaQueryConnector(AwsConnector[AthenaQueryMeta]):
    name = "Amazon Athena Connector"
    task_type_name = "athena_query"
    task_type_version = 0
    metadata_type = AthenaQueryMeta
    service = "athena"
    job_events = JobEvents("aws.athena", "Athena Query State Change", detail_field("queryExecutionId"))
    # Athena also runs the query with the caller's rights on the result location (S3) and the
    # Glue Data Catalog: template.yaml grants those on the resources its parameters name.
    iam_actions: ClassVar[IamActions] = {
        "create": ("athena:StartQueryExecution",),
        "get": ("athena:GetQueryExecution",),
        "delete": ("athena:StopQueryExecution",),
    }
    # replay_window: None. AWS documents no window for ClientRequestToken ("another query is not
    # created"): the deployment's REPLAY_WINDOW_MINUTES bounds a replay (connectors/replay.py).

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        work_group = self.fields(task_template).optional("work_group", default="primary")
        return f"an Athena query in work group {work_group} started with ClientRequestToken {idempotency_token}"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> AthenaQueryMeta:
        fields = self.fields(task_template)
        query = fields.required("query")
        frames = output_names(task_template, is_dataframe)
        self.refuse_unfilled_outputs(task_template, frames[:1])
        work_group = fields.optional("work_group", default="primary")
        inputs = inputs or {}
        names = fields.optional("parameters", list, default=None)
        if names is None:
            names = [entry.key for entry in task_template.interface.inputs.variables]
        missing = [name for name in names if not isinstance(name, str) or name not in inputs]
        if missing:
            raise invalid_argument(
                f"athena_query: template.custom.parameters names {missing[0]!r}, which is not an input of this task"
            )
        if query.count("?") < len(names):
            raise invalid_argument(
                f"athena_query: template.custom.query has {query.count('?')} '?' placeholders "
                f"for {len(names)} parameters ({', '.join(names)})"
            )
        params: dict[str, Any] = {"QueryString": query, "WorkGroup": work_group}
        if names:
            params["ExecutionParameters"] = [sql_literal(inputs[name], name) for name in names]
            for name, text in zip(names, params["ExecutionParameters"], strict=True):
                EXECUTION_PARAMETER.check(self.task_type_name, f"input {name!r} as a SQL literal", len(text))
        context = {
            key: value
            for key, value in (("Catalog", fields.optional("catalog")), ("Database", fields.optional("database")))
            if value
        }
        if context:
            params["QueryExecutionContext"] = context
        location = fields.s3_uri("output_location")
        if location:
            params["ResultConfiguration"] = {"OutputLocation": location}
        if idempotency_token:
            params["ClientRequestToken"] = idempotency_token
        started = await self.aws("start_query_execution", **params)
        return AthenaQueryMeta(
            query_execution_id=started["QueryExecutionId"],
            work_group=work_group,
            dataframe_output=frames[0] if frames else None,
        )

    async def get(self, resource_meta: AthenaQueryMeta, **kwargs: Any) -> Resource:
        found = (await self.aws("get_query_execution", QueryExecutionId=resource_meta.query_execution_id))[
            "QueryExecution"
        ]
        return self.query_resource(found, resource_meta)

    def job_key(self, resource_meta: AthenaQueryMeta) -> str:
        return resource_meta.query_execution_id

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: AthenaQueryMeta) -> Resource | None:
        """The detail, as the Athena user guide documents it ("Monitor Athena query events with
        EventBridge"): versionId, currentState, previousState, statementType, queryExecutionId,
        workgroupName, sequenceNumber; a FAILED one of newer events also ``athenaError``
        {errorCategory, errorType, errorMessage, retryable}. Translated into GetQueryExecution's
        shape and mapped as ``get`` maps it. None for FAILED without ``athenaError.retryable``
        (older events: whether it may be retried is the poll's to read). It has no
        StateChangeReason, so a FAILED message is the error's; None for CANCELLED, whose reason
        (who cancelled it, and why) only the StateChangeReason a poll reads tells; SUCCEEDED is
        told without outputs (the poll it makes due reads them)."""
        state = detail_status(detail, "currentState", PHASES.phases, {"CANCELLED": None})
        error = detail.get("athenaError")
        status: dict[str, Any] = {"State": state}
        if isinstance(error, Mapping) and isinstance(error.get("retryable"), bool):
            status["AthenaError"] = {"Retryable": error["retryable"], "ErrorMessage": error.get("errorMessage")}
        if state is None or (state == "FAILED" and "AthenaError" not in status):
            return None
        found = {"Status": status, "WorkGroup": detail.get("workgroupName")}
        return self.query_resource(found, dataclasses.replace(resource_meta, dataframe_output=None))

    def query_resource(self, found: Mapping[str, Any], resource_meta: AthenaQueryMeta) -> Resource:
        """The task's report from a query as GetQueryExecution describes it."""
        status = found.get("Status", {})
        state = status.get("State", "")
        phase = PHASES.phase(state)
        error = status.get("AthenaError") or {}
        if phase == TaskExecution.FAILED and error.get("Retryable"):
            phase = TaskExecution.RETRYABLE_FAILED
        message = status.get("StateChangeReason") or error.get("ErrorMessage") or f"Athena query {state.lower()}"
        outputs = None
        location = (found.get("ResultConfiguration") or {}).get("OutputLocation")
        if phase == TaskExecution.SUCCEEDED and resource_meta.dataframe_output:
            if location:
                outputs = {resource_meta.dataframe_output: literals.DataFrameRef(uri=location, format="csv")}
            else:  # a task that declared the output never gets it: not a success
                phase, message = TaskExecution.FAILED, _no_location(resource_meta, found)
        info = {
            "query_execution_id": resource_meta.query_execution_id,
            "state": state,
            "work_group": found.get("WorkGroup") or resource_meta.work_group,
            "statistics": json_data(found.get("Statistics", {})),
        }
        if location:
            info["output_location"] = location
        link = console_url(f"athena/home?region={{region}}#/query-editor/history/{resource_meta.query_execution_id}")
        return Resource(
            phase=phase, message=message, outputs=outputs, custom_info=info, log_links=[log_link("Athena query", link)]
        )

    async def delete(self, resource_meta: AthenaQueryMeta, **kwargs: Any) -> None:
        try:  # a finished query stays as it ended (AWS accepts the stop)
            await self.aws("stop_query_execution", QueryExecutionId=resource_meta.query_execution_id)
        except ConnectError as error:
            # A query Athena no longer knows (InvalidRequestException "... was not found"): nothing to stop.
            if not (error.code == Code.NOT_FOUND or "was not found" in error.message):
                raise


def _no_location(meta: AthenaQueryMeta, found: Mapping[str, Any]) -> str:
    """Why a query that succeeded gives its DataFrame output no result file, and what to do."""
    group = found.get("WorkGroup") or meta.work_group
    why = (
        f"work group {group!r} uses managed query results (ManagedQueryResultsConfiguration), which keep "
        f"the result in Athena-owned storage, with no ResultConfiguration.OutputLocation in S3 to refer to"
        if (found.get("ManagedQueryResultsConfiguration") or {}).get("Enabled")
        else "Athena answered no ResultConfiguration.OutputLocation for it"
    )
    return (
        f"athena_query: the query succeeded, but output {meta.dataframe_output!r} cannot be given: {why}. Run "
        f"it in a work group that writes results to S3 (managed query results off, a query result location "
        f"set; or template.custom.output_location where the work group does not override it), or declare no "
        f"DataFrame output"
    )


def sql_literal(value: Any, name: str) -> str:
    """An input as the SQL literal text Athena's execution parameters take (strings quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise invalid_argument(f"athena_query: input {name!r} is {value}, which has no SQL literal")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime.datetime):
        text = value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
        return f"timestamp '{text}'"
    if isinstance(value, datetime.date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, (literals.FileRef, literals.DirRef, literals.DataFrameRef)):
        return "'" + value.uri.replace("'", "''") + "'"
    raise invalid_argument(
        f"athena_query: input {name!r} is a {type(value).__name__}, which is not a SQL "
        f"parameter (use a string, number, boolean, date or datetime)"
    )
