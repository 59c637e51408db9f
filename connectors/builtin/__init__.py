"""The connectors this service ships with, registered in every deployment unless switched off.

``DISABLED_CONNECTORS`` (comma-separated task types; template.yaml sets it from one parameter per
connector) leaves a built-in connector out of the registry: its task type answers not_found.
"""

from __future__ import annotations

import os
from typing import Any

from ..registry import LazyConnector
from .aws import AWS_CONNECTORS, aws_connector_class
from .echo import EchoConnector
from .flyteplugins import FLYTEPLUGIN_CONNECTORS, available_flyteplugin_connectors, flyteplugin_connector_class

DISABLED_CONNECTORS_ENV = "DISABLED_CONNECTORS"


def disabled_task_types(text: str | None = None) -> set[str]:
    text = os.environ.get(DISABLED_CONNECTORS_ENV, "") if text is None else text
    return {part.strip() for part in text.split(",") if part.strip()}


def _checked(disabled: str | None) -> set[str]:
    off = disabled_task_types(disabled)
    known = {EchoConnector.task_type_name, *AWS_CONNECTORS, *FLYTEPLUGIN_CONNECTORS}
    unknown = sorted(off - known)
    if unknown:
        raise ValueError(
            f"{DISABLED_CONNECTORS_ENV} names {', '.join(unknown)}, which are not built-in task types "
            f"(these are: {', '.join(sorted(known))})"
        )
    return off


def builtin_connector_classes(disabled: str | None = None) -> list[type[Any]]:
    """The built-in connector classes, less those ``DISABLED_CONNECTORS`` names; a name that is no
    built-in task type is an error at cold start, not a silently kept connector."""
    off = _checked(disabled)
    classes: list[type[Any]] = [EchoConnector] if EchoConnector.task_type_name not in off else []
    return classes + [aws_connector_class(task_type) for task_type in AWS_CONNECTORS if task_type not in off]


def builtin_connectors(disabled: str | None = None) -> list[Any]:
    """What a deployment registers: the echo connector, each AWS connector not switched off, and
    each port of flyte's own connectors this build holds the dependencies of, the last two as
    :class:`LazyConnector` (imported when a request first needs it)."""
    off = _checked(disabled)
    found: list[Any] = [EchoConnector()] if EchoConnector.task_type_name not in off else []
    for task_type, spec in AWS_CONNECTORS.items():
        if task_type not in off:
            found.append(
                LazyConnector(
                    task_type, 0, spec.name, _loader(aws_connector_class, task_type), spec.replay_settle_seconds
                )
            )
    for task_type in available_flyteplugin_connectors():  # those this build chose
        spec = FLYTEPLUGIN_CONNECTORS[task_type]
        if task_type not in off:
            found.append(
                LazyConnector(
                    task_type, 0, spec.name, _loader(flyteplugin_connector_class, task_type), spec.replay_settle_seconds
                )
            )
    return found


def _loader(load_class: Any, task_type: str) -> Any:
    return lambda: load_class(task_type)()


__all__ = [
    "DISABLED_CONNECTORS_ENV",
    "EchoConnector",
    "builtin_connector_classes",
    "builtin_connectors",
    "disabled_task_types",
]
