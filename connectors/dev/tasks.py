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

Never printed: the handle's secret part (unless ``--handles``: a handle lets its holder call
GetTask and DeleteTask, which an operator who can read the table can do anyway), the lease
owner (a secret too), the create request (the task's inputs), the connector's resource
metadata and the outputs interface.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ConnectError
from ..phase import phase_name
from ..settings import Settings
from ..store import ACTIVE_INDEX, ENDED, TaskHandle, TaskRecord, TaskTable, new_client
from ..store.record import ACTIVE_SHARDS
from .local_dynamodb import LOCAL_ENV

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


# --- what is shown -------------------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def summary(record: TaskRecord, now: float, *, handle: bool = False) -> dict[str, Any]:
    """What `list` shows of a record (JSON-ready)."""
    execution = record.execution
    shown: dict[str, Any] = {
        "org": execution.get("org", ""),
        "project": execution.get("project", ""),
        "domain": execution.get("domain", ""),
        "run": execution.get("run", ""),
        "action": execution.get("action", ""),
        "attempt": record.attempt,
        "task_type": record.task_type,
        "task_version": record.task_version,
        "phase": phase_name(record.phase),
        "state": record.state,
        "message": record.message,
        "heartbeat_at": _iso(record.heartbeat_at),
        "heartbeat_age_seconds": round(now - record.heartbeat_at, 1) if record.heartbeat_at else None,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }
    if handle:
        shown["handle"] = record.handle.encode().decode()
    return shown


def details(record: TaskRecord, now: float) -> dict[str, Any]:
    """What `show` prints: the summary, notes, lease, supersession, create error, the job's key
    (``<task type>#<job>``, what its state-change events name it by) and the handle."""
    shown = summary(record, now, handle=True)
    lease = None
    if record.lease_expires_at is not None:  # the owner is a secret (the create claim's is the handle's)
        lease = {
            "holder": "create" if record.state == "claimed" else "canceller",
            "expires_at": _iso(record.lease_expires_at),
            "expired": record.lease_expired(now),
        }
    shown.update(
        notes=list(record.notes),
        lease=lease,
        superseded_by=record.superseded_by,
        create_error=record.create_error,
        job_key=record.job_key,  # what its job's state-change events name it by, while it runs
        output_prefix=record.output_prefix,
        expires_at=_iso(record.expires_at),
        version=record.version,
    )
    return shown


def _last_poll(shown: dict[str, Any]) -> str:
    if shown["heartbeat_at"] is None:
        return "-"
    return f"{shown['heartbeat_at']} ({_age(shown['heartbeat_age_seconds'])} ago)"


_SHOWN_ESCAPED = re.compile(r"[^ -~]|\\")  # what is not printable ASCII, and the backslash: looked at one by one


def printable(text: str) -> str:
    """``text`` as a terminal may show it: every character that is not shown as itself is written
    as a Python escape instead. That is every C0 and C1 control character (ESC starts the sequences
    that write the clipboard (OSC 52), clear the screen, hide text or retitle the window; a newline
    or carriage return would forge lines), DEL, bidi embeddings, overrides and isolates, zero-width
    and other format characters, line and paragraph separators, non-ASCII spaces, surrogates,
    private-use and unassigned code points: whatever ``str.isprintable`` refuses, as ``repr`` writes
    it (``\\x1b``, ``\\u202e``). The backslash itself is doubled, so an escape shown is always this
    function's, never one the text spelled out. Every stored string `tasks` prints goes through it
    (a run name, an action name, a task type, a message: a task's caller chose them)."""
    return _SHOWN_ESCAPED.sub(lambda found: _escaped(found.group()), text)


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():  # a letter of another script, a symbol
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _clip(text: str, width: int) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Iterable[dict[str, Any]], *, handles: bool = False) -> str:
    columns = ["RUN", "ACTION", "ATTEMPT", "TASK TYPE", "PHASE", "STATE", "LAST POLL", "CREATED", "MESSAGE"]
    if handles:
        columns.append("HANDLE")
    lines = [columns]
    for row in rows:
        cells = [
            row["run"] or "-",
            row["action"] or "-",
            str(row["attempt"]),
            f"{row['task_type']}/{row['task_version']}",
            row["phase"],
            row["state"],
            _last_poll(row),
            row["created_at"] or "-",
        ]
        line = [printable(cell) for cell in cells] + [_clip(row["message"], 60) or "-"]  # _clip escapes too
        if handles:
            line.append(printable(row["handle"]))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def format_details(shown: dict[str, Any]) -> str:
    lease = shown["lease"]
    lease_text = (
        "-"
        if lease is None
        else (f"held by a {lease['holder']} until {lease['expires_at']}" + (" (expired)" if lease["expired"] else ""))
    )
    scope = "/".join(part for part in (shown["org"], shown["project"], shown["domain"]) if part) or "-"
    fields = [
        ("run", shown["run"] or "-"),
        ("action", shown["action"] or "-"),
        ("attempt", shown["attempt"]),
        ("project", scope),
        ("task type", f"{shown['task_type']} (version {shown['task_version']})"),
        ("phase", shown["phase"]),
        ("state", shown["state"]),
        ("message", shown["message"] or "-"),
        ("last poll", _last_poll(shown)),
        ("created", shown["created_at"] or "-"),
        ("updated", shown["updated_at"] or "-"),
        ("lease", lease_text),
        ("superseded by", "-" if shown["superseded_by"] is None else f"attempt {shown['superseded_by']}"),
        ("create error", shown["create_error"] or "-"),
        ("job", shown["job_key"] or "-"),
        ("output prefix", shown["output_prefix"] or "-"),
        ("record expires", shown["expires_at"] or "-"),
        ("handle", shown["handle"]),
    ]
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{printable(str(value))}" for name, value in fields]
    lines.append((f"{'notes:':<{width}}" + ("" if shown["notes"] else "-")).rstrip())
    lines += [f"  - {printable(note)}" for note in shown["notes"]]
    return "\n".join(lines)


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
