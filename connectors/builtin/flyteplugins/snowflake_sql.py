"""What the ``snowflake`` connector sends to Snowflake and reads back, as flyte-sdk 2.12.1's
``flyteplugins.snowflake`` builds it: the look-up of a query an earlier try started (by its
QUERY_TAG), a batch insert's one multi-row VALUES clause, a query's phase and its Snowsight link.
"""

from __future__ import annotations

import re
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution

from ...errors import invalid_argument

# Looked up before a query starts: this user's queries of the last day, the most recent first.
LOOKUP_SQL = (
    "SELECT QUERY_ID FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER("
    "USER_NAME => %(user)s, END_TIME_RANGE_START => DATEADD('day', -1, CURRENT_TIMESTAMP()), "
    "RESULT_LIMIT => 10000)) WHERE ENDSWITH(QUERY_TAG, %(token)s) ORDER BY START_TIME LIMIT 1"
)


def query_tag(connection_kwargs: dict[str, Any], token: str) -> str:
    """The QUERY_TAG of the query: the token, after a tag the task's session parameters set."""
    if not token:
        return ""
    session = connection_kwargs.get("session_parameters") or {}
    theirs = (
        next((str(v) for k, v in session.items() if str(k).upper() == "QUERY_TAG"), "")
        if isinstance(session, dict)
        else ""
    )
    return f"{theirs} {token}" if theirs else token


def query_link(account: str, query_id: str) -> str:
    """The query's page in Snowsight: ``<org>-<account>`` names become ``<org>/<account>``."""
    org, dash, name = account.partition("-")
    base = f"https://app.snowflake.com/{org}/{name}" if dash else f"https://app.snowflake.com/{account}"
    return f"{base}/#/compute/history/queries/{query_id}/detail"


_VALUES = re.compile(r"VALUES\s*\(((?:[^()]*|\([^)]*\))*)\)", re.IGNORECASE)


def expand_batch_query(query: str, inputs: dict[str, list[Any]]) -> tuple[str, dict[str, Any]]:
    """A one-row ``INSERT ... VALUES (%(a)s, %(b)s)`` with list inputs as one multi-row VALUES
    clause: ``VALUES (%(a_0)s, %(b_0)s), (%(a_1)s, %(b_1)s)`` and ``{"a_0": ..., "b_0": ...}``."""
    lengths = {len(column) for column in inputs.values()}
    if len(lengths) != 1:
        raise invalid_argument("All batch input lists must have the same length.")
    rows = lengths.pop()
    if rows == 0:
        raise invalid_argument("Batch inputs must contain at least one row.")
    found = list(_VALUES.finditer(query))
    if not found:
        raise invalid_argument("Batch inputs require a query template with a VALUES (...) clause.")
    if len(found) > 1:
        raise invalid_argument("Batch query expansion supports exactly one VALUES (...) clause.")
    clause = found[0]
    params: dict[str, Any] = {}
    tuples = []
    for i in range(rows):
        row = clause.group(1)
        for name, column in inputs.items():
            row = re.sub(rf"%\({re.escape(name)}\)s", f"%({name}_{i})s", row)
            params[f"{name}_{i}"] = column[i]
        tuples.append(f"({row})")
    return query[: clause.start()] + "VALUES " + ", ".join(tuples) + query[clause.end() :], params


def query_phase(status: Any) -> TaskExecution.Phase.ValueType:
    """The original maps RUNNING and SUCCESS by name (flyte's convert_to_flyte_phase) and fails on
    any other word; the waiting words are QUEUED here, the other running ones RUNNING."""
    if status.name == "SUCCESS":
        return TaskExecution.SUCCEEDED
    if status.name in ("QUEUED", "RESUMING_WAREHOUSE", "QUEUED_REPARING_WAREHOUSE", "NO_DATA"):
        return TaskExecution.QUEUED
    return TaskExecution.RUNNING  # RUNNING, BLOCKED, RESTARTED
