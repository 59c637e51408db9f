"""Redshift Data: statements that run and end, ClientToken honoured, fates applied, ListStatements.

- A statement moves SUBMITTED -> PICKED -> STARTED -> FINISHED as it is described (moto's state
  manager model ``redshiftdata::statement``; ``world.hold`` keeps it running); moto's statements
  stay STARTED forever. A finished SELECT reports the 3 rows of moto's canned result.
- ExecuteStatement with a ClientToken already used answers the same statement ("a unique,
  case-sensitive identifier that you provide to ensure the idempotency of the request",
  Redshift Data API reference); moto runs a new statement each time.
- ExecuteStatement on a cluster that does not exist is refused with ValidationException
  "Redshift endpoint doesn't exist in this region." (moto accepts any name); WorkgroupName is
  kept and answered (moto drops it; it has no Redshift Serverless to check it against).
- A parameter the SQL does not use is refused, as AWS does: "Parameters list contains unused
  parameters. Unused parameters: [name]" (moto ignores parameters).
- CancelStatement aborts a SUBMITTED or PICKED statement too; a finished one is refused with
  AWS's ValidationException "Could not cancel a query that is already in FINISHED state with ID: ..."
  (moto's own message, kept).
- A fate of FAILED (or ABORTED) ends the statement so, with the fate's reason as its ``Error``:
  moto's statements never fail.
- ListStatements, which moto lacks: the statements of the account and region, newest first,
  filtered by Status, StatementName, ClusterIdentifier, WorkgroupName and Database.
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass
from typing import Any

from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.redshiftdata.exceptions import ValidationException
from moto.redshiftdata.models import RedshiftDataAPIServiceBackend, Statement
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse

from . import fate_of
from ._support import adds_method, wraps_method

MODEL = "redshiftdata::statement"
RUNNING = ("SUBMITTED", "PICKED", "STARTED")
_TOKENS = "_fake_aws_tokens"

state_manager.register_default_transition(MODEL, {"progression": "immediate"})


class _Progress(ManagedState):
    def __init__(self) -> None:
        super().__init__(MODEL, [("SUBMITTED", "PICKED"), ("PICKED", "STARTED"), ("STARTED", "FINISHED")])


@dataclass
class _Kept:
    """What this fake keeps of a statement it ran, beside moto's (which has no field for it)."""

    progress: _Progress
    workgroup: str | None = None
    name: str | None = None
    error: str | None = None  # a fate's reason
    with_event: bool = False  # WithEvent: an EventBridge event when it ends (state_events.py)


_KEPT: weakref.WeakKeyDictionary[Statement, _Kept] = weakref.WeakKeyDictionary()


@wraps_method(RedshiftDataAPIServiceResponse, "execute_statement")
def _execute(original: Any, self: RedshiftDataAPIServiceResponse) -> Any:
    backend = self.redshiftdata_backend
    token = self._get_param("ClientToken")
    tokens: dict[str, str] = backend.__dict__.setdefault(_TOKENS, {})
    if token and token in tokens:
        return 200, {}, json.dumps(_started(backend.statements[tokens[token]]))
    _check_cluster(self)
    _check_parameters(self._get_param("Sql") or "", self._get_param("Parameters") or [])
    status, headers, body = original(self)
    statement = backend.statements[json.loads(body)["Id"]]
    statement.status = "SUBMITTED"
    _KEPT[statement] = _Kept(
        _Progress(),
        self._get_param("WorkgroupName"),
        self._get_param("StatementName"),
        with_event=self._get_param("WithEvent") is True,
    )
    if token:
        tokens[token] = statement.id
    return status, headers, json.dumps(_started(statement))


def _started(statement: Statement) -> dict[str, Any]:
    answer = {"Id": statement.id, "CreatedAt": statement.created_at, "Database": statement.database}
    for key, value in (
        ("ClusterIdentifier", statement.cluster_identifier),
        ("DbUser", statement.db_user),
        ("SecretArn", statement.secret_arn),
        ("WorkgroupName", _workgroup(statement)),
    ):
        if value:
            answer[key] = value
    return answer


def _workgroup(statement: Statement) -> str | None:
    kept = _KEPT.get(statement)
    return kept.workgroup if kept is not None else None


def _check_cluster(self: RedshiftDataAPIServiceResponse) -> None:
    cluster = self._get_param("ClusterIdentifier")
    if not cluster:
        return
    from moto.redshift.models import redshift_backends

    if cluster not in redshift_backends[self.current_account][self.region].clusters:
        raise ValidationException("Redshift endpoint doesn't exist in this region.")


def _check_parameters(sql: str, parameters: list[dict[str, str]]) -> None:
    unused = [
        p.get("name", "") for p in parameters if not re.search(rf"(?<![:\w]):{re.escape(p.get('name', ''))}\b", sql)
    ]
    if unused:
        raise ValidationException(
            f"Parameters list contains unused parameters. Unused parameters: [{', '.join(unused)}]"
        )


@wraps_method(RedshiftDataAPIServiceBackend, "describe_statement")
def _describe(original: Any, self: RedshiftDataAPIServiceBackend, statement_id: str) -> Statement:
    statement = original(self, statement_id)
    _advance(statement)
    return statement


def _advance(statement: Statement) -> None:
    kept = _KEPT.get(statement)
    if kept is None or statement.status not in RUNNING:
        return
    fate = fate_of("redshift-data", statement.id)
    if fate:
        statement.status = fate["status"]
        kept.error = fate["reason"]
        return
    kept.progress.advance()
    status = kept.progress.status
    if status is not None:  # always: each of its transitions names the state it goes to
        statement.status = status
    if statement.status == "FINISHED":
        select = bool(re.match(r"\s*(select|with|show)\b", statement.query_string or "", re.I))
        statement.has_result_set = select
        statement.result_rows = 3 if select else 0
        statement.result_size = 120 if select else 0


@wraps_method(Statement, "__iter__")
def _fields(original: Any, self: Statement) -> Any:
    yield from original(self)
    if _workgroup(self):
        yield "WorkgroupName", _workgroup(self)
    kept = _KEPT.get(self)
    if kept is not None and kept.name:
        yield "StatementName", kept.name
    if kept is not None and kept.error:
        yield "Error", kept.error


@wraps_method(RedshiftDataAPIServiceBackend, "cancel_statement")
def _cancel(original: Any, self: RedshiftDataAPIServiceBackend, statement_id: str) -> None:
    statement = self.statements.get(statement_id)
    if statement is not None and statement.status in ("SUBMITTED", "PICKED"):
        statement.status = "STARTED"  # moto cancels only STARTED: AWS cancels whatever has not ended
    original(self, statement_id)


@adds_method(RedshiftDataAPIServiceResponse, "list_statements")
def _list(self: RedshiftDataAPIServiceResponse) -> Any:
    status = self._get_param("Status") or "ALL"
    wanted = {
        "StatementName": self._get_param("StatementName"),
        "ClusterIdentifier": self._get_param("ClusterIdentifier"),
        "WorkgroupName": self._get_param("WorkgroupName"),
        "Database": self._get_param("Database"),
    }
    found = []
    for statement in self.redshiftdata_backend.statements.values():
        _advance(statement)
        fields = dict(statement)
        if status != "ALL" and fields["Status"] != status:
            continue
        if any(value and fields.get(key) != value for key, value in wanted.items()):
            continue
        found.append(
            {
                key: fields[key]
                for key in (
                    "Id",
                    "Status",
                    "QueryString",
                    "CreatedAt",
                    "UpdatedAt",
                    "SecretArn",
                    "StatementName",
                    "Database",
                    "QueryParameters",
                )
                if fields.get(key) is not None
            }
        )
        found[-1]["IsBatchStatement"] = False
    found.sort(key=lambda item: item["CreatedAt"], reverse=True)
    return 200, {}, json.dumps({"Statements": found})
