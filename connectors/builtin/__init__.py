"""The connectors this service ships with, registered in every deployment unless switched off.

``DISABLED_CONNECTORS`` (comma-separated task types; template.yaml sets it from one parameter per
connector) leaves a built-in connector out of the registry: its task type answers not_found.
"""

from __future__ import annotations

import os
from typing import Any

from .aws import AWS_CONNECTORS, aws_connector_class
from .echo import EchoConnector

DISABLED_CONNECTORS_ENV = "DISABLED_CONNECTORS"


def disabled_task_types(text: str | None = None) -> set[str]:
    text = os.environ.get(DISABLED_CONNECTORS_ENV, "") if text is None else text
    return {part.strip() for part in text.split(",") if part.strip()}


def builtin_connector_classes(disabled: str | None = None) -> list[type[Any]]:
    """The built-in connector classes, less those ``DISABLED_CONNECTORS`` names; a name that is no
    built-in task type is an error at cold start, not a silently kept connector."""
    off = disabled_task_types(disabled)
    known = {EchoConnector.task_type_name, *AWS_CONNECTORS}
    unknown = sorted(off - known)
    if unknown:
        raise ValueError(f"{DISABLED_CONNECTORS_ENV} names {', '.join(unknown)}, which are not built-in task types "
                         f"(these are: {', '.join(sorted(known))})")
    classes: list[type[Any]] = [EchoConnector] if EchoConnector.task_type_name not in off else []
    return classes + [aws_connector_class(task_type) for task_type in AWS_CONNECTORS if task_type not in off]


__all__ = ["DISABLED_CONNECTORS_ENV", "EchoConnector", "builtin_connector_classes", "disabled_task_types"]
