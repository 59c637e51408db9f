"""Connectors that tests register next to the built-ins: they count, fail, stall and remember."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import AsyncConnector, Resource, ResourceMeta


@dataclass
class JobMeta(ResourceMeta):
    job_id: str


class CountingConnector(AsyncConnector[JobMeta]):
    """Counts create/get/delete calls and remembers the keyword arguments each received."""

    name = "Counting Connector"
    task_type_name = "counting"
    metadata_type = JobMeta

    def __init__(self, create_seconds: float = 0.0) -> None:
        self.create_seconds = create_seconds
        self.calls: dict[str, int] = {"create": 0, "get": 0, "delete": 0}
        self.kwargs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _count(self, operation: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls[operation] += 1
            self.kwargs.append({"operation": operation, **kwargs})

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        self._count("create", kwargs)
        await asyncio.sleep(self.create_seconds)
        return JobMeta(job_id=f"job-{kwargs.get('idempotency_token', 'none')}")

    async def get(self, resource_meta: JobMeta, **kwargs) -> Resource:
        self._count("get", kwargs)
        return Resource(phase=TaskExecution.RUNNING, message=f"{resource_meta.job_id} running")

    async def delete(self, resource_meta: JobMeta, **kwargs) -> None:
        self._count("delete", kwargs)


class FailingConnector(AsyncConnector[JobMeta]):
    """Raises from every call, with a message the caller should see."""

    name = "Failing Connector"
    task_type_name = "failing"
    metadata_type = JobMeta

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        raise RuntimeError("the remote API refused the job: quota exceeded")

    async def get(self, resource_meta, **kwargs):
        raise RuntimeError("the remote API is down")

    async def delete(self, resource_meta, **kwargs):
        raise RuntimeError("the remote API is down")


class StallingConnector(AsyncConnector[JobMeta]):
    """Never answers create within any sensible deadline."""

    name = "Stalling Connector"
    task_type_name = "stalling"
    metadata_type = JobMeta

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=TaskExecution.RUNNING)

    async def delete(self, resource_meta, **kwargs):
        return None
