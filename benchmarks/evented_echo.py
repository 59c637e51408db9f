"""The echo connector with state-change events, for benchmarks/cost.py (task type ``evented_echo``).

The built-in echo connector declares no ``job_events``, so the service polls its tasks as it
polls every task with StatusEvents Disabled. This one is echo with events declared as the AWS
connectors declare them (connectors/job_events.py): its create names a job key, indexed with the
task's record, and an event's detail tells its phase and message as ``get`` reports them. So the
Lambda handlers serve its tasks as a StatusEvents deployment serves an AWS job's: the
StatusEventsFunction applies its events, and a poll answers the record while its status is fresh.

Loaded through CONNECTOR_MODULES (``evented_echo``, with benchmarks/ on ``sys.path``); counts its
status reads (``get``) in ``EventedEchoConnector.reads``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from connectors.builtin.echo import EchoConnector, EchoMetadata
from connectors.connector import Resource
from connectors.job_events import JobEvents, detail_field
from connectors.registry import ConnectorRegistry

SOURCE = "benchmark.echo"
DETAIL_TYPE = "Echo Job State Change"


@dataclass
class EventedEchoMetadata(EchoMetadata):
    job_id: str = ""


class EventedEchoConnector(EchoConnector):
    name = "Evented Echo Connector"
    task_type_name = "evented_echo"
    metadata_type = EventedEchoMetadata  # type: ignore[assignment]
    job_events = JobEvents(SOURCE, DETAIL_TYPE, detail_field("jobId"))
    reads = 0  # the status reads (get) of every task, for the benchmark

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        meta = await super().create(task_template, output_prefix, inputs, task_execution_metadata, **kwargs)
        return EventedEchoMetadata(**asdict(meta), job_id=uuid.uuid4().hex)

    async def get(self, resource_meta: EchoMetadata, **kwargs) -> Resource:
        type(self).reads += 1
        return await super().get(resource_meta, **kwargs)

    def job_key(self, resource_meta: EventedEchoMetadata) -> str:  # type: ignore[override]
        return resource_meta.job_id

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: Any) -> Resource | None:
        return Resource(phase=int(detail["phase"]), message=str(detail.get("message", "")))


ConnectorRegistry.default().register(EventedEchoConnector())
