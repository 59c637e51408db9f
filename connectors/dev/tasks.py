"""`connectors tasks list|show`: what the task table says about tasks, for the people on call.

Which table, as `connectors serve` and `connectors invoke` pick it: ``AWS_ENDPOINT_URL_DYNAMODB``
names a local DynamoDB (`make serve`'s embedded moto is http://127.0.0.1:8000; dummy credentials
are used when none are configured), else the deployed table ``TASKS_TABLE`` (the stack's output
``TasksTableName``) with your AWS credentials. ``TASKS_TABLE`` defaults to ``connector-tasks``
(what `make serve` creates) only for a local endpoint.

What each read costs (on-demand capacity, eventually consistent reads):

- ``list``: one Scan of the whole table (0.5 read unit per 4 KB read, finished records included).
- ``list --run RUN``: the same Scan with a filter: it costs what the whole table costs, not what it
  answers.
- ``list --active``: one Query per shard of the keys-only ``active-by-heartbeat`` index (only
  tasks not ended are in it), then a BatchGetItem of those records: it costs what the active
  tasks cost, however large the table.
- ``show HANDLE``: one GetItem.

What is printed of a record, and what never is: tasks_output.py.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ConnectError
from ..settings import Settings
from ..store import ACTIVE_INDEX, ENDED, TaskHandle, TaskRecord, TaskTable, new_client
from ..store.record import ACTIVE_SHARDS
from .local_dynamodb import LOCAL_ENV
from .tasks_output import details, format_details, format_table, printable, summary

USAGE_ERROR = 2
_BATCH_GET_KEYS = 100  # BatchGetItem's limit per call


class TasksError(Exception):
    """A failure to show: its message is printed, the command exits with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- the reads -----------------------------------------------------------------------------------


class TaskReader(TaskTable):
    """The task table's reads for operators: whole records, no secret check skipped silently."""

    def get(self, handle: TaskHandle) -> TaskRecord | None:
        """The record a handle names, whatever its state; None if absent or the secret does not match."""
        item = self._call("get_item", Key=self._key(handle.action_id, handle.attempt), ConsistentRead=True).get("Item")
        if item is None:
            return None
        record = TaskRecord.from_item(item)
        return record if handle.matches(record.secret) else None

    def scan(self, run: str | None = None) -> Iterator[TaskRecord]:
        """Every record (one paginated Scan), only those of execution run ``run`` when given."""
        kwargs: dict[str, Any] = {}
        if run is not None:
            kwargs = {
                "FilterExpression": "#execution.#run = :run",
                "ExpressionAttributeNames": {"#execution": "execution", "#run": "run"},
                "ExpressionAttributeValues": {":run": {"S": run}},
            }
        while True:
            page = self._call("scan", **kwargs)
            yield from (TaskRecord.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active(self) -> list[TaskRecord]:
        """The records not ended: their keys from the sparse index (one Query per shard), then the
        records themselves (BatchGetItem). One that ended in between is left out."""
        keys: list[dict[str, Any]] = []
        for shard in range(ACTIVE_SHARDS):
            kwargs: dict[str, Any] = {
                "IndexName": ACTIVE_INDEX,
                "KeyConditionExpression": "active_shard = :s",
                "ExpressionAttributeValues": {":s": {"S": f"active#{shard}"}},
            }
            while True:
                page = self._call("query", **kwargs)
                keys += [{"action_id": item["action_id"], "attempt": item["attempt"]} for item in page.get("Items", [])]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [record for record in self._batch_get(keys) if record.state != ENDED]

    def _batch_get(self, keys: list[dict[str, Any]]) -> Iterator[TaskRecord]:
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            request: dict[str, Any] = {self.table_name: {"Keys": keys[start : start + _BATCH_GET_KEYS]}}
            for delay in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, None):
                try:
                    page = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as error:
                    raise TasksError(f"reading the task table failed: {_describe(error)}") from None
                yield from (TaskRecord.from_item(item) for item in page.get("Responses", {}).get(self.table_name, []))
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
                if delay is None:
                    raise TasksError("DynamoDB left some records unread (throttled); try again")
                time.sleep(delay)


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "") or type(error).__name__
    return type(error).__name__


def _loopback(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return None
    return url.strip() if host in ("127.0.0.1", "localhost", "::1") else None


def open_table(table: str | None = None) -> tuple[TaskReader, str]:
    """The task table the environment names, and where it is (for the header line)."""
    # AWS_ENDPOINT_URL sends boto3's DynamoDB calls to the same place: a local run's environment
    # when it is on this machine (a VPC endpoint or a proxy is not make serve's table).
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or _loopback(os.environ.get("AWS_ENDPOINT_URL", ""))
    import boto3

    if endpoint:
        if boto3.Session().get_credentials() is None:  # a local DynamoDB takes any credentials
            for key, value in LOCAL_ENV.items():
                os.environ.setdefault(key, value)
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or boto3.Session().region_name):
            os.environ["AWS_DEFAULT_REGION"] = LOCAL_ENV["AWS_DEFAULT_REGION"]
        name = table or Settings.from_env().tasks_table
        return TaskReader(name, new_client()), f"table {name} at {endpoint}"
    name = table or os.environ.get("TASKS_TABLE", "").strip()
    if not name:
        raise TasksError(
            "which task table? Set AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL)=http://127.0.0.1:8000 for `make serve`'s, "
            "or TASKS_TABLE (the stack's output TasksTableName) and AWS credentials for a deployed one",
            USAGE_ERROR,
        )
    if boto3.Session().get_credentials() is None:
        raise TasksError(
            f"no AWS credentials to read the table {name} with (or set AWS_ENDPOINT_URL_DYNAMODB for a local table)",
            USAGE_ERROR,
        )
    return TaskReader(name, new_client()), f"table {name} in your AWS account"


# --- the command ---------------------------------------------------------------------------------


def list_tasks(
    reader: TaskReader, *, active: bool = False, run: str | None = None, limit: int | None = None
) -> list[TaskRecord]:
    """The records asked for, newest first, at most ``limit`` of them."""
    if active:
        records = [r for r in reader.active() if run is None or r.execution.get("run") == run]
    else:
        records = list(reader.scan(run))
    records.sort(key=lambda r: (r.created_at, r.attempt), reverse=True)
    return records[:limit] if limit is not None else records


def run(args: argparse.Namespace) -> int:
    """`connectors tasks` with the arguments cli.py parsed."""
    try:
        return _run(args)
    except TasksError as error:
        print(f"connectors tasks: {printable(str(error))}", file=sys.stderr)
        return error.code
    except ConnectError as error:  # the store's reads answer Connect errors
        print(f"connectors tasks: {printable(error.message)}", file=sys.stderr)
        return 1


def given_handle(text: str) -> TaskHandle:
    """The handle as ``tasks list --handles`` prints it, or as a JSON answer carries it
    (``resourceMeta``: the same bytes in base64, as proto3 JSON writes bytes; plain or URL-safe)."""
    text = text.strip()
    try:
        return TaskHandle.decode(text.encode("utf-8", "surrogateescape"))
    except ConnectError as error:
        first = error
    except (UnicodeError, ValueError):
        raise TasksError(f"{text!r} is not a task handle", USAGE_ERROR) from None
    try:
        decoded = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        return TaskHandle.decode(decoded)
    except (ValueError, UnicodeError, ConnectError):
        raise TasksError(
            f"{text!r} is not a task handle: {first.message.replace('resource_meta', 'it')}", USAGE_ERROR
        ) from None


def _run(args: argparse.Namespace) -> int:
    if args.tasks_command == "show":
        handle = given_handle(args.handle)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise TasksError("--limit must be at least 1", USAGE_ERROR)
    reader, where = open_table(args.table)
    now = time.time()
    if args.tasks_command == "show":
        record = reader.get(handle)
        if record is None:
            raise TasksError(
                f"no task with this handle in the {where}: it never existed, its record has "
                "expired, or the handle belongs to another table",
                USAGE_ERROR,
            )
        shown = details(record, now)
        print(json.dumps(shown, indent=2) if args.json else format_details(shown))
        return 0
    records = list_tasks(reader, active=args.active, run=args.run, limit=args.limit)
    rows = [summary(record, now, handle=args.handles) for record in records]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(format_table(rows, handles=args.handles))
    else:
        of_run = f" of run {printable(args.run)}" if args.run else ""
        print(f"no {'active ' if args.active else ''}tasks{of_run} in the {printable(where)}")
    return 0
