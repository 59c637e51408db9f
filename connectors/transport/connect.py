"""The Connect transport: flyteidl2's generated ASGI applications, backed by ConnectorService.

The generated code decodes requests and speaks the Connect protocol (binary proto and JSON,
unary and server streams, and gRPC where the server offers HTTP/2 trailers); this module adapts
it to the service core. ``connect_hardening`` closes connectrpc 0.10's gaps in bad-input
handling, and an unexpected exception here is ``internal`` with its stack trace only in the logs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

from connectrpc.request import RequestContext
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import (
    AsyncConnectorServiceASGIApplication,
    ConnectorMetadataServiceASGIApplication,
)

from ..connector_calls import set_request_deadline
from ..errors import ConnectError, internal
from ..service import ConnectorService
from .connect_hardening import BoundedGzip, StreamEnvelopeCheck, strict_codecs

logger = logging.getLogger(__name__)

ASYNC_SERVICE = "flyteidl2.connector.AsyncConnectorService"
METADATA_SERVICE = "flyteidl2.connector.ConnectorMetadataService"


@contextlib.contextmanager
def _unexpected_errors_are_internal(operation: str) -> Iterator[None]:
    try:
        yield
    except ConnectError:
        raise
    except Exception:
        logger.exception("%s failed", operation)
        raise internal(f"{operation} failed unexpectedly; the service logs have the details") from None


def _set_request_deadline(ctx: RequestContext) -> None:
    """Each request runs in its own task, so the context variable is this request's alone."""
    remaining_ms = ctx.timeout_ms()
    set_request_deadline(None if remaining_ms is None else remaining_ms / 1000)


def _unary(call: Callable[[Any], Awaitable[Any]]) -> Callable[[Any, RequestContext], Awaitable[Any]]:
    @functools.wraps(call)
    async def endpoint(request: Any, ctx: RequestContext) -> Any:
        _set_request_deadline(ctx)
        with _unexpected_errors_are_internal(call.__name__):
            return await call(request)

    return endpoint


def _stream(call: Callable[[Any], AsyncIterator[Any]]) -> Callable[[Any, RequestContext], AsyncIterator[Any]]:
    @functools.wraps(call)
    async def endpoint(request: Any, ctx: RequestContext) -> AsyncIterator[Any]:
        _set_request_deadline(ctx)
        with _unexpected_errors_are_internal(call.__name__):
            async for message in call(request):
                yield message

    return endpoint


class AsyncConnectorServiceAdapter:
    """Implements the generated ``AsyncConnectorService`` protocol with ConnectorService."""

    def __init__(self, service: ConnectorService) -> None:
        self.create_task = _unary(service.create_task)
        self.get_task = _unary(service.get_task)
        self.delete_task = _unary(service.delete_task)
        self.get_task_metrics = _unary(service.get_task_metrics)
        self.get_task_logs = _stream(service.get_task_logs)


class ConnectorMetadataServiceAdapter:
    """Implements the generated ``ConnectorMetadataService`` protocol with ConnectorService."""

    def __init__(self, service: ConnectorService) -> None:
        self.get_connector = _unary(service.get_connector)
        self.list_connectors = _unary(service.list_connectors)


def connect_applications(service: ConnectorService, max_request_bytes: int) -> list[Any]:
    """The two generated ASGI applications, each with its ``path`` to mount at."""
    limits = {"read_max_bytes": max_request_bytes, "compressions": [BoundedGzip(max_request_bytes)]}
    apps = [
        AsyncConnectorServiceASGIApplication(AsyncConnectorServiceAdapter(service), **limits),
        ConnectorMetadataServiceASGIApplication(ConnectorMetadataServiceAdapter(service), **limits),
    ]
    for app in apps:
        # connectrpc 0.10 offers no codecs argument on the generated classes; the base class keeps
        # its codecs here. A unit test pins the behaviour (malformed body -> invalid_argument).
        app._codecs = strict_codecs()
    return [StreamEnvelopeCheck(app, {"gzip", "identity"}) for app in apps]


def procedure_paths(operations: Iterable[str]) -> set[str]:
    """Connect paths for operation names such as ``CreateTask`` or ``ListConnectors``."""
    services = dict.fromkeys(("CreateTask", "GetTask", "DeleteTask", "GetTaskMetrics", "GetTaskLogs"), ASYNC_SERVICE)
    services.update(dict.fromkeys(("GetConnector", "ListConnectors"), METADATA_SERVICE))
    unknown = set(operations) - set(services)
    if unknown:
        raise ValueError(f"unknown operations {sorted(unknown)}; known: {sorted(services)}")
    return {f"/{services[name]}/{name}" for name in operations}


__all__ = ["connect_applications", "pb", "procedure_paths"]
