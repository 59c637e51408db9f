"""A connector page's facts: task type and version, class, module, name, secrets, replay window and
settle time, from the connector class."""

from __future__ import annotations

from datetime import timedelta

from tools.docsite.connector_classes import connector_class, source_path
from tools.docsite.markdown_tables import markdown_table


def _duration(window: timedelta | None) -> str:
    if window is None:
        return "none declared: the deployment's `ReplayWindowMinutes` bounds a replay"
    if window == timedelta.max:
        return "no limit"
    days, seconds = window.days, window.seconds
    if days and not seconds:
        return f"{days} day{'s' if days != 1 else ''}"
    return str(window)


def facts_table(task_type: str) -> str:
    cls = connector_class(task_type)
    rows = [
        ("task type", f"`{cls.task_type_name}` (version {cls.task_type_version})"),
        ("class", f"`{cls.__name__}` in `{source_path(cls)}`"),
        ("name (ListConnectors)", cls.name),
    ]
    if getattr(cls, "service", None):
        rows.append(("AWS service (boto3 client)", f"`{cls.service}`"))
    secrets = getattr(cls, "secret_names", ())
    rows.append(
        (
            "secrets it takes",
            ", ".join(f"`{name}`" for name in secrets)
            + " (Secrets Manager or SSM, [connector-secrets](../connector-secrets.md))"
            if secrets
            else "none",
        )
    )
    rows.append(
        ("replay window of the idempotency key (`replay_window`)", _duration(getattr(cls, "replay_window", None)))
    )
    settle = float(getattr(cls, "replay_settle_seconds", 0.0) or 0.0)
    rows.append(
        ("a retried create waits for its look-up (`replay_settle_seconds`)", f"{settle:g} s" if settle else "no")
    )
    return markdown_table(("the connector", ""), rows, caption=f"From `{cls.__name__}` ({source_path(cls)}).")
