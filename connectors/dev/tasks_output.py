"""What `connectors tasks list|show` shows of a task record: a summary per record (`list`), the
details of one (`show`), as JSON-ready dicts or as text for a terminal.

Never printed: the handle's secret part (unless ``--handles``: a handle lets its holder call
GetTask and DeleteTask, which an operator who can read the table can do anyway), the lease
owner (a secret too), the create request (the task's inputs), the connector's resource
metadata and the outputs interface. Every stored string printed as text goes through
:func:`printable` (a task's caller chose most of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..phase import phase_name
from ..store import TaskRecord
from ..store.log_links import decode_links


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
    (``<task type>#<job>``, what its state-change events name it by), the log links the last
    status read reported (what GetTask answers them with) and the handle."""
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
        log_links=[{"name": link.name, "uri": link.uri} for link in decode_links(record.log_links)],
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
    lines.append((f"{'log links:':<{width}}" + ("" if shown["log_links"] else "-")).rstrip())
    lines += [f"  - {printable(link['name'])}: {printable(link['uri'])}" for link in shown["log_links"]]
    lines.append((f"{'notes:':<{width}}" + ("" if shown["notes"] else "-")).rstrip())
    lines += [f"  - {printable(note)}" for note in shown["notes"]]
    return "\n".join(lines)
