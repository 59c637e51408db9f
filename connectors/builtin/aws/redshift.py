"""``redshift_query``: one SQL statement on Amazon Redshift through the Redshift Data API.

| | |
|---|---|
| create | ExecuteStatement on ``cluster_identifier`` or ``workgroup_name`` (exactly one), ``database``, ``db_user`` / ``secret_arn``; each input the query names as ``:name`` is a named parameter (its value as text; an empty one is invalid_argument: ParameterValue min 1); ClientToken = the idempotency token. With a DataFrame output declared and ``unload_prefix`` given, the SQL becomes ``UNLOAD ('<query>') TO '<unload_prefix>/<token>/' IAM_ROLE '<unload_iam_role>' FORMAT AS PARQUET`` (AWS binds no parameters inside UNLOAD: the inputs are written into it as SQL literals) |
| get | DescribeStatement: SUBMITTED/PICKED -> QUEUED, STARTED -> RUNNING, FINISHED -> SUCCEEDED, FAILED -> FAILED with AWS's ``Error``, ABORTED -> ABORTED |
| delete | CancelStatement (a statement that has ended stays as it ended) |
| outputs | the DataFrame output refers to ``<unload_prefix>/<token>/`` as parquet |
| custom_info | statement id, status, result rows, Redshift query id, duration |
| events | "Redshift Data Statement Status Change" (aws.redshift-data), keyed by ``statementId``: sent because ExecuteStatement sets ``WithEvent`` |

``db_user`` is the deployment's: a user it does not list in RedshiftDbUsers is ``invalid_argument``
before any call (docs/security.md). Without it the statement runs as this service's IAM identity
(a cluster) or with ``secret_arn`` (one of RedshiftSecretArns, which IAM enforces).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ... import literals
from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...job_events import JobEvents, detail_field, detail_status
from ...settings import REDSHIFT_DB_USERS
from .base import AwsConnector, IamActions, PhaseTable, console_url, input_text, is_dataframe, log_link, output_names
from .fields import Limit, refuse_unless_listed

PHASES = PhaseTable(
    "redshift-data",
    {
        "SUBMITTED": TaskExecution.QUEUED,
        "PICKED": TaskExecution.QUEUED,
        "STARTED": TaskExecution.RUNNING,
        "FINISHED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,
        "ABORTED": TaskExecution.ABORTED,
    },
)
# botocore's redshift-data model: SqlParameter.value is a ParameterValue, "min": 1. An empty input
# is refused rather than sent as NULL: in Redshift '' and NULL differ, and the Data API has no way
# to bind either (a value is text Redshift converts).
PARAMETER_VALUE = Limit("redshift-data", "ParameterValue", None, least=1, means="a Data API parameter's value")
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+(,arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+)*")


@dataclass
class RedshiftQueryMeta(ResourceMeta):
    statement_id: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    dataframe_output: str | None = None  # the output that gets the unloaded files
    unload_uri: str | None = None


class RedshiftQueryConnector(AwsConnector[RedshiftQueryMeta]):
    name = "Amazon Redshift Connector"
    task_type_name = "redshift_query"
    task_type_version = 0
    metadata_type = RedshiftQueryMeta
    service = "redshift-data"
    # Sent only for a statement run WithEvent (create sets it), once it has ended.
    job_events = JobEvents("aws.redshift-data", "Redshift Data Statement Status Change", detail_field("statementId"))
    iam_actions: ClassVar[IamActions] = {
        # the Data API gets database credentials as the caller: one of the last four, by how the
        # template connects (db_user, IAM identity, serverless workgroup, secret_arn)
        "create": (
            "redshift-data:ExecuteStatement",
            "redshift:GetClusterCredentials",
            "redshift:GetClusterCredentialsWithIAM",
            "redshift-serverless:GetCredentials",
            "secretsmanager:GetSecretValue",
        ),
        "get": ("redshift-data:DescribeStatement",),
        "delete": ("redshift-data:CancelStatement", "redshift-data:DescribeStatement"),
    }
    # replay_window: None. AWS documents no window for ClientToken: the deployment's
    # REPLAY_WINDOW_MINUTES bounds a replay (connectors/replay.py).

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        fields = self.fields(task_template)
        where, target = fields.one_of("cluster_identifier", "workgroup_name")
        on = f"cluster {target}" if where == "cluster_identifier" else f"serverless work group {target}"
        return f"a Redshift Data statement on {on} run with ClientToken {idempotency_token} (ListStatements)"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> RedshiftQueryMeta:
        fields = self.fields(task_template)
        query = fields.required("query")
        database = fields.required("database")
        where, target = fields.one_of("cluster_identifier", "workgroup_name")
        unload_prefix = fields.s3_uri("unload_prefix")
        role = fields.required("unload_iam_role") if unload_prefix else fields.optional("unload_iam_role")
        if role and not _ROLE.fullmatch(role):
            raise invalid_argument(
                f"redshift_query: template.custom.unload_iam_role must be an IAM role ARN, got {role!r}"
            )
        if unload_prefix and "'" in unload_prefix:
            raise invalid_argument("redshift_query: template.custom.unload_prefix must not contain a quote")
        frames = output_names(task_template, is_dataframe)
        if frames and not unload_prefix:
            raise invalid_argument(
                f"redshift_query: output {frames[0]!r} is a DataFrame, which needs "
                f"template.custom.unload_prefix (and unload_iam_role) to unload the result to"
            )
        self.refuse_unfilled_outputs(task_template, frames[:1])
        inputs = inputs or {}
        named = [name for name in inputs if name in _placeholders(query)]
        # WithEvent: the Data API puts a "Redshift Data Statement Status Change" event on the
        # account's default bus as the statement ends (job_events); it sends none without it.
        params: dict[str, Any] = {"Database": database, "ClientToken": idempotency_token or None, "WithEvent": True}
        params["ClusterIdentifier" if where == "cluster_identifier" else "WorkgroupName"] = target
        for key, name in (("DbUser", "db_user"), ("SecretArn", "secret_arn")):
            if fields.optional(name):
                params[key] = fields.optional(name)
        if "DbUser" in params:
            refuse_unless_listed(
                self.task_type_name,
                "template.custom.db_user",
                params["DbUser"],
                "chooses the database user this service gets credentials for (GetClusterCredentials "
                "issues them for any user of the cluster, its superuser included)",
                REDSHIFT_DB_USERS,
            )
        unload_uri = None
        if frames and unload_prefix:  # a DataFrame output without unload_prefix is refused above
            unload_uri = f"{unload_prefix.rstrip('/')}/{idempotency_token or 'result'}/"
            inner = _inline(query.strip().rstrip(";").strip(), {name: inputs[name] for name in named})
            params["Sql"] = (
                f"UNLOAD ('{inner.replace(chr(39), chr(39) * 2)}') TO '{unload_uri}' "
                f"IAM_ROLE '{role}' FORMAT AS PARQUET"
            )
        else:
            params["Sql"] = query
            if named:
                params["Parameters"] = [{"name": name, "value": input_text(inputs[name])} for name in named]
                for parameter in params["Parameters"]:
                    PARAMETER_VALUE.check(
                        self.task_type_name,
                        f"input {parameter['name']!r}",
                        len(parameter["value"]),
                        hint=f"; write '' or NULL in the query in place of :{parameter['name']} for an empty value",
                    )
        started = await self.aws("execute_statement", **{k: v for k, v in params.items() if v is not None})
        return RedshiftQueryMeta(
            statement_id=started["Id"],
            cluster_identifier=params.get("ClusterIdentifier"),
            workgroup_name=params.get("WorkgroupName"),
            dataframe_output=frames[0] if frames else None,
            unload_uri=unload_uri,
        )

    async def get(self, resource_meta: RedshiftQueryMeta, **kwargs: Any) -> Resource:
        return self.statement_resource(
            await self.aws("describe_statement", Id=resource_meta.statement_id), resource_meta
        )

    def job_key(self, resource_meta: RedshiftQueryMeta) -> str:
        return resource_meta.statement_id

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: RedshiftQueryMeta) -> Resource | None:
        """The detail, as the Redshift management guide documents it ("Monitoring events for the
        Amazon Redshift Data API in Amazon EventBridge"): principal, statementName, statementId,
        redshiftQueryId, state (FINISHED, FAILED or ABORTED), rows, expireAt. Translated into
        DescribeStatement's shape and mapped as ``get`` maps it. None for FAILED and ABORTED: the
        event carries no ``Error``, which a failed or aborted task's message is (who stopped it,
        and why: the poll reads it)."""
        state = detail_status(detail, "state", PHASES.phases, {"FAILED": None, "ABORTED": None})
        if state is None:
            return None
        found = {"Status": state, "ResultRows": detail.get("rows"), "RedshiftQueryId": detail.get("redshiftQueryId")}
        return self.statement_resource(found, resource_meta)

    def statement_resource(self, found: Mapping[str, Any], resource_meta: RedshiftQueryMeta) -> Resource:
        """The task's report from a statement as DescribeStatement describes it."""
        status = found.get("Status", "")
        phase = PHASES.phase(status)
        message = found.get("Error") or f"Redshift statement {status.lower()}"
        outputs = None
        if phase == TaskExecution.SUCCEEDED and resource_meta.dataframe_output and resource_meta.unload_uri:
            outputs = {
                resource_meta.dataframe_output: literals.DataFrameRef(uri=resource_meta.unload_uri, format="parquet")
            }
        info = {
            "statement_id": resource_meta.statement_id,
            "status": status,
            "result_rows": found.get("ResultRows"),
            "redshift_query_id": found.get("RedshiftQueryId"),
            "duration_ns": found.get("Duration"),
            "has_result_set": found.get("HasResultSet"),
        }
        if resource_meta.unload_uri:
            info["unload_uri"] = resource_meta.unload_uri
        if resource_meta.workgroup_name:
            link = console_url(
                f"redshiftv2/home?region={{region}}#serverless-workgroup?workgroup={resource_meta.workgroup_name}"
            )
        else:
            link = console_url(
                f"redshiftv2/home?region={{region}}#cluster-details?cluster={resource_meta.cluster_identifier}"
            )
        return Resource(
            phase=phase, message=message, outputs=outputs, custom_info=info, log_links=[log_link("Redshift", link)]
        )

    async def delete(self, resource_meta: RedshiftQueryMeta, **kwargs: Any) -> None:
        try:
            answer = await self.aws("cancel_statement", Id=resource_meta.statement_id)
        except ConnectError as error:
            if error.code == Code.NOT_FOUND:  # a statement Redshift no longer knows: nothing to stop
                return
            # AWS refuses to cancel a statement that has ended (ValidationException "Could not
            # cancel a query that is already in FINISHED state"): that statement is done with.
            if error.code != Code.INVALID_ARGUMENT or not await self._ended(resource_meta):
                raise
            return
        if answer.get("Status") is False and not await self._ended(resource_meta):
            raise ConnectError(
                Code.UNAVAILABLE,
                f"redshift-data CancelStatement: statement {resource_meta.statement_id} was not cancelled",
            )

    async def _ended(self, resource_meta: RedshiftQueryMeta) -> bool:
        try:
            found = await self.aws("describe_statement", Id=resource_meta.statement_id)
        except ConnectError as error:
            if error.code == Code.NOT_FOUND:
                return True
            raise
        return found.get("Status") in PHASES.terminal


# A SQL text's parts that hold no placeholder (string literals with their doubled quotes, quoted
# identifiers, comments), and a placeholder ``:name`` (not a ``::type`` cast).
_SQL_PARTS = re.compile(
    r"""('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(--[^\n]*)|(/\*.*?(?:\*/|$))|(?<![:\w]):([A-Za-z_]\w*)""", re.S
)


def _placeholders(query: str) -> set[str]:
    """The ``:name`` placeholders of ``query``, outside its literals and comments."""
    return {match.group(5) for match in _SQL_PARTS.finditer(query) if match.group(5)}


def _inline(query: str, values: dict[str, Any]) -> str:
    """``query`` with each ``:name`` placeholder replaced by its value as a SQL literal (inside
    UNLOAD), in one pass: a value is never read again for placeholders, and a ``:name`` inside a
    literal or a comment is left as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(5)
        return _literal(name, values[name]) if name is not None and name in values else match.group(0)

    return _SQL_PARTS.sub(replace, query)


def _literal(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise invalid_argument(f"redshift_query: input {name!r} is {value}, which has no SQL literal")
        return repr(value)
    if isinstance(value, datetime.datetime):
        text = (
            value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(sep=" ")
            if value.tzinfo
            else value.isoformat(sep=" ")
        )
    else:
        text = input_text(value)
    if "\\" in text or any(ord(char) < 32 for char in text):
        # Redshift reads a backslash in a literal as an escape: refuse rather than guess
        raise invalid_argument(
            f"redshift_query: input {name!r} holds a backslash or a control character, "
            f"which cannot be written safely into an UNLOAD query"
        )
    return "'" + text.replace("'", "''") + "'"
