"""A recording fake of the ``snowflake.connector`` surface the Snowflake connectors use.

Both flyte-sdk's original connector and our port reach Snowflake through one function,
``snowflake_connect(**params)``; a test puts :meth:`FakeSnowflake.connect` in its place. What
the connectors did is then in ``fake.connects`` (each connect's keyword arguments) and
``fake.statements`` (each ``execute``/``execute_async``: SQL, bindings, extra keyword arguments).

Queries move through ``fake.plan`` (status names, one step per status poll; the last one stays);
``fake.fail(query_id or None, message)`` makes a query end FAILED_WITH_ERROR, as Snowflake answers.
The status words, ``is_still_running``/``is_an_error`` and the error classes are the real client's.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from snowflake.connector import errors
from snowflake.connector.connection import SnowflakeConnection
from snowflake.connector.constants import QueryStatus

DEFAULT_PLAN = ("QUEUED", "RUNNING", "SUCCESS")


@dataclass
class FakeQuery:
    query_id: str
    sql: str
    params: Any
    tag: str = ""
    plan: list[str] = field(default_factory=list)
    error: str = ""
    polls: int = 0

    def status(self) -> QueryStatus:
        return QueryStatus[self.plan[min(self.polls, len(self.plan) - 1)]]


@dataclass
class Statement:
    kind: str  # "execute" or "execute_async"
    sql: str
    params: Any
    kwargs: dict[str, Any]


class FakeSnowflake:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connects: list[dict[str, Any]] = []
        self.statements: list[Statement] = []
        self.queries: dict[str, FakeQuery] = {}
        self.plan: tuple[str, ...] = DEFAULT_PLAN
        self.connect_error: BaseException | None = None  # raised by the next connects
        self.submit_error: BaseException | None = None  # raised by the next execute_async (once)
        self.status_error: BaseException | None = None  # raised by status polls while set
        self.cancel_error: BaseException | None = None  # raised by SYSTEM$CANCEL_QUERY while set
        self.fail_with = ""  # new queries fail with this message
        self.closed = 0

    # -- the snowflake.connector surface -------------------------------------------------------

    def connect(self, **params: Any) -> FakeConnection:
        with self.lock:
            self.connects.append(params)
        if self.connect_error is not None:
            raise self.connect_error
        return FakeConnection(self, params)

    # -- for tests ---------------------------------------------------------------------------

    def submitted(self) -> list[Statement]:
        return [s for s in self.statements if s.kind == "execute_async"]

    def executed(self) -> list[Statement]:
        return [s for s in self.statements if s.kind == "execute"]

    def only_query(self) -> FakeQuery:
        assert len(self.queries) == 1, self.queries
        return next(iter(self.queries.values()))


class FakeConnection:
    is_still_running = staticmethod(SnowflakeConnection.is_still_running)
    is_an_error = staticmethod(SnowflakeConnection.is_an_error)

    def __init__(self, fake: FakeSnowflake, params: dict[str, Any]) -> None:
        self.fake = fake
        self.params = params
        self._closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self._closed = True
        self.fake.closed += 1

    def is_closed(self) -> bool:
        return self._closed

    def _query(self, query_id: str) -> FakeQuery:
        if self.fake.status_error is not None:
            raise self.fake.status_error
        try:
            return self.fake.queries[query_id]
        except KeyError:
            raise ValueError(f"Invalid UUID: '{query_id}'") from None

    def get_query_status(self, query_id: str) -> QueryStatus:
        with self.fake.lock:
            query = self._query(query_id)
            status = query.status()
            query.polls += 1
            return status

    def get_query_status_throw_if_error(self, query_id: str) -> QueryStatus:
        status = self.get_query_status(query_id)
        if self.is_an_error(status):
            query = self.fake.queries[query_id]
            raise errors.ProgrammingError(
                msg=query.error or "Query was aborted",
                errno=100038 if query.error else 604,
                sqlstate="22018" if query.error else "57014",
                sfqid=query_id,
                send_telemetry=False,
            )
        return status


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.fake = conn.fake
        self.sfqid: str | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows.pop(0) if self.rows else None

    def execute_async(self, sql: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        fake = self.fake
        with fake.lock:
            fake.statements.append(Statement("execute_async", sql, params, kwargs))
            if fake.submit_error is not None:
                error, fake.submit_error = fake.submit_error, None
                raise error
            query = FakeQuery(
                str(uuid.uuid4()),
                sql,
                params,
                tag=(kwargs.get("_statement_params") or {}).get("QUERY_TAG", ""),
                plan=list(fake.plan),
            )
            if fake.fail_with:
                query.plan, query.error = ["RUNNING", "FAILED_WITH_ERROR"], fake.fail_with
            fake.queries[query.query_id] = query
            self.sfqid = query.query_id
        return {"queryId": query.query_id}

    def execute(self, sql: str, params: Any = None, **kwargs: Any) -> FakeCursor:
        fake = self.fake
        with fake.lock:
            fake.statements.append(Statement("execute", sql, params, kwargs))
            if "SYSTEM$CANCEL_QUERY" in sql:
                if fake.cancel_error is not None:
                    raise fake.cancel_error
                query_id = sql.split("'")[1]
                query = fake.queries.get(query_id)
                if query is not None and SnowflakeConnection.is_still_running(query.status()):
                    query.plan, query.polls = ["ABORTED"], 0
                    self.rows = [(f"query [{query_id}] terminated.",)]
                else:
                    self.rows = [("Identified SQL statement is not currently executing.",)]
            elif "QUERY_HISTORY_BY_USER" in sql:
                token = params["token"]
                found = [q for q in fake.queries.values() if q.tag.endswith(token)]
                self.rows = [(found[0].query_id,)] if found else []
            else:
                raise errors.ProgrammingError(
                    msg=f"the fake does not run {sql!r}", errno=1003, sqlstate="42000", send_telemetry=False
                )
        return self
