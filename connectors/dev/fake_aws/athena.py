"""Athena: ClientRequestToken honoured, an unknown query id refused as AWS does, fates applied.

- StartQueryExecution with a ClientRequestToken already used answers the same QueryExecutionId
  ("a unique case-sensitive string used to ensure the request to create the query is idempotent
  (executes only once)", Athena API reference); moto starts a new query each time.
- GetQueryExecution/StopQueryExecution of an unknown id: AWS answers InvalidRequestException,
  moto a bare 500.
- A query given no result location writes where its work group's configuration says.
- A query in a work group with ManagedQueryResultsConfiguration enabled answers it, and no
  ResultConfiguration.OutputLocation: its results are in Athena-owned storage ("A workgroup cannot
  have the ResultConfiguration$OutputLocation parameter when you set this field to true",
  athena model); moto answers neither.
- A fate of FAILED sets State, StateChangeReason and AthenaError (``retryable`` in the fate
  sets AthenaError.Retryable). A fate of CANCELLED ("CANCELLED indicates that a user input
  interrupted query execution": a person, or another program, not this service) sets State and
  its reason as StateChangeReason ("Further detail about the status of the query").
"""

from __future__ import annotations

import json
from typing import Any

from moto.athena.models import AthenaBackend
from moto.athena.responses import AthenaResponse
from moto.core.exceptions import JsonRESTError

from . import count_call, fate_of
from ._support import wraps_method

_TOKENS = "_fake_aws_tokens"


@wraps_method(AthenaResponse, "start_query_execution")
def _start(original: Any, self: AthenaResponse) -> Any:
    token = self._get_param("ClientRequestToken")
    count_call("athena", "StartQueryExecution", token or "")
    tokens: dict[str, str] = self.athena_backend.__dict__.setdefault(_TOKENS, {})
    if token and token in tokens:
        return json.dumps({"QueryExecutionId": tokens[token]})
    answer = original(self)
    if isinstance(answer, str):
        exec_id = json.loads(answer)["QueryExecutionId"]
        _result_location_from_work_group(self.athena_backend, exec_id)
        if token:
            tokens[token] = exec_id
    return answer


def _result_location_from_work_group(backend: AthenaBackend, exec_id: str) -> None:
    """A query given no OutputLocation writes where its work group says (moto leaves it empty)."""
    execution = backend.executions[exec_id]
    if execution.config and execution.config.get("OutputLocation"):
        return
    group = execution.workgroup
    configured = ((getattr(group, "configuration", None) or {}).get("ResultConfiguration") or {}).get("OutputLocation")
    if configured:
        execution.config = {**(execution.config or {}), "OutputLocation": configured.rstrip("/") + f"/{exec_id}.csv"}


def _known(backend: AthenaBackend, exec_id: str) -> None:
    if exec_id not in backend.executions:
        raise JsonRESTError("InvalidRequestException", f"QueryExecution {exec_id} was not found")


@wraps_method(AthenaResponse, "get_query_execution")
def _get(original: Any, self: AthenaResponse) -> Any:
    exec_id = self._get_param("QueryExecutionId")
    _known(self.athena_backend, exec_id)
    execution = self.athena_backend.executions[exec_id]
    fate = apply_fate(execution)
    answer = json.loads(original(self))
    configuration = getattr(execution.workgroup, "configuration", None) or {}
    managed = configuration.get("ManagedQueryResultsConfiguration") or {}
    if managed.get("Enabled"):  # results in Athena-owned storage: no S3 location to answer
        query = answer["QueryExecution"]
        query["ManagedQueryResultsConfiguration"] = managed
        query["ResultConfiguration"] = {
            key: value for key, value in (query.get("ResultConfiguration") or {}).items() if key != "OutputLocation"
        }
    status = answer["QueryExecution"]["Status"]
    if fate and status["State"] == fate["status"] == "CANCELLED" and fate["reason"]:
        status["StateChangeReason"] = fate["reason"]
    if fate and status["State"] == fate["status"] == "FAILED":
        status["StateChangeReason"] = fate["reason"]
        status["AthenaError"] = athena_error(fate)
    return json.dumps(answer)


def apply_fate(execution: Any) -> dict[str, str] | None:
    """Set the state a fate gives the query (as GetQueryExecution finds it); the fate, or None."""
    fate = fate_of("athena", execution.id)
    if fate and execution.status not in ("CANCELLED",):
        execution.status = fate["status"]
    return fate


def athena_error(fate: dict[str, str]) -> dict[str, Any]:
    """The AthenaError of a query a fate failed (GetQueryExecution's Status.AthenaError)."""
    return {
        "ErrorCategory": 2,
        "ErrorType": 1000,
        "Retryable": fate.get("retryable") == "true",
        "ErrorMessage": fate["reason"],
    }


@wraps_method(AthenaBackend, "stop_query_execution")
def _stop(original: Any, self: AthenaBackend, exec_id: str) -> None:
    _known(self, exec_id)
    if self.executions[exec_id].status in ("SUCCEEDED", "FAILED"):
        return  # AWS leaves a finished query as it ended
    original(self, exec_id)
