"""The service core: one method per RPC, called by every transport (Connect, REST, Lambda).

handler -> transport -> ConnectorService.<operation> -> registry -> connector, with the task
store beside it. Methods take and return flyteidl2 messages and raise ConnectError with the
right code; nothing else escapes (an unexpected error is logged with its stack trace and
answered as ``internal`` with the connector's message only).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from contextvars import ContextVar
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.interface_pb2 import VariableMap
from flyteidl2.core.security_pb2 import Connection
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from . import literals
from .cleanup import cancel_earlier_attempts
from .connector import AsyncConnector, Resource
from .errors import ConnectError, Code, deadline_exceeded, failed_precondition, internal, invalid_argument, unimplemented
from .phase import is_terminal_phase, phase_name
from .registry import ConnectorRegistry
from .settings import Settings
from .store import RecordChanged, TaskExecutionKey, TaskHandle, TaskRecord, TaskStore, new_secret

logger = logging.getLogger(__name__)

T = TypeVar("T")

# When the caller's deadline ends (time.monotonic()), if it sent one: Connect's
# connect-timeout-ms or gRPC's grpc-timeout, set per request by the transport.
request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)
# Time kept back from the caller's deadline for the store writes that follow a connector call.
STORE_RESERVE_SECONDS = 1.0


def connection_kwargs(connection: Connection) -> dict[str, str]:
    """``connection.secrets`` and ``configs`` as keyword arguments, as the flyte SDK passes them."""
    return {**dict(connection.secrets), **dict(connection.configs)}


class ConnectorService:
    def __init__(self, registry: ConnectorRegistry, store: TaskStore, settings: Settings | None = None) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings or Settings()

    # -- AsyncConnectorService ---------------------------------------------------------------

    async def create_task(self, request: pb.CreateTaskRequest) -> pb.CreateTaskResponse:
        if not request.HasField("template"):
            raise invalid_argument("CreateTaskRequest.template is required")
        template = request.template
        if not template.type:
            raise invalid_argument("CreateTaskRequest.template.type is required: it names the connector")
        connector = self.registry.get_connector(template.type, template.task_type_version)
        try:
            inputs = literals.inputs_to_native(request.inputs, template.interface)
        except literals.LiteralConversionError as error:
            raise invalid_argument(str(error)) from None

        key = TaskExecutionKey.from_metadata(request.task_execution_metadata)
        record = TaskRecord(
            action_id=(key.action_digest() if key else new_secret()).hex(),
            attempt=key.attempt if key else 0,
            secret=new_secret(),
            task_type=template.type,
            task_version=template.task_type_version,
            output_prefix=request.output_prefix,
            outputs_interface=template.interface.outputs.SerializeToString(),
            execution=_execution_fields(key),
        )
        claim = await self.run_store(self.store.claim, record, self.settings.create_claim_seconds)
        if not claim.claimed:
            return self._answer_duplicate_create(claim.record, record)

        connection = connection_kwargs(request.connection)
        token = {"idempotency_token": key.idempotency_token()} if key is not None else {}
        try:
            meta = await self.call_connector(
                connector,
                "create",
                connector.create(
                    task_template=template,
                    output_prefix=request.output_prefix,
                    inputs=inputs,
                    task_execution_metadata=request.task_execution_metadata,
                    **connection,
                    **token,
                ),
            )
            if not hasattr(meta, "encode"):
                raise internal(f"connector {connector.name} returned {type(meta).__name__} from create, not a ResourceMeta")
            encoded = meta.encode()
            self.store.check_fits(record, encoded)  # before the write: a refused write is no half-record
        except BaseException:
            await self.run_store(self.store.release_claim, record)
            raise
        try:
            created = await self.run_store(self.store.finish_create, record, encoded, TaskExecution.QUEUED)
        except RecordChanged:
            raise ConnectError(Code.ABORTED, "another CreateTask took over this task execution; retry") from None
        logger.info("created %s task %s/%s", template.type, created.action_id, created.attempt)
        if key is not None and key.attempt > 0:
            try:
                report = await cancel_earlier_attempts(self, created, connection)
                if report.cancelled or report.failed:
                    logger.info("earlier attempts of %s: %s", created.action_id, report.as_dict())
            except ConnectError as error:  # the task is created: answer it; the reaper catches what is left
                logger.warning("could not look for earlier attempts of %s: %s", created.action_id, error.message)
        return pb.CreateTaskResponse(resource_meta=created.handle.encode())

    def _answer_duplicate_create(self, existing: TaskRecord, wanted: TaskRecord) -> pb.CreateTaskResponse:
        if existing.category != wanted.category:
            raise failed_precondition(
                f"this task execution was created as task type {existing.task_type} "
                f"(version {existing.task_version}), not {wanted.task_type} (version {wanted.task_version})"
            )
        if existing.state != "created":
            raise ConnectError(Code.UNAVAILABLE, "a CreateTask for this task execution is in progress; retry")
        return pb.CreateTaskResponse(resource_meta=existing.handle.encode())

    async def get_task(self, request: pb.GetTaskRequest) -> pb.GetTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if is_terminal_phase(record.phase) and record.phase != TaskExecution.SUCCEEDED:
            await self.run_store(self.store.record_poll, record, record.phase, record.message)
            return pb.GetTaskResponse(resource=pb.Resource(phase=record.phase, message=record.message))
        meta = self.decode_meta(connector, record)
        resource = await self.call_connector(
            connector, "get", connector.get(resource_meta=meta, **connection_kwargs(request.connection))
        )
        if not isinstance(resource, Resource):
            raise internal(f"connector {connector.name} returned {type(resource).__name__} from get, not a Resource")
        phase, message = int(resource.phase), resource.message or ""
        if is_terminal_phase(record.phase) and phase != record.phase:
            phase, message = record.phase, record.message  # a finished task never changes its phase
        try:
            await self.run_store(self.store.record_poll, record, phase, message)
        except RecordChanged as changed:
            current = changed.current
            if current is not None and is_terminal_phase(current.phase):
                phase, message = current.phase, current.message
        return pb.GetTaskResponse(resource=self._resource_proto(record, resource, phase, message))

    async def delete_task(self, request: pb.DeleteTaskRequest) -> pb.DeleteTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if is_terminal_phase(record.phase):
            return pb.DeleteTaskResponse()  # finished or already cancelled: nothing to stop
        meta = self.decode_meta(connector, record)
        await self.call_connector(
            connector, "delete", connector.delete(resource_meta=meta, **connection_kwargs(request.connection))
        )
        try:
            await self.run_store(self.store.record_poll, record, TaskExecution.ABORTED, "deleted by DeleteTask", "deleted")
        except RecordChanged:
            pass  # it finished or was cancelled meanwhile: the connector call stands either way
        return pb.DeleteTaskResponse()

    async def get_task_metrics(self, request: pb.GetTaskMetricsRequest) -> pb.GetTaskMetricsResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if not _overrides(connector, "get_metrics"):
            raise unimplemented(f"connector {connector.name} does not serve metrics")
        meta = self.decode_meta(connector, record)
        kwargs = {"queries": list(request.queries), "start_time": request.start_time, "end_time": request.end_time,
                  "step": request.step}
        return await self.call_connector(connector, "get_metrics", connector.get_metrics(resource_meta=meta, **kwargs))

    async def get_task_logs(self, request: pb.GetTaskLogsRequest) -> AsyncIterator[pb.GetTaskLogsResponse]:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if not _overrides(connector, "get_logs"):
            raise unimplemented(f"connector {connector.name} does not serve logs")
        meta = self.decode_meta(connector, record)
        result = connector.get_logs(resource_meta=meta, token=request.token, lines=request.lines)
        if inspect.isasyncgen(result):
            try:
                async for message in result:
                    yield message
            except ConnectError:
                raise
            except Exception as error:
                logger.exception("connector %s get_logs failed", connector.name)
                raise internal(f"connector {connector.name} failed to get_logs: {error}") from None
            return
        yield await self.call_connector(connector, "get_logs", result)

    # -- ConnectorMetadataService ------------------------------------------------------------

    async def get_connector(self, request: pb.GetConnectorRequest) -> pb.GetConnectorResponse:
        if not request.name:
            raise invalid_argument("GetConnectorRequest.name is required")
        return pb.GetConnectorResponse(connector=self.registry.get_connector_metadata(request.name))

    async def list_connectors(self, request: pb.ListConnectorsRequest) -> pb.ListConnectorsResponse:
        return pb.ListConnectorsResponse(connectors=self.registry.list_connectors())

    # -- helpers -------------------------------------------------------------------------------

    async def _find(self, resource_meta: bytes, category: pb.TaskCategory) -> tuple[TaskRecord, AsyncConnector[Any]]:
        handle = TaskHandle.decode(resource_meta)
        if not category.name:
            raise invalid_argument("task_category.name is required")
        record = await self.run_store(self.store.load, handle)
        if record.category != (category.name, category.version):
            raise invalid_argument(
                f"task_category {category.name} (version {category.version}) does not match this task's "
                f"{record.task_type} (version {record.task_version})"
            )
        return record, self.registry.get_connector(record.task_type, record.task_version)

    async def run_store(self, method: Callable[..., T], *args: Any) -> T:
        """Run a (blocking) store call off the event loop."""
        return await asyncio.to_thread(method, *args)

    async def call_connector(self, connector: AsyncConnector[Any], operation: str, call: Awaitable[T]) -> T:
        """Await a connector call under the deadline; its failures become clear Connect errors.

        The deadline is CONNECTOR_TIMEOUT_SECONDS, or less when the caller's own deadline ends
        sooner: the answer (deadline_exceeded, and a released claim) then reaches it in time.
        """
        timeout = self.settings.connector_timeout_seconds
        deadline = request_deadline.get()
        if deadline is not None:
            timeout = min(timeout, max(0.05, deadline - time.monotonic() - STORE_RESERVE_SECONDS))
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(call, timeout=timeout)
        except ConnectError:
            raise
        except asyncio.TimeoutError:
            logger.error("connector %s %s took longer than %.1f s", connector.name, operation, timeout)
            raise deadline_exceeded(f"connector {connector.name} did not finish {operation} within {timeout:g} s") from None
        except NotImplementedError:
            raise unimplemented(f"connector {connector.name} does not implement {operation}") from None
        except Exception as error:
            logger.exception("connector %s %s failed", connector.name, operation)
            raise internal(f"connector {connector.name} failed to {operation}: {error}") from None
        finally:
            logger.debug("connector %s %s took %.3f s", connector.name, operation, time.perf_counter() - started)

    def decode_meta(self, connector: AsyncConnector[Any], record: TaskRecord) -> Any:
        """The connector's ResourceMeta from its stored encoding; ``internal`` if it no longer decodes."""
        try:
            return connector.metadata_type.decode(record.resource_meta or b"")
        except Exception as error:
            logger.exception("stored resource meta of %s/%s does not decode", record.action_id, record.attempt)
            raise internal(f"connector {connector.name} cannot read this task's stored metadata: {error}") from None

    def _resource_proto(self, record: TaskRecord, resource: Resource, phase: int, message: str) -> pb.Resource:
        proto = pb.Resource(phase=phase, message=message, log_links=resource.log_links or [])
        if resource.outputs and phase == TaskExecution.SUCCEEDED:
            declared = VariableMap.FromString(record.outputs_interface) if record.outputs_interface else None
            try:
                proto.outputs.CopyFrom(literals.native_to_outputs(resource.outputs, declared))
            except literals.LiteralConversionError as error:
                raise internal(f"connector returned outputs that do not fit the task's interface: {error}") from None
        if resource.custom_info:
            try:
                proto.custom_info.CopyFrom(json_format.Parse(json.dumps(resource.custom_info, default=str), Struct()))
            except (TypeError, ValueError, json_format.ParseError) as error:
                raise internal(f"connector returned custom_info that is not JSON: {error}") from None
        return proto


def _overrides(connector: AsyncConnector[Any], method: str) -> bool:
    return getattr(type(connector), method) is not getattr(AsyncConnector, method)


def _execution_fields(key: TaskExecutionKey | None) -> dict[str, str]:
    if key is None:
        return {}
    return {"org": key.org, "project": key.project, "domain": key.domain, "run": key.run, "action": key.action}


__all__ = ["ConnectorService", "connection_kwargs", "phase_name", "request_deadline"]
