"""The ``echo`` connector (task type ``echo``, version 0): a remote job that needs no remote.

For smoke tests and demos. ``template.custom`` may hold ``delay_seconds`` (a number) and
``fail`` (a message). GetTask answers RUNNING until the delay has passed since create, then
SUCCEEDED with outputs equal to the inputs of the same names (the names declared in
``template.interface.outputs``), or FAILED with the ``fail`` message. Delete is always accepted.
It also serves GetTaskMetrics (``elapsed_seconds``) and GetTaskLogs (a few lines of its story),
so that every operation of the service can be tried end to end.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from flyteidl2.connector.connector_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskLogsResponseHeader,
    GetTaskMetricsResponse,
)
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.metrics_pb2 import ExecutionMetricResult
from flyteidl2.logs.dataplane.payload_pb2 import LogLine, LogLineOriginator
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from .. import literals
from ..connector import AsyncConnector, Resource, ResourceMeta
from ..errors import invalid_argument


@dataclass
class EchoMetadata(ResourceMeta):
    created_at: float
    delay_seconds: float = 0.0
    fail: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # literals.to_json_safe form


class EchoConnector(AsyncConnector[EchoMetadata]):
    name = "Echo Connector"
    task_type_name = "echo"
    task_type_version = 0
    metadata_type = EchoMetadata

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        try:
            custom = json_format.MessageToDict(task_template.custom) if task_template.HasField("custom") else {}
        except ValueError as error:  # an infinite or NaN number does not serialize
            raise invalid_argument(f"echo: template.custom is not JSON: {error}") from None
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
        try:  # an input that cannot be its output's declared type would fail every GetTask later
            literals.native_to_outputs({name: inputs[name] for name in names}, task_template.interface.outputs)
        except literals.LiteralConversionError as error:
            raise invalid_argument(f"echo: an input cannot be echoed as its output: {error}") from None
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

    async def get_metrics(self, resource_meta: EchoMetadata, **kwargs) -> GetTaskMetricsResponse:
        data = Struct()
        data.update({"value": round(time.time() - resource_meta.created_at, 3), "unit": "seconds"})
        return GetTaskMetricsResponse(results=[ExecutionMetricResult(metric="elapsed_seconds", data=data)])

    async def get_logs(self, resource_meta: EchoMetadata, **kwargs) -> AsyncIterator[GetTaskLogsResponse]:
        yield GetTaskLogsResponse(header=GetTaskLogsResponseHeader(token=""))
        created = Timestamp()
        created.FromNanoseconds(int(resource_meta.created_at * 1e9))
        story = [
            f"echo: created with a delay of {resource_meta.delay_seconds:g} s",
            f"echo: will echo {sorted(resource_meta.outputs)}",
            f"echo: will fail with {resource_meta.fail!r}" if resource_meta.fail is not None else "echo: will succeed",
        ]
        lines = [LogLine(timestamp=created, message=text, originator=LogLineOriginator.SYSTEM) for text in story]
        yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(lines=lines))
