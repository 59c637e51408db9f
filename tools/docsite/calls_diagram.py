"""A connector page's Mermaid sequence diagram of the AWS calls behind each RPC."""

from __future__ import annotations

from tools.docsite.connector_classes import connector_class
from tools.docsite.iam import iam_actions


def calls_diagram(task_type: str) -> str:
    """A sequence diagram: each RPC the executor sends, the record it reads or writes, and the AWS
    actions the connector calls for it (iam_actions)."""
    cls = connector_class(task_type)
    actions = iam_actions(task_type)
    service = getattr(cls, "service", "AWS")
    lines = [
        "sequenceDiagram",
        "    autonumber",
        "    participant E as Flyte executor (via the relay)",
        "    participant S as connector service",
        "    participant T as DynamoDB tasks table",
        f"    participant A as {service}",
    ]
    steps = {
        "create": ("CreateTask", ["claim the attempt (conditional put)"], "keep the job's id (conditional update)"),
        "get": ("GetTask", ["read the record"], "store a new phase (only when it moved)"),
        "delete": (
            "DeleteTask",
            ["read the record", "mark it: delete requested (conditional update)"],
            "record ABORTED",
        ),
        "logs": ("GetTaskLogs", ["read the record"], ""),
        "metrics": ("GetTaskMetrics", ["read the record"], ""),
    }
    for operation, granted in actions.items():
        rpc, before, after = steps.get(operation, (operation, ["read the record"], ""))
        lines.append(f"    E->>S: {rpc}")
        lines.extend(f"    S->>T: {step}" for step in before)
        if operation == "get":  # connectors/polling.py: a read is taken only when the stored status may be old
            told = "an event told the status" if getattr(cls, "job_events", None) is not None else ""
            lines.append(f"    alt {told + ', or ' if told else ''}the job was read less than the read interval ago")
            lines.append("        S-->>E: the stored phase and log links")
            lines.append("    else")
            lines.append("        S->>T: take the turn to read (conditional update)")
            lines.append(f"        S->>A: {', '.join(granted)}")
            lines.append(f"        S->>T: {after}")
            lines.append(f"        S-->>E: {_answer(rpc)}")
            lines.append("    end")
            continue
        lines.append(f"    S->>A: {', '.join(granted)}")
        if after:
            lines.append(f"    S->>T: {after}")
        lines.append(f"    S-->>E: {_answer(rpc)}")
    return "```mermaid\n" + "\n".join(lines) + "\n```\n"


def _answer(rpc: str) -> str:
    return {
        "CreateTask": "the handle (resource_meta)",
        "GetTask": "phase, outputs, log links",
        "DeleteTask": "done",
        "GetTaskLogs": "log lines (a stream)",
    }.get(rpc, "answer")
