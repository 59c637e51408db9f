"""Which built-in connectors there are, the class of each task type, and where its code is."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def aws_task_types() -> list[str]:
    from connectors.builtin.aws import AWS_CONNECTORS

    return list(AWS_CONNECTORS)


def flyteplugin_task_types() -> list[str]:
    from connectors.builtin.flyteplugins import FLYTEPLUGIN_CONNECTORS

    return list(FLYTEPLUGIN_CONNECTORS)


def connector_class(task_type: str) -> type[Any]:
    from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_class
    from connectors.builtin.echo import EchoConnector
    from connectors.builtin.flyteplugins import flyteplugin_connector_class

    if task_type == EchoConnector.task_type_name:
        return EchoConnector
    if task_type in AWS_CONNECTORS:
        return aws_connector_class(task_type)
    return flyteplugin_connector_class(task_type)


def source_path(cls: type[Any]) -> str:
    return str(Path(inspect.getfile(cls)).resolve().relative_to(ROOT))
