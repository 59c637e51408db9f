"""The service core: one method per RPC, called by every transport (Connect, REST, Lambda).

handler -> transport -> ConnectorService.<operation> -> registry -> connector, with the task
store beside it. Methods take and return flyteidl2 messages and raise ConnectError with the
right code; nothing else escapes (an unexpected error is logged with its stack trace and
answered as ``internal`` with the connector's message only). Each method reads top to bottom as
its steps: CreateTask's are in :mod:`connectors.create` (admit, claim, create, keep, supersede),
GetTask's poll in :mod:`connectors.polling`. A record's states and the writes between them are in
:mod:`connectors.store.lifecycle`; connector calls run through :mod:`connectors.connector_calls`;
cancelling older attempts through :mod:`connectors.cancel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from . import caller, task_roles
from .answers import stored_resource
from .cancel import Canceller
from .connector import AsyncConnector
from .connector_calls import ConnectorCalls, connection_kwargs, request_deadline
from .create import Creator, answer_existing
from .errors import invalid_argument, unimplemented
from .observability import logs, metrics, observed
from .phase import phase_name
from .polling import Poller, RequestConnection
from .registry import ConnectorRegistry
from .secrets import SecretResolver
from .settings import Settings
from .store import ACTIVE, RecordChanged, TaskHandle, TaskRecord, TaskStore

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ConnectorService:
    def __init__(self, registry: ConnectorRegistry, store: TaskStore, settings: Settings | None = None) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings or Settings()
        self.calls = ConnectorCalls(self.settings)
        self.secrets = SecretResolver()
        self.canceller = Canceller(registry, store, self.calls, self.settings, self.secrets)
        self.poller = Poller(self)
        self.creator = Creator(self)

    # -- AsyncConnectorService ---------------------------------------------------------------

    @observed("create")
    async def create_task(self, request: pb.CreateTaskRequest) -> pb.CreateTaskResponse:
        """Start the task's job once per attempt, however often the request comes: the steps are
        :class:`connectors.create.Creator`'s, each of which may refuse the request."""
        task = await self.creator.admit(request)  # nothing read or written yet
        claim = await self.creator.claim(task)
        if not claim.claimed:  # this attempt was claimed before: answer what its record says
            return answer_existing(claim.record, task.record)
        older = await self.creator.older_attempts(task, claim)
        meta = await self.creator.create(task, claim)
        created = await self.creator.keep(task, meta)
        logger.info("created %s task %s", task.task_type, created.name)
        metrics.task_created(task.task_type)
        await self.creator.supersede(task, created, older)
        return pb.CreateTaskResponse(resource_meta=created.handle.encode())

    @observed("get")
    async def get_task(self, request: pb.GetTaskRequest) -> pb.GetTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        # Completed from AWS by the poller, only for a connector call and once in this request: a
        # transient failure of Secrets Manager is then ridden out as one of the remote's (polling.py).
        connection = RequestConnection(connection_kwargs(request.connection))
        fresh: pb.Resource | None = None
        if record.state == ACTIVE:
            record, fresh, answer = await self.poller.poll(connector, record, connection)
            if answer is not None:
                return answer
        if record.phase == TaskExecution.SUCCEEDED and (fresh is None or fresh.phase != TaskExecution.SUCCEEDED):
            fresh = await self.poller.read_outputs(connector, record, connection)
        return pb.GetTaskResponse(resource=stored_resource(record, fresh))

    @observed("delete")
    async def delete_task(self, request: pb.DeleteTaskRequest) -> pb.DeleteTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if record.state != ACTIVE:
            return pb.DeleteTaskResponse()  # ended, or a canceller is already stopping it
        connection = await self.secrets.complete(connector, record.task_type, connection_kwargs(request.connection))
        meta = self.calls.decode_meta(connector, record)
        try:  # marked first: a poll that then sees the job cancelled knows who stopped it
            record = await self.run_store(self.store.mark_deleting, record)
        except RecordChanged as changed:
            if changed.current is None or changed.current.state != ACTIVE:
                return pb.DeleteTaskResponse()  # it ended, or a canceller is stopping it
            record = changed.current
        await self.secrets.call(
            self.calls,
            connector,
            record.task_type,
            "delete",
            connection,
            lambda kwargs: connector.delete(resource_meta=meta, **kwargs),
        )
        with contextlib.suppress(RecordChanged):  # it ended or a canceller took it: the job is stopped either way
            await self.run_store(self.store.delete_task, record, TaskExecution.ABORTED, "deleted by DeleteTask")
        return pb.DeleteTaskResponse()

    @observed("get_metrics")
    async def get_task_metrics(self, request: pb.GetTaskMetricsRequest) -> pb.GetTaskMetricsResponse:
        connector, meta, secrets = await self._served(request, "get_metrics", "metrics")
        kwargs = {
            **secrets,
            "queries": list(request.queries),
            "start_time": request.start_time,
            "end_time": request.end_time,
            "step": request.step,
        }
        return await self.calls.call(connector, "get_metrics", connector.get_metrics(resource_meta=meta, **kwargs))

    @observed("get_logs")
    async def get_task_logs(self, request: pb.GetTaskLogsRequest) -> AsyncIterator[pb.GetTaskLogsResponse]:
        connector, meta, secrets = await self._served(request, "get_logs", "logs")
        try:
            result = connector.get_logs(resource_meta=meta, token=request.token, lines=request.lines, **secrets)
        except NotImplementedError:
            raise unimplemented(f"connector {connector.name} does not implement get_logs") from None
        except Exception as error:  # raised before any await: the same redacting report as a call's failure
            raise self.calls.failure(connector, "get_logs", error) from None
        async for message in self.calls.stream(connector, "get_logs", result):
            yield message

    # -- ConnectorMetadataService ------------------------------------------------------------

    @observed("get_connector")
    async def get_connector(self, request: pb.GetConnectorRequest) -> pb.GetConnectorResponse:
        if not request.name:
            raise invalid_argument("GetConnectorRequest.name is required")
        return pb.GetConnectorResponse(connector=self.registry.get_connector_metadata(request.name))

    @observed("list_connectors")
    async def list_connectors(self, request: pb.ListConnectorsRequest) -> pb.ListConnectorsResponse:
        return pb.ListConnectorsResponse(connectors=self.registry.list_connectors())

    # -- helpers -------------------------------------------------------------------------------

    async def _served(
        self, request: pb.GetTaskMetricsRequest | pb.GetTaskLogsRequest, method: str, what: str
    ) -> tuple[AsyncConnector[Any], Any, dict[str, Any]]:
        """For a call the connector may not serve (its ``method``, giving ``what``): the task's
        connector, its job's metadata and the secrets the call needs; unimplemented if the
        connector does not override ``method``."""
        record, connector = await self._find(request.resource_meta, request.task_category)
        if not _overrides(connector, method):
            raise unimplemented(f"connector {connector.name} does not serve {what}")
        meta = self.calls.decode_meta(connector, record)
        secrets = await self.secrets.complete(connector, record.task_type, {})
        self.secrets.require(connector, record.task_type, secrets)
        return connector, meta, secrets

    async def _find(self, resource_meta: bytes, category: pb.TaskCategory) -> tuple[TaskRecord, AsyncConnector[Any]]:
        handle = TaskHandle.decode(resource_meta)
        if not category.name:
            raise invalid_argument("task_category.name is required")
        record = await self.run_store(self.store.load, handle)
        caller.check_principal(record, caller.principal())
        if record.category != (category.name, category.version):
            raise invalid_argument(
                f"task_category {category.name} (version {category.version}) does not match this task's "
                f"{record.task_type} (version {record.task_version})"
            )
        connector = self.registry.get_connector(record.task_type, record.task_version)
        logs.task_keys(record.task_type, record.execution, record.attempt)
        task_roles.enter_record(self.settings.task_role_arn_pattern, record.execution, record.attempt)
        return record, connector

    async def run_store(self, method: Callable[..., T], *args: Any) -> T:
        """Run a (blocking) store call off the event loop."""
        return await asyncio.to_thread(method, *args)


def _overrides(connector: AsyncConnector[Any], method: str) -> bool:
    return getattr(type(connector), method) is not getattr(AsyncConnector, method)


__all__ = ["ConnectorService", "connection_kwargs", "phase_name", "request_deadline"]
