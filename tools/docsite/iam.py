"""A connector page's IAM table: the class's ``iam_actions``, per operation, beside what the page says
template.yaml grants for it."""

from __future__ import annotations

from tools.docsite.connector_classes import connector_class
from tools.docsite.errors import DocsError
from tools.docsite.markdown_tables import markdown_table, page_rows

# The RPC each iam_actions operation serves, as the executor (or the reaper) calls it.
OPERATIONS = {
    "create": "CreateTask",
    "get": "GetTask",
    "delete": "DeleteTask",
    "logs": "GetTaskLogs",
    "metrics": "GetTaskMetrics",
}


def iam_actions(task_type: str) -> dict[str, tuple[str, ...]]:
    return dict(getattr(connector_class(task_type), "iam_actions", {}) or {})


def iam_table(task_type: str, page: list[str] | None = None) -> str:
    """The class's ``iam_actions``, one row per operation, with what else the page says is granted
    for it (``| operation | actions ... |``); the page's row must name every action the code
    declares, and an operation the code does not declare fails the build."""
    cls = connector_class(task_type)
    actions = iam_actions(task_type)
    if not actions:
        raise DocsError(f"{task_type}: {cls.__name__} declares no iam_actions")
    notes: dict[str, str] = {}
    for cells in page_rows(page or [], "iam"):
        operation = cells[0].strip("` ")
        if operation not in actions:
            raise DocsError(
                f"{task_type}: the page's IAM row {operation!r} is no operation of {cls.__name__}.iam_actions"
            )
        missing = [action for action in actions[operation] if action not in cells[1]]
        if missing:
            raise DocsError(f"{task_type}: the page's IAM row {operation!r} leaves out {', '.join(missing)}")
        notes[operation] = cells[1]
    rows = [
        (
            f"{operation} ({OPERATIONS.get(operation, operation)})",
            ", ".join(f"`{action}`" for action in granted),
            notes.get(operation, ""),
        )
        for operation, granted in actions.items()
    ]
    return markdown_table(
        ("operation", "IAM actions (from the code)", "as template.yaml grants them"),
        rows,
        caption=f"The actions: `{cls.__name__}.iam_actions`, which template.yaml's policies hold exactly "
        f"(tests/unit/test_template_aws_connectors.py); the rest: this page.",
    )
