"""The gRPC side of the relay: flyteidl2's connector services, each call forwarded to the API.

The servicers subclass the generated ``service_pb2_grpc`` bases, so the relay answers exactly the
methods a Flyte executor calls, at the paths it dials. Each call's remaining deadline goes with
it; a failure is answered with the gRPC status :mod:`.errors` maps it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Any, Callable, Type, TypeVar

import grpc
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from google.protobuf.message import Message

from .errors import RelayError
from .forward import Forwarder, check_endpoint
from .signing import Signer, resolve_region

__all__ = ["AsyncConnectorRelay", "ConnectorMetadataRelay", "create_server", "serve"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

ASYNC_SERVICE = "/flyteidl2.connector.AsyncConnectorService/"
METADATA_SERVICE = "/flyteidl2.connector.ConnectorMetadataService/"

# Codes that say something is wrong with the relay, the API or its permissions, rather than
# with one request: logged as warnings.
_OPERATOR_CODES = {
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
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


async def _forward_unary(forwarder: Forwarder, context: grpc.aio.ServicerContext, procedure: str,
                         request: Message, response_type: Type[M]) -> M:
    started = time.monotonic()
    try:
        response = await forwarder.unary(procedure, request, response_type, context.time_remaining())
    except RelayError as error:
        _log_failure(procedure, error, started)
        await context.abort(error.code, error.message)  # raises
        raise
    logger.debug("%s OK in %.0f ms", procedure, (time.monotonic() - started) * 1000)
    return response


def _log_failure(procedure: str, error: RelayError, started: float) -> None:
    level = logging.WARNING if error.code in _OPERATOR_CODES else logging.INFO
    logger.log(level, "%s -> %s: %s (%.0f ms)", procedure, error.code.name, error.message,
               (time.monotonic() - started) * 1000)


class AsyncConnectorRelay(service_pb2_grpc.AsyncConnectorServiceServicer):
    """``flyteidl2.connector.AsyncConnectorService``, forwarded."""

    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Any) -> pb.CreateTaskResponse:
        return await _forward_unary(self._forwarder, context, ASYNC_SERVICE + "CreateTask", request, pb.CreateTaskResponse)

    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.GetTaskResponse:
        return await _forward_unary(self._forwarder, context, ASYNC_SERVICE + "GetTask", request, pb.GetTaskResponse)

    async def DeleteTask(self, request: pb.DeleteTaskRequest, context: Any) -> pb.DeleteTaskResponse:
        return await _forward_unary(self._forwarder, context, ASYNC_SERVICE + "DeleteTask", request, pb.DeleteTaskResponse)

    async def GetTaskMetrics(self, request: pb.GetTaskMetricsRequest, context: Any) -> pb.GetTaskMetricsResponse:
        return await _forward_unary(self._forwarder, context, ASYNC_SERVICE + "GetTaskMetrics", request,
                                    pb.GetTaskMetricsResponse)

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
                await context.abort(error.code, error.message)


class ConnectorMetadataRelay(service_pb2_grpc.ConnectorMetadataServiceServicer):
    """``flyteidl2.connector.ConnectorMetadataService``, forwarded."""

    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    async def GetConnector(self, request: pb.GetConnectorRequest, context: Any) -> pb.GetConnectorResponse:
        return await _forward_unary(self._forwarder, context, METADATA_SERVICE + "GetConnector", request,
                                    pb.GetConnectorResponse)

    async def ListConnectors(self, request: pb.ListConnectorsRequest, context: Any) -> pb.ListConnectorsResponse:
        return await _forward_unary(self._forwarder, context, METADATA_SERVICE + "ListConnectors", request,
                                    pb.ListConnectorsResponse)


def create_server(forwarder: Forwarder) -> grpc.aio.Server:
    """A grpc.aio server with both services registered; add a port and start it."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    service_pb2_grpc.add_AsyncConnectorServiceServicer_to_server(AsyncConnectorRelay(forwarder), server)
    service_pb2_grpc.add_ConnectorMetadataServiceServicer_to_server(ConnectorMetadataRelay(forwarder), server)
    return server


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
) -> None:
    """Relay gRPC calls on ``listen`` (``host:port``; port 0 picks one) to ``endpoint`` until
    ``stop`` is set (or forever), then let calls in flight finish for ``grace_seconds``.

    Requests are SigV4-signed for ``execute-api`` in ``region`` (default: from the endpoint's
    host, else AWS_REGION) with the credentials of ``session`` (default: a new boto3 Session),
    unless ``unsigned``. Signed requests go only to an https ``endpoint`` (ValueError for an
    http one); ``ssl_context`` verifies its certificate (default: httpx's). ``ready`` is called
    with the bound port once the server accepts calls.
    """
    check_endpoint(endpoint, signed=not unsigned)
    signer = None if unsigned else Signer(resolve_region(endpoint, region, session), session)
    async with Forwarder(endpoint, signer, ssl_context=ssl_context) as forwarder:
        server = create_server(forwarder)
        port = server.add_insecure_port(listen)
        if not port:
            raise OSError(f"cannot listen on {listen}")
        await server.start()
        signing = "unsigned" if signer is None else f"SigV4-signed for execute-api in {signer.region}"
        logger.info("relaying gRPC on %s (port %d) to %s, %s", listen, port, endpoint, signing)
        if ready is not None:
            ready(port)
        try:
            if stop is None:
                await server.wait_for_termination()
            else:
                await stop.wait()
        finally:
            await server.stop(grace_seconds)
            logger.info("relay stopped")
