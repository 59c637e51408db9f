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


class LedgerConnector(AsyncConnector[JobMeta]):
    """A remote API that honours idempotency tokens, like Athena's ClientRequestToken.

    The "remote" is a JSON file (``LEDGER_PATH``): create starts a job unless one exists for
    the token, and answers that job. With ``LEDGER_DIE_AFTER_START=1`` the process dies right
    after the remote job started, before the service could finish its record: a Lambda timeout.
    """

    name = "Ledger Connector"
    task_type_name = "ledger"
    metadata_type = JobMeta

    def __init__(self, path: str | None = None) -> None:
        import os

        self.path = path or os.environ["LEDGER_PATH"]

    def jobs(self) -> dict[str, str]:
        import json
        import os

        if not os.path.exists(self.path):
            return {}
        with open(self.path) as f:
            return json.load(f)

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        import json
        import os

        token = kwargs["idempotency_token"]
        jobs = self.jobs()
        if token not in jobs:
            jobs[token] = f"job-{len(jobs) + 1}"
            # Blocking on purpose: no other create may run between reading the ledger and writing it.
            with open(self.path, "w") as f:  # noqa: ASYNC230
                json.dump(jobs, f)
        if os.environ.get("LEDGER_DIE_AFTER_START") == "1":
            os._exit(17)
        return JobMeta(job_id=jobs[token])

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=TaskExecution.RUNNING)

    async def delete(self, resource_meta, **kwargs):
        return None


@dataclass
class BulkyMeta(ResourceMeta):
    answer_bytes: int


class BulkyConnector(AsyncConnector[BulkyMeta]):
    """Answers metrics and logs of about ``template.custom.answer_bytes`` bytes: as large as asked."""

    name = "Bulky Connector"
    task_type_name = "bulky"
    metadata_type = BulkyMeta
    LOG_LINE_CHARS = 1000
    LINES_PER_MESSAGE = 1000

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        return BulkyMeta(answer_bytes=int(task_template.custom["answer_bytes"]))

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=TaskExecution.RUNNING)

    async def delete(self, resource_meta, **kwargs):
        return None

    async def get_metrics(self, resource_meta: BulkyMeta, **kwargs):
        from flyteidl2.connector.connector_pb2 import GetTaskMetricsResponse
        from flyteidl2.core.metrics_pb2 import ExecutionMetricResult
        from google.protobuf.struct_pb2 import Struct

        data = Struct()
        data.update({"samples": "7" * resource_meta.answer_bytes})
        return GetTaskMetricsResponse(results=[ExecutionMetricResult(metric="bulk", data=data)])

    async def get_logs(self, resource_meta: BulkyMeta, **kwargs):
        from flyteidl2.connector.connector_pb2 import (
            GetTaskLogsResponse,
            GetTaskLogsResponseBody,
            GetTaskLogsResponseHeader,
        )
        from flyteidl2.logs.dataplane.payload_pb2 import LogLine

        yield GetTaskLogsResponse(header=GetTaskLogsResponseHeader(token=""))
        remaining = resource_meta.answer_bytes
        while remaining > 0:
            count = min(self.LINES_PER_MESSAGE, -(-remaining // self.LOG_LINE_CHARS))
            lines = [LogLine(message="l" * self.LOG_LINE_CHARS) for _ in range(count)]
            yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(lines=lines))
            remaining -= count * self.LOG_LINE_CHARS
