"""GetTaskLogs from CloudWatch Logs, for the connectors whose jobs log there (Batch, SageMaker).

One page per call: ``lines`` events at most (100 when the caller asks for none) from one log
stream or from the streams under a prefix, oldest first; the answer's header carries the token
of the next page (empty when there is no more yet). A job that has not logged yet (its group or
stream does not exist) answers an empty page, not an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from flyteidl2.connector.connector_pb2 import GetTaskLogsResponse, GetTaskLogsResponseBody, GetTaskLogsResponseHeader
from flyteidl2.logs.dataplane.payload_pb2 import LogLine, LogLineOriginator
from google.protobuf.timestamp_pb2 import Timestamp

from ...errors import Code, ConnectError
from .base import AwsConnector

DEFAULT_LINES = 100
MAX_LINES = 10_000  # CloudWatch's own page limit


async def cloudwatch_log_pages(
    connector: AwsConnector[Any],
    group: str,
    *,
    stream: str | None = None,
    prefix: str | None = None,
    token: str = "",
    lines: int = 0,
) -> AsyncIterator[GetTaskLogsResponse]:
    """A GetTaskLogs answer: the header (next token), then one body of log lines."""
    params: dict[str, Any] = {"logGroupName": group, "limit": min(MAX_LINES, lines or DEFAULT_LINES)}
    if stream:
        params["logStreamNames"] = [stream]
    elif prefix:
        params["logStreamNamePrefix"] = prefix
    if token:
        params["nextToken"] = token
    try:
        page = await connector.aws_call("logs", "filter_log_events", **params)
    except ConnectError as error:
        if error.code != Code.NOT_FOUND:
            raise
        page = {"events": []}  # nothing logged yet
    yield GetTaskLogsResponse(header=GetTaskLogsResponseHeader(token=page.get("nextToken", "") or ""))
    found = []
    for event in page.get("events", []):
        when = Timestamp()
        when.FromMilliseconds(int(event.get("timestamp", 0)))
        found.append(
            LogLine(
                timestamp=when, message=str(event.get("message", "")).rstrip("\n"), originator=LogLineOriginator.USER
            )
        )
    yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(lines=found))
