"""The ``echo`` connector (task type ``echo``, version 0): a remote job that needs no remote.

For smoke tests and demos. ``template.custom`` may hold ``delay_seconds`` (a number) and
``fail`` (a message). GetTask answers RUNNING until the delay has passed since create, then
SUCCEEDED with outputs equal to the inputs of the same names (the names declared in
``template.interface.outputs``), or FAILED with the ``fail`` message. Delete is always accepted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from .. import literals
from ..connector import AsyncConnector, Resource, ResourceMeta
from ..errors import invalid_argument


@dataclass
class EchoMetadata(ResourceMeta):
    created_at: float
    delay_seconds: float = 0.0
    fail: Optional[str] = None
    outputs: dict[str, Any] = field(default_factory=dict)  # literals.to_json_safe form


class EchoConnector(AsyncConnector[EchoMetadata]):
    name = "Echo Connector"
    task_type_name = "echo"
    task_type_version = 0
    metadata_type = EchoMetadata

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = json_format.MessageToDict(task_template.custom) if task_template.HasField("custom") else {}
        delay = custom.get("delay_seconds", 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise invalid_argument(f"echo: template.custom.delay_seconds must be a number >= 0, got {delay!r}")
        fail = custom.get("fail")
        if fail is not None and not isinstance(fail, str):
            raise invalid_argument(f"echo: template.custom.fail must be a message (a string), got {fail!r}")
        inputs = inputs or {}
        names = [entry.key for entry in task_template.interface.outputs.variables]
        missing = [name for name in names if name not in inputs]
        if missing:
            raise invalid_argument(f"echo: outputs {missing} have no input of the same name to echo")
        outputs = {name: literals.to_json_safe(inputs[name]) for name in names}
        return EchoMetadata(created_at=time.time(), delay_seconds=float(delay), fail=fail, outputs=outputs)

    async def get(self, resource_meta: EchoMetadata, **kwargs) -> Resource:
        if time.time() - resource_meta.created_at < resource_meta.delay_seconds:
            return Resource(phase=TaskExecution.RUNNING, message="echo: waiting for the delay to pass")
        if resource_meta.fail is not None:
            return Resource(phase=TaskExecution.FAILED, message=resource_meta.fail)
        outputs = {name: literals.from_json_safe(value) for name, value in resource_meta.outputs.items()}
        return Resource(phase=TaskExecution.SUCCEEDED, message="echo: done", outputs=outputs)

    async def delete(self, resource_meta: EchoMetadata, **kwargs) -> None:
        return None
