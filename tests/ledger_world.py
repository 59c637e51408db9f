"""A test world for the task lifecycle: a table, the ledger's remote jobs, the service on them
served on loopback, and a Connect client, with the reads tests check against."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import TaskHandle, TaskRecord
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, make_table, scan_table
from tests.flyte_requests import echo_request
from tests.remote_ledger import Ledger, LedgerConnector

LEDGER = pb.TaskCategory(name="ledger", version=0)


class LedgerWorld:
    def __init__(
        self, dynamodb_client: Any, path: Path, connector: LedgerConnector | None = None, **settings: Any
    ) -> None:
        self.dynamodb_client = dynamodb_client
        self.ledger = Ledger(path)
        self.connector = connector or LedgerConnector(path)
        self.settings = Settings(
            tasks_table=make_table(dynamodb_client), **{"connector_timeout_seconds": 2.0, **settings}
        )
        self.service = make_service(self.settings, dynamodb_client, ConnectorRegistry([self.connector]))
        self.server = ServedApp(create_app(self.service))

    def __enter__(self) -> LedgerWorld:
        self.server.__enter__()
        self.client = AsyncConnectorServiceClientSync(self.server.url)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    def set(self, **settings: Any) -> None:
        """Change settings on the running service (and everything that holds them)."""
        self.settings = replace(self.settings, **settings)
        self.service.settings = self.service.calls.settings = self.service.canceller.settings = self.settings

    def request(
        self, run: str, attempt: int = 0, *, custom: dict[str, Any] | None = None, **kwargs: Any
    ) -> pb.CreateTaskRequest:
        """``custom["attempts"]`` ({attempt: {...}}) scripts one attempt's misbehaviour; send the
        same to every attempt of a run (tests/remote_ledger.py)."""
        if custom and "attempts" in custom:
            custom = {**custom, "attempts": {str(n): script for n, script in custom["attempts"].items()}}
        return echo_request(task_type="ledger", run=run, attempt=attempt, custom=custom, **kwargs)

    def create(self, run: str, attempt: int = 0, **custom: Any) -> bytes:
        return self.client.create_task(self.request(run, attempt, custom=custom)).resource_meta

    def poll(self, handle: bytes) -> pb.Resource:
        return self.client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=LEDGER)).resource

    def records(self, run: str | None = None) -> dict[int, TaskRecord]:
        found = [TaskRecord.from_item(item) for item in scan_table(self.dynamodb_client, self.settings.tasks_table)]
        return {r.attempt: r for r in found if run is None or r.execution.get("run") == run}

    def record(self, handle: bytes) -> TaskRecord:
        return self.service.store.load(TaskHandle.decode(handle))

    def jobs(self) -> dict[str, str]:
        """Each remote job's state in the ledger."""
        return {job_id: job["state"] for job_id, job in self.ledger.jobs().items()}

    def error(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> ConnectError:
        with pytest.raises(ConnectError) as caught:
            call(*args, **kwargs)
        return caught.value

    def reap(self, **kwargs: Any) -> Any:
        return asyncio.run(reap_abandoned(self.service.canceller, **kwargs))
