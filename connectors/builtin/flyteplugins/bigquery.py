"""``bigquery_query_job_task``: a BigQuery query job, ported from flyte-sdk 2.12.1's
``flyteplugins.bigquery`` connector without pandas, pyarrow or google-cloud-storage.

| | |
|---|---|
| create | jobs.insert of ``template.sql.statement`` in ``custom.ProjectID`` / ``custom.Location``; each input a named ScalarQueryParameter typed by its declared type; job id ``flyte_<idempotency token>`` |
| get | jobs.get: ``status.errors`` -> FAILED with them as the message, else the state word (PENDING, RUNNING, DONE) as the flyte SDK maps it |
| delete | jobs.cancel (a job BigQuery no longer knows: nothing to cancel) |
| outputs | ``results``: the job's destination table, ``bq://<project>:<dataset>.<table>`` |
| secret | ``google_application_credentials``: a service account key (JSON) |

The client is built as the original builds it: the project and location from the template, the
user agent ``Flyte/<sdk version> (GPN:Union;<domain>)``, the service account's credentials (or
Google's default credentials when no key is given). ``BIGQUERY_EMULATOR_HOST`` points it elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flyteidl2.core import types_pb2
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format

from ... import literals
from ...connector import AsyncConnector, Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...phase import convert_to_flyte_phase

__all__ = ["BigQueryConnector", "BigQueryMetadata", "bigquery_error", "query_parameters"]

TASK_TYPE = "bigquery_query_job_task"
T = TypeVar("T")

# The original maps each input's declared type, as TypeEngine.guess_python_type reads it
# (int, float, str, bool, datetime), to a BigQuery type; its ``list`` and ``bytes`` rows are never
# reached (a collection guesses as List[T], bytes as a pickle) and any other type fails there.
# A ``datetime.date`` input is declared DATETIME by the flyte SDK, so it is a DATETIME here too.
_BIGQUERY_TYPE = {
    types_pb2.BOOLEAN: "BOOL",
    types_pb2.DATETIME: "DATETIME",
    types_pb2.FLOAT: "FLOAT64",
    types_pb2.INTEGER: "INT64",
    types_pb2.STRING: "STRING",
}


@dataclass
class BigQueryMetadata(ResourceMeta):
    job_id: str
    project: str
    location: str | None
    user_agent: str


def _timeout() -> float:
    return float(os.environ.get("CONNECTOR_TIMEOUT_SECONDS", "") or 8.0)


@functools.lru_cache(maxsize=32)
def _client(project: str, location: str | None, user_agent: str, credentials_json: str | None) -> Any:
    """The BigQuery client for one project, location, user agent and key, built once per process."""
    from google.api_core.client_info import ClientInfo
    from google.cloud import bigquery

    credentials = None
    if credentials_json is not None:
        from google.oauth2 import service_account

        try:
            info = json.loads(credentials_json)
            credentials = service_account.Credentials.from_service_account_info(info)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise invalid_argument(
                f"{TASK_TYPE}: the google_application_credentials secret is not a service "
                f"account key (JSON): {type(error).__name__}: {error}"
            ) from None
    return bigquery.Client(
        project=project, location=location, client_info=ClientInfo(user_agent=user_agent), credentials=credentials
    )


def query_parameters(template: Any, inputs: dict[str, Any]) -> list[Any]:
    """The inputs as named ScalarQueryParameters, typed by their declared types (as the original)."""
    from google.cloud import bigquery

    declared = {entry.key: entry.value.type for entry in template.interface.inputs.variables}
    parameters = []
    for name, value in inputs.items():
        literal_type = declared.get(name)
        kind = literal_type.simple if literal_type is not None and literal_type.WhichOneof("type") == "simple" else None
        if kind not in _BIGQUERY_TYPE:
            raise invalid_argument(
                f"{TASK_TYPE}: input {name!r} is declared {_type_text(literal_type)}, which is "
                f"not a BigQuery query parameter (use int, float, str, bool or datetime)"
            )
        parameters.append(bigquery.ScalarQueryParameter(name, _BIGQUERY_TYPE[kind], value))
    return parameters


def _type_text(literal_type: Any) -> str:
    if literal_type is None:
        return "nowhere in the task's interface"
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return types_pb2.SimpleType.Name(literal_type.simple)
    return kind or "untyped"


class BigQueryConnector(AsyncConnector[BigQueryMetadata]):
    name = "Bigquery Connector"
    task_type_name = TASK_TYPE
    task_type_version = 0
    metadata_type = BigQueryMetadata
    secret_names: tuple[str, ...] = ("google_application_credentials",)
    # The job id is the token's: jobs.insert refuses an id BigQuery knows, and it keeps a job's
    # information for six months after its creation.
    replay_window = timedelta(days=180)

    def replay_hint(self, task_template: Any, idempotency_token: str, task_execution_metadata: Any) -> str:
        project = _custom(task_template).get("ProjectID")
        return f"the BigQuery job flyte_{idempotency_token} in project {project}"

    # How long the client keeps retrying one call (google-api-core's DEFAULT_RETRY, which retries
    # 5xx answers, rate limits and broken connections): within the connector's deadline.
    retry_seconds: float | None = None

    async def create(
        self,
        task_template: Any,
        output_prefix: str = "",
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: Any = None,
        google_application_credentials: str | None = None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> BigQueryMetadata:
        from google.api_core import exceptions as google_errors
        from google.cloud import bigquery

        custom = _custom(task_template)
        project = custom.get("ProjectID")
        if not isinstance(project, str) or not project:
            raise invalid_argument(f"{TASK_TYPE}: template.custom.ProjectID is required (BigQueryConfig.ProjectID)")
        location = custom.get("Location")
        if location is not None and not isinstance(location, str):
            raise invalid_argument(f"{TASK_TYPE}: template.custom.Location must be a string, got {location!r}")
        statement = task_template.sql.statement if task_template.HasField("sql") else ""
        if not statement.strip():
            raise invalid_argument(f"{TASK_TYPE}: template.sql.statement is empty (the task's query_template)")
        job_config = None
        if inputs:
            job_config = bigquery.QueryJobConfig(query_parameters=query_parameters(task_template, inputs))
        domain = custom.get("Domain")
        user_agent = f"Flyte/{task_template.metadata.runtime.version} (GPN:Union;{domain or ''})"
        # BigQuery job ids are the caller's: one per attempt, so a create retried after its answer
        # was lost meets "Already Exists" and takes the job it started (the original lets the
        # client pick a random id).
        job_id = f"flyte_{idempotency_token}" if idempotency_token else None
        client = await self._call("jobs.insert", _client, project, location, user_agent, google_application_credentials)
        try:
            job = await self._call(
                "jobs.insert",
                client.query,
                statement,
                job_config=job_config,
                job_id=job_id,
                job_retry=None,
                **self._retry(),
            )
            job_id = str(job.job_id)
        except ConnectError as error:
            if not (job_id and isinstance(error.__cause__, google_errors.Conflict)):
                raise
            # Our id, so our job: started by an earlier try of this attempt.
        return BigQueryMetadata(job_id=job_id, project=project, location=location, user_agent=user_agent)

    async def get(
        self, resource_meta: BigQueryMetadata, google_application_credentials: str | None = None, **kwargs: Any
    ) -> Resource:
        meta = resource_meta
        client = await self._call(
            "jobs.get", _client, meta.project, meta.location, meta.user_agent, google_application_credentials
        )
        log_link = TaskLog(
            uri=f"https://console.cloud.google.com/bigquery?project={meta.project}"
            f"&j=bq:{meta.location}:{meta.job_id}&page=queryresults",
            name="BigQuery Console",
            ready=True,
            link_type=TaskLog.DASHBOARD,
        )
        job = await self._call("jobs.get", client.get_job, meta.job_id, meta.project, meta.location, **self._retry())
        if job.errors:
            return Resource(phase=TaskExecution.FAILED, message=str(job.errors), log_links=[log_link])
        state = str(job.state)
        try:
            phase = convert_to_flyte_phase(state)
        except ValueError:
            raise ConnectError(
                Code.INTERNAL, f"BigQuery reported job state {state!r}, which this connector does not know"
            ) from None
        outputs = None
        if phase == TaskExecution.SUCCEEDED and job.destination:
            table = job.destination
            outputs = {
                "results": literals.DataFrameRef(uri=f"bq://{table.project}:{table.dataset_id}.{table.table_id}")
            }
        return Resource(phase=phase, message=state, log_links=[log_link], outputs=outputs)

    async def delete(
        self, resource_meta: BigQueryMetadata, google_application_credentials: str | None = None, **kwargs: Any
    ) -> None:
        meta = resource_meta
        client = await self._call(
            "jobs.cancel", _client, meta.project, meta.location, meta.user_agent, google_application_credentials
        )
        try:  # BigQuery accepts the cancel of a finished job and leaves it as it ended
            await self._call(
                "jobs.cancel", client.cancel_job, meta.job_id, meta.project, meta.location, **self._retry()
            )
        except ConnectError as error:
            if error.code != Code.NOT_FOUND:  # a job BigQuery no longer knows: nothing to cancel
                raise

    def _retry(self) -> dict[str, Any]:
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        seconds = self.retry_seconds if self.retry_seconds is not None else _timeout() * 0.75
        return {"retry": DEFAULT_RETRY.with_timeout(seconds), "timeout": max(1.0, seconds)}

    async def _call(self, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function`` in a worker thread (the client blocks); its failure as a Connect error."""
        try:
            return await asyncio.to_thread(functools.partial(function, *args, **kwargs))
        except Exception as error:
            raise bigquery_error(error, what) from error


def _custom(template: Any) -> dict[str, Any]:
    if not template.HasField("custom"):
        raise invalid_argument(f"{TASK_TYPE}: template.custom is required (ProjectID, Location: BigQueryConfig)")
    try:
        return json_format.MessageToDict(template.custom)
    except ValueError as error:
        raise invalid_argument(f"{TASK_TYPE}: template.custom is not JSON: {error}") from None


_RATE_LIMITS = {"rateLimitExceeded", "quotaExceeded", "userRateLimitExceeded", "backendRateLimitExceeded"}


def bigquery_error(error: BaseException, what: str) -> ConnectError:
    """A Connect error for a BigQuery (or Google auth) failure, by kind, with Google's message.

    BadRequest -> invalid_argument, Unauthorized -> unauthenticated, Forbidden -> permission_denied
    (BigQuery's rate and quota limits come as 403: resource_exhausted), NotFound -> not_found,
    Conflict -> failed_precondition, TooManyRequests -> resource_exhausted, server errors, retries
    run out and the network -> unavailable.
    """
    import requests
    from google.api_core import exceptions as google_errors
    from google.auth import exceptions as auth_errors

    if isinstance(error, ConnectError):
        return error
    if isinstance(error, google_errors.RetryError):  # retried until the deadline: the last failure's kind
        cause = error.cause if isinstance(error.cause, Exception) else None
        try:
            inner = bigquery_error(cause, what) if cause is not None else None
        except Exception:  # a cause that is no Google failure: answered as below
            inner = None
        if inner is None:
            return ConnectError(Code.UNAVAILABLE, f"bigquery {what}: {error}")
        return ConnectError(inner.code, f"{inner.message} (retried until the deadline)")
    if isinstance(error, google_errors.GoogleAPICallError):
        reasons = {str(item.get("reason", "")) for item in (error.errors or []) if isinstance(item, dict)}
        text = f"bigquery {what}: {error.code} {error.message}" if error.code else f"bigquery {what}: {error.message}"
        if isinstance(error, google_errors.Forbidden) and reasons & _RATE_LIMITS:
            return ConnectError(Code.RESOURCE_EXHAUSTED, text)
        for kind, code in (
            (google_errors.BadRequest, Code.INVALID_ARGUMENT),
            (google_errors.Unauthorized, Code.UNAUTHENTICATED),
            (google_errors.Forbidden, Code.PERMISSION_DENIED),
            (google_errors.NotFound, Code.NOT_FOUND),
            (google_errors.Conflict, Code.FAILED_PRECONDITION),
            (google_errors.TooManyRequests, Code.RESOURCE_EXHAUSTED),
            (google_errors.ServerError, Code.UNAVAILABLE),
        ):
            if isinstance(error, kind):
                return ConnectError(code, text)
        return ConnectError(Code.FAILED_PRECONDITION, text)
    if isinstance(error, auth_errors.RefreshError):  # the token endpoint refused the key
        if getattr(error, "retryable", False):
            return ConnectError(Code.UNAVAILABLE, f"bigquery {what}: could not get an access token: {error}")
        return ConnectError(Code.UNAUTHENTICATED, f"bigquery {what}: the service account key was refused: {error}")
    if isinstance(error, auth_errors.DefaultCredentialsError):
        return ConnectError(
            Code.UNAUTHENTICATED,
            f"bigquery {what}: no google_application_credentials secret, and no Google default credentials: {error}",
        )
    if isinstance(
        error, (auth_errors.TransportError, requests.exceptions.RequestException, ConnectionError, TimeoutError)
    ):
        return ConnectError(Code.UNAVAILABLE, f"bigquery {what}: BigQuery did not answer: {error}")
    raise error  # not a BigQuery failure: the service's call wrapper reports it as internal
