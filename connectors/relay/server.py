"""The gRPC side of the relay: flyteidl2's connector services, each call forwarded to the API.

The servicers subclass the generated ``service_pb2_grpc`` bases, so the relay answers exactly the
methods a Flyte executor calls, at the paths it dials. Each call's remaining deadline goes with
it; a failure is answered with the gRPC status :mod:`.errors` maps it to, and every answer is
counted in :mod:`.metrics`. The server also serves the standard health service
(``grpc.health.v1.Health``, what Kubernetes' gRPC probes call): SERVING for ``""`` and both
connector services once the server has started, NOT_SERVING from the moment it begins to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from .errors import RelayError
from .forward import Forwarder, check_endpoint
from .metrics import MetricsServer, RelayMetrics, operation_of, split_listen
from .retry import RetryPolicy
from .signing import Signer, resolve_region

__all__ = ["AsyncConnectorRelay", "ConnectorMetadataRelay", "create_server", "serve"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

ASYNC_SERVICE = "/flyteidl2.connector.AsyncConnectorService/"
METADATA_SERVICE = "/flyteidl2.connector.ConnectorMetadataService/"
# The services the health service reports on, besides the server as a whole ("").
SERVICE_NAMES = ("flyteidl2.connector.AsyncConnectorService", "flyteidl2.connector.ConnectorMetadataService")

# Codes that say something is wrong with the relay, the API or its permissions, rather than
# with one request: logged as warnings.
_OPERATOR_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}

SERVER_OPTIONS = [
    # A second relay on the same port should fail to start, not share the port silently.
    ("grpc.so_reuseport", 0),
    # The executor's gRPC client pings every 30 s during a call (keepalive Time 30s); grpc's
    # default would answer pings more often than every 5 minutes with GOAWAY "too_many_pings".
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # API Gateway and Lambda cap a payload at 6 MB; let the service, not gRPC, refuse bigger ones.
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


def _task_type(request: Message) -> str:
    """The task type a request names: CreateTask's template type, else its task category."""
    if isinstance(request, pb.CreateTaskRequest):
        return request.template.type
    category = getattr(request, "task_category", None)
    return category.name if category is not None else ""


async def _forward_unary(
    forwarder: Forwarder,
    metrics: RelayMetrics,
    context: grpc.aio.ServicerContext,
    procedure: str,
    request: Message,
    response_type: type[M],
) -> M:
    started = time.monotonic()
    operation, task_type = operation_of(procedure), _task_type(request)
    try:
        response = await forwarder.unary(procedure, request, response_type, context.time_remaining())
    except RelayError as error:
        _log_failure(procedure, error, started)
        metrics.answered(operation, task_type, error.code, time.monotonic() - started)
        await context.abort(error.code, error.message)  # raises
        raise
    metrics.answered(operation, task_type, None, time.monotonic() - started)
    logger.debug("%s OK in %.0f ms", procedure, (time.monotonic() - started) * 1000)
    return response


def _log_failure(procedure: str, error: RelayError, started: float) -> None:
    level = logging.WARNING if error.code in _OPERATOR_CODES else logging.INFO
    logger.log(
        level, "%s -> %s: %s (%.0f ms)", procedure, error.code.name, error.message, (time.monotonic() - started) * 1000
    )


class AsyncConnectorRelay(service_pb2_grpc.AsyncConnectorServiceServicer):
    """``flyteidl2.connector.AsyncConnectorService``, forwarded."""

    def __init__(self, forwarder: Forwarder, metrics: RelayMetrics | None = None) -> None:
        self._forwarder = forwarder
        self._metrics = metrics if metrics is not None else RelayMetrics()

    async def _unary(self, method: str, request: Message, response_type: type[M], context: Any) -> M:
        return await _forward_unary(
            self._forwarder, self._metrics, context, ASYNC_SERVICE + method, request, response_type
        )

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Any) -> pb.CreateTaskResponse:
        return await self._unary("CreateTask", request, pb.CreateTaskResponse, context)

    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.GetTaskResponse:
        return await self._unary("GetTask", request, pb.GetTaskResponse, context)

    async def DeleteTask(self, request: pb.DeleteTaskRequest, context: Any) -> pb.DeleteTaskResponse:
        return await self._unary("DeleteTask", request, pb.DeleteTaskResponse, context)

    async def GetTaskMetrics(self, request: pb.GetTaskMetricsRequest, context: Any) -> pb.GetTaskMetricsResponse:
        return await self._unary("GetTaskMetrics", request, pb.GetTaskMetricsResponse, context)

    async def GetTaskLogs(self, request: pb.GetTaskLogsRequest, context: Any) -> None:
        procedure = ASYNC_SERVICE + "GetTaskLogs"
        started = time.monotonic()
        stream = self._forwarder.server_stream(procedure, request, pb.GetTaskLogsResponse, context.time_remaining())
        async with contextlib.aclosing(stream):
            try:
                async for message in stream:
                    await context.write(message)
            except RelayError as error:
                _log_failure(procedure, error, started)
                self._metrics.answered("get_logs", request.task_category.name, error.code, time.monotonic() - started)
                await context.abort(error.code, error.message)
        self._metrics.answered("get_logs", request.task_category.name, None, time.monotonic() - started)


class ConnectorMetadataRelay(service_pb2_grpc.ConnectorMetadataServiceServicer):
    """``flyteidl2.connector.ConnectorMetadataService``, forwarded."""

    def __init__(self, forwarder: Forwarder, metrics: RelayMetrics | None = None) -> None:
        self._forwarder = forwarder
        self._metrics = metrics if metrics is not None else RelayMetrics()

    async def GetConnector(self, request: pb.GetConnectorRequest, context: Any) -> pb.GetConnectorResponse:
        return await _forward_unary(
            self._forwarder, self._metrics, context, METADATA_SERVICE + "GetConnector", request, pb.GetConnectorResponse
        )

    async def ListConnectors(self, request: pb.ListConnectorsRequest, context: Any) -> pb.ListConnectorsResponse:
        return await _forward_unary(
            self._forwarder,
            self._metrics,
            context,
            METADATA_SERVICE + "ListConnectors",
            request,
            pb.ListConnectorsResponse,
        )


def create_server(
    forwarder: Forwarder, metrics: RelayMetrics | None = None, health: health_aio.HealthServicer | None = None
) -> grpc.aio.Server:
    """A grpc.aio server with both connector services registered, and ``health`` (the standard
    health service) when given; add a port and start it."""
    metrics = metrics if metrics is not None else forwarder.metrics or RelayMetrics()
    server = grpc.aio.server(options=SERVER_OPTIONS)
    service_pb2_grpc.add_AsyncConnectorServiceServicer_to_server(AsyncConnectorRelay(forwarder, metrics), server)
    service_pb2_grpc.add_ConnectorMetadataServiceServicer_to_server(ConnectorMetadataRelay(forwarder, metrics), server)
    if health is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return server


async def _set_health(health: health_aio.HealthServicer, status: int) -> None:
    for service in ("", *SERVICE_NAMES):
        await health.set(service, status)


async def serve(
    endpoint: str,
    listen: str = "0.0.0.0:8000",
    *,
    region: str | None = None,
    unsigned: bool = False,
    session: Any = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[int], None] | None = None,
    grace_seconds: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    max_attempts: int | None = None,
    retry: RetryPolicy | None = None,
    metrics_listen: str | None = None,
    metrics_ready: Callable[[int], None] | None = None,
) -> None:
    """Relay gRPC calls on ``listen`` (``host:port``; port 0 picks one) to ``endpoint`` until
    ``stop`` is set (or forever), then let calls in flight finish for ``grace_seconds``.

    Requests are SigV4-signed for ``execute-api`` in ``region`` (default: from the endpoint's
    host, else AWS_REGION) with the credentials of ``session`` (default: a new boto3 Session),
    unless ``unsigned``. Signed requests go only to an https ``endpoint`` (ValueError for an
    http one); ``ssl_context`` verifies its certificate (default: httpx's). A failed call is sent
    again as ``retry`` says (default: :class:`RetryPolicy` with ``max_attempts``). ``ready`` is
    called with the bound port once the server accepts calls. Prometheus metrics are served on
    ``metrics_listen`` (``host:port``, path ``/metrics``) when given; ``metrics_ready`` gets its
    bound port.
    """
    check_endpoint(endpoint, signed=not unsigned)
    if metrics_listen is not None:
        split_listen(metrics_listen)  # a malformed flag is refused before anything starts
    if retry is None:
        retry = RetryPolicy() if max_attempts is None else RetryPolicy(max_attempts=max_attempts)
    signer = None if unsigned else Signer(resolve_region(endpoint, region, session), session)
    metrics = RelayMetrics()
    health = health_aio.HealthServicer()
    await _set_health(health, health_pb2.HealthCheckResponse.NOT_SERVING)
    metrics_server: MetricsServer | None = None
    async with Forwarder(endpoint, signer, ssl_context=ssl_context, retry=retry, metrics=metrics) as forwarder:
        server = create_server(forwarder, metrics, health)
        port = server.add_insecure_port(listen)
        if not port:
            raise OSError(f"cannot listen on {listen}")
        if metrics_listen is not None:
            metrics_server = metrics.serve(metrics_listen)
            logger.info(
                "serving Prometheus metrics on http://%s/metrics (port %d)", metrics_listen, metrics_server.port
            )
            if metrics_ready is not None:
                metrics_ready(metrics_server.port)
        try:
            await server.start()
            await _set_health(health, health_pb2.HealthCheckResponse.SERVING)
            signing = "unsigned" if signer is None else f"SigV4-signed for execute-api in {signer.region}"
            logger.info(
                "relaying gRPC on %s (port %d) to %s, %s; up to %d attempts a call",
                listen,
                port,
                endpoint,
                signing,
                retry.max_attempts,
            )
            if ready is not None:
                ready(port)
            if stop is None:
                await server.wait_for_termination()
            else:
                await stop.wait()
        finally:
            await health.enter_graceful_shutdown()  # probes see NOT_SERVING while calls in flight finish
            await server.stop(grace_seconds)
            if metrics_server is not None:
                metrics_server.close()
            logger.info("relay stopped")
