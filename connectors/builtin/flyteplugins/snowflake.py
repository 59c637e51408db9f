"""``snowflake``: a Snowflake query, as flyte-sdk 2.12.1's ``flyteplugins.snowflake`` connector runs it.

| | |
|---|---|
| create | ``connect(account, user, database, schema, warehouse, [private_key], **connection_kwargs)``, then ``cursor.execute_async(statement, inputs)`` (``batch``: one multi-row VALUES clause); the query is tagged with the idempotency token (QUERY_TAG) and looked up by it first |
| get | ``connection.get_query_status`` / ``is_an_error`` (the error's text via ``get_query_status_throw_if_error``) |
| delete | ``SELECT SYSTEM$CANCEL_QUERY('<query id>')``; quiet for a query that no longer runs |
| outputs | ``results``: a DataFrame ``snowflake://<user>/<account>/<warehouse>/<database>/<schema>/<query id>`` |
| log link | ``Snowflake Dashboard``: ``https://app.snowflake.com/<org>/<account>/#/compute/history/queries/<id>/detail`` |

The private key signs in only at an account the deployment lists (SnowflakeAccounts), for every
call: none listed is ``failed_precondition``, another account ``permission_denied``, before any
connection (docs/security.md).

Only ``snowflake-connector-python`` (without its pandas extra) and ``cryptography`` are needed. The
connections are ``snowflake_connections``' (its ``snowflake_connect``, the one function tests
replace, makes each); the SQL is ``snowflake_sql``'s.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format

from ...connector import AsyncConnector, Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument, permission_denied
from ...literals import DataFrameRef
from ...secrets import require_listed_host
from ...settings import SNOWFLAKE_ACCOUNTS
from .snowflake_connections import cached_connection, connect_seconds, forget_connection, snowflake_host
from .snowflake_sql import LOOKUP_SQL, expand_batch_query, query_link, query_phase, query_tag

logger = logging.getLogger(__name__)

TASK_TYPE = "snowflake"


@dataclass
class SnowflakeJobMetadata(ResourceMeta):
    """The original's metadata, field for field."""

    account: str
    user: str
    database: str
    schema: str
    warehouse: str
    query_id: str
    has_output: bool
    connection_kwargs: dict[str, Any] | None = None


# connect() arguments that choose the endpoint or the login (a task may not set them), those that
# read the function's files among them: a connections.toml's host, a token file read whole (/dev/zero).
ENDPOINT_KEYS = frozenset(
    {
        "connection_name",
        "connections_file_path",
        "token_file_path",
        "host",
        "port",
        "protocol",
        "region",
        "authenticator",
        "jwt_timeout",
        "token",
        "password",
        "private_key",
        "private_key_file",
        "private_key_file_pwd",
        "oauth_client_id",
        "oauth_client_secret",
        "proxy_host",
        "proxy_port",
        "proxy_user",
        "proxy_password",
        "ocsp_response_cache_filename",
        "disable_ocsp_checks",
        "insecure_mode",
        "backoff_policy",
        "session_token",
        "master_token",
        "user",
        "account",
    }
)


async def _call(meta: SnowflakeJobMetadata, secrets: dict[str, Any], work: Any) -> Any:
    """``work(connection)`` in a worker thread; a Snowflake error becomes a Connect error (the
    connection is dropped from the cache when the error is about it, so the next call reconnects)."""
    host = snowflake_host(meta.account)
    require_listed_host(  # the key is the deployment's: it signs in only at accounts the deployment lists
        TASK_TYPE,
        meta.account,
        SNOWFLAKE_ACCOUNTS,
        kind="account",
        credential="snowflake_private_key",
        shown=f"account {meta.account!r} ({host})",
    )
    budget = connect_seconds()
    key_text, passphrase = secrets.get("snowflake_private_key"), secrets.get("snowflake_private_key_passphrase")
    try:
        key, conn = await asyncio.wait_for(
            asyncio.to_thread(cached_connection, meta, key_text, passphrase, budget), budget
        )
    except TimeoutError:  # the sign-in thread ends on the driver's own login_timeout
        raise ConnectError(
            Code.UNAVAILABLE,
            f"snowflake: no answer from {host} within {budget:.3g} s: check the account identifier and this "
            f"function's route to Snowflake (from a VPC: a NAT gateway or a PrivateLink endpoint)",
        ) from None
    except ConnectError:
        raise
    except Exception as error:  # every client error is mapped
        mapped = snowflake_error(error)
        if mapped.code == Code.UNAVAILABLE:
            raise ConnectError(Code.UNAVAILABLE, f"snowflake: could not connect to {host}: {mapped.message}") from None
        raise mapped from None

    def run() -> Any:
        try:
            return work(conn)
        except ConnectError:
            raise
        except Exception as error:  # every client error is mapped
            mapped = snowflake_error(error)
            if mapped.code in (Code.UNAVAILABLE, Code.UNAUTHENTICATED):
                forget_connection(key)
            raise mapped from None

    return await asyncio.to_thread(run)


_CREDENTIAL_REJECTED = re.compile(r"^39[0-9]{4}$")


def snowflake_error(error: BaseException) -> ConnectError:
    """A ``snowflake.connector`` error as a Connect error by kind, its message kept."""
    from snowflake.connector import errors

    message = str(error) or type(error).__name__
    errno = str(getattr(error, "errno", ""))
    sqlstate = getattr(error, "sqlstate", "")
    if isinstance(error, errors.ForbiddenError) or sqlstate == "42501":  # HTTP 403, insufficient privileges
        return ConnectError(Code.PERMISSION_DENIED, message)
    if sqlstate == "28000" or _CREDENTIAL_REJECTED.match(errno):  # credentials refused, JWT invalid or expired
        return ConnectError(Code.UNAUTHENTICATED, message)
    if isinstance(error, errors.TooManyRequests):
        return ConnectError(Code.RESOURCE_EXHAUSTED, message)
    if isinstance(error, (errors.ProgrammingError, errors.BadRequest, ValueError, TypeError)):
        return ConnectError(Code.INVALID_ARGUMENT, message)
    if isinstance(error, errors.Error):  # DatabaseError, OperationalError, InterfaceError, HTTP 5xx, timeouts
        return ConnectError(Code.UNAVAILABLE, message)
    return ConnectError(Code.UNAVAILABLE, f"{type(error).__name__}: {message}")


class SnowflakeConnector(AsyncConnector[SnowflakeJobMetadata]):
    name = "Snowflake Connector"
    task_type_name = TASK_TYPE
    task_type_version = 0
    metadata_type = SnowflakeJobMetadata
    secret_names: tuple[str, ...] = ("snowflake_private_key", "snowflake_private_key_passphrase")
    # A task may not choose how the service signs in (ENDPOINT_KEYS), so the key is the only login.
    required_secrets: tuple[str, ...] = ("snowflake_private_key",)
    # INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER shows a query once Snowflake has it; a replay waits
    # this long after a create whose outcome is unknown, in case the query is not listed at once.
    replay_settle_seconds = 30.0
    # The query is found by its tag in QUERY_HISTORY_BY_USER over the last day (LOOKUP_SQL).
    replay_window = timedelta(days=1)

    def replay_hint(self, task_template: Any, idempotency_token: str, task_execution_metadata: Any) -> str:
        return f"a Snowflake query whose QUERY_TAG ends with {idempotency_token} (QUERY_HISTORY)"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> SnowflakeJobMetadata:
        custom = json_format.MessageToDict(task_template.custom) if task_template.HasField("custom") else {}
        account = custom.get("account")
        if not account:
            raise invalid_argument("Missing Snowflake account. Set it through task configuration.")
        user, database, warehouse = custom.get("user"), custom.get("database"), custom.get("warehouse")
        if not (user and database and warehouse):
            raise invalid_argument("User, database and warehouse must be specified in the task configuration.")
        connection_kwargs = custom.get("connection_kwargs", {})
        if not isinstance(connection_kwargs, dict):
            raise invalid_argument("snowflake: template.custom.connection_kwargs must be an object")
        steering = sorted(key for key in connection_kwargs if key.lower() in ENDPOINT_KEYS)
        if steering:
            # The key is the deployment's (Secrets Manager), not the task's: the task may not choose
            # where it is used, or how the login is made.
            raise permission_denied(
                f"snowflake: template.custom.connection_kwargs may not set {', '.join(steering)}: "
                f"they choose where and how this service signs in with its key"
            )
        query = task_template.sql.statement
        if custom.get("batch", False) and inputs:
            if not all(isinstance(column, (list, tuple)) for column in inputs.values()):
                raise invalid_argument("Batch inputs must be lists, one per column.")
            statement, params = expand_batch_query(query, inputs)
        else:
            statement, params = query, inputs
        tag = query_tag(connection_kwargs, idempotency_token)
        meta = SnowflakeJobMetadata(
            account=account,
            user=user,
            database=database,
            schema=custom.get("schema", "PUBLIC"),
            warehouse=warehouse,
            query_id="",
            connection_kwargs=connection_kwargs,
            has_output=len(task_template.interface.outputs.variables) > 0,
        )

        def submit(conn: Any) -> str:
            cursor = conn.cursor()
            try:
                if idempotency_token:  # an earlier try of this attempt may have started it
                    cursor.execute(LOOKUP_SQL, {"user": user, "token": idempotency_token})
                    row = cursor.fetchone()
                    if row:
                        logger.info("Snowflake query %s was started by an earlier try: adopted", row[0])
                        return str(row[0])
                if tag:
                    cursor.execute_async(statement, params, _statement_params={"QUERY_TAG": tag})
                else:
                    cursor.execute_async(statement, params)
                return cursor.sfqid
            finally:
                cursor.close()

        meta.query_id = await _call(meta, kwargs, submit)
        logger.info("Snowflake query submitted with ID: %s", meta.query_id)
        return meta

    async def get(self, resource_meta: SnowflakeJobMetadata, **kwargs: Any) -> Resource:
        meta = resource_meta
        link = TaskLog(
            uri=query_link(meta.account, meta.query_id),
            name="Snowflake Dashboard",
            ready=True,
            link_type=TaskLog.DASHBOARD,
        )

        def status(conn: Any) -> tuple[Any, str | None]:
            found = conn.get_query_status(meta.query_id)
            if not conn.is_an_error(found):
                return found, None
            try:  # the error's text, as the original reports it
                conn.get_query_status_throw_if_error(meta.query_id)
            except Exception as error:  # its message is the answer
                return found, str(error)
            return found, found.name

        found, error = await _call(meta, kwargs, status)
        if error is not None:
            logger.error("Snowflake query failed: %s", error)
            return Resource(phase=TaskExecution.FAILED, message=error, log_links=[link])
        phase = query_phase(found)
        outputs = None
        if phase == TaskExecution.SUCCEEDED and meta.has_output:
            uri = (
                f"snowflake://{meta.user}/{meta.account}/{meta.warehouse}/{meta.database}/{meta.schema}/{meta.query_id}"
            )
            outputs = {"results": DataFrameRef(uri=uri, format="")}
        return Resource(phase=phase, message=found.name, log_links=[link], outputs=outputs)

    async def delete(self, resource_meta: SnowflakeJobMetadata, **kwargs: Any) -> None:
        meta = resource_meta

        def cancel(conn: Any) -> None:
            cursor = conn.cursor()
            try:
                cursor.execute(f"SELECT SYSTEM$CANCEL_QUERY('{meta.query_id}')")
            except Exception as error:
                # A query that no longer runs (finished, or unknown to Snowflake) stays as it ended.
                if _refused(error) and not _still_running(conn, meta.query_id):
                    return
                raise
            finally:
                cursor.close()

        await _call(meta, kwargs, cancel)
        logger.info("Snowflake query %s cancelled", meta.query_id)


def _refused(error: BaseException) -> bool:
    """Snowflake answered and refused the statement (not a network or service failure)."""
    from snowflake.connector.errors import ProgrammingError

    return isinstance(error, (ProgrammingError, ValueError))


def _still_running(conn: Any, query_id: str) -> bool:
    """Whether Snowflake still runs the query; an id it refuses to look up is not running."""
    try:
        return bool(conn.is_still_running(conn.get_query_status(query_id)))
    except Exception as error:
        if _refused(error):
            return False
        raise
