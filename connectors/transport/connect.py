"""The Connect transport: flyteidl2's generated ASGI applications, backed by ConnectorService.

The generated code decodes requests and speaks the Connect protocol (binary proto and JSON,
unary and server streams); this module adapts it to the service core and fixes what
connectrpc 0.10 gets wrong for us: a malformed body (proto, JSON, gzip, or a stream envelope
flagged compressed without a compression) is ``invalid_argument`` (not ``unknown`` or
``internal``), a gzip body inflates no further than the size limit, and an unexpected exception
is ``internal`` with its stack trace only in the logs.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import logging
import zlib
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator

from connectrpc.codec import Codec, proto_binary_codec, proto_json_codec
from connectrpc.request import RequestContext
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import (
    AsyncConnectorServiceASGIApplication,
    ConnectorMetadataServiceASGIApplication,
)

from ..errors import Code, ConnectError, internal, invalid_argument, resource_exhausted
from ..service import ConnectorService

logger = logging.getLogger(__name__)

ASYNC_SERVICE = "flyteidl2.connector.AsyncConnectorService"
METADATA_SERVICE = "flyteidl2.connector.ConnectorMetadataService"


class _StrictCodec:
    """A codec whose decode failures are the caller's fault: ``invalid_argument``."""

    def __init__(self, inner: Codec) -> None:
        self._inner = inner

    def name(self) -> str:
        return self._inner.name()

    def encode(self, message: Any) -> bytes:
        return self._inner.encode(message)

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            return self._inner.decode(data, message)
        except Exception as error:
            kind = message.DESCRIPTOR.name if hasattr(message, "DESCRIPTOR") else "message"
            raise invalid_argument(f"malformed {kind} ({self.name()}): {error}") from None


class _BoundedGzip:
    """gzip whose decompression stops at the size limit (no zip bombs) and whose bad input is
    ``invalid_argument`` (connectrpc 0.10 lets gzip's own exceptions out as ``unknown``)."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes

    def name(self) -> str:
        return "gzip"

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return gzip.compress(data)

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        out, rest = bytearray(), bytes(data)
        try:
            while rest:  # one or more gzip members
                member = zlib.decompressobj(wbits=31)
                out += member.decompress(rest, self._max + 1 - len(out))
                if len(out) > self._max or member.unconsumed_tail:
                    raise resource_exhausted(f"the decompressed message is over the limit of {self._max} bytes")
                if not member.eof:
                    raise invalid_argument("malformed gzip body: it ends before its gzip stream does")
                rest = member.unused_data
        except zlib.error as error:
            raise invalid_argument(f"malformed gzip body: {error}") from None
        return bytes(out)


class _StreamEnvelopeCheck:
    """A streaming request whose message is flagged compressed without a compression the server
    knows is the client's error (connectrpc 0.10 answers ``internal``): ``invalid_argument``, or
    ``unimplemented`` when it names an unknown compression. Checks the envelope prefixes as the
    body arrives, without buffering it."""

    def __init__(self, app: Any, compressions: set[str]) -> None:
        self._app = app
        self._compressions = compressions

    @property
    def path(self) -> str:
        return self._app.path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", ())) if scope["type"] == "http" else {}
        if not headers.get(b"content-type", b"").startswith(b"application/connect+"):
            return await self._app(scope, receive, send)
        encoding = headers.get(b"connect-content-encoding", b"identity").decode("latin-1")
        if encoding != "identity" and encoding in self._compressions:
            return await self._app(scope, receive, send)
        pending, skip = bytearray(), 0

        async def checked_receive() -> Any:
            nonlocal pending, skip
            message = await receive()
            if message["type"] == "http.request":
                pending += message.get("body", b"")
                while True:
                    dropped = min(skip, len(pending))
                    del pending[:dropped]
                    skip -= dropped
                    if skip or len(pending) < 5:
                        break
                    if pending[0] & 0x01:
                        if encoding == "identity":
                            raise invalid_argument("a message is flagged compressed but connect-content-encoding names none")
                        raise ConnectError(Code.UNIMPLEMENTED, f"unknown compression: {encoding!r}: supported encodings "
                                                               f"are {', '.join(sorted(self._compressions))}")
                    skip = 5 + int.from_bytes(pending[1:5], "big")
            return message

        await self._app(scope, checked_receive, send)


def _strict_codecs() -> dict[str, Any]:
    codecs = [_StrictCodec(proto_binary_codec()), _StrictCodec(proto_json_codec())]
    return {codec.name(): codec for codec in codecs}


@contextlib.contextmanager
def _unexpected_errors_are_internal(operation: str) -> Iterator[None]:
    try:
        yield
    except ConnectError:
        raise
    except Exception:
        logger.exception("%s failed", operation)
        raise internal(f"{operation} failed unexpectedly; the service logs have the details") from None


def _unary(call: Callable[[Any], Awaitable[Any]]) -> Callable[[Any, RequestContext], Awaitable[Any]]:
    @functools.wraps(call)
    async def endpoint(request: Any, ctx: RequestContext) -> Any:
        with _unexpected_errors_are_internal(call.__name__):
            return await call(request)

    return endpoint


def _stream(call: Callable[[Any], AsyncIterator[Any]]) -> Callable[[Any, RequestContext], AsyncIterator[Any]]:
    @functools.wraps(call)
    async def endpoint(request: Any, ctx: RequestContext) -> AsyncIterator[Any]:
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
    limits = {"read_max_bytes": max_request_bytes, "compressions": [_BoundedGzip(max_request_bytes)]}
    apps = [
        AsyncConnectorServiceASGIApplication(AsyncConnectorServiceAdapter(service), **limits),
        ConnectorMetadataServiceASGIApplication(ConnectorMetadataServiceAdapter(service), **limits),
    ]
    for app in apps:
        # connectrpc 0.10 offers no codecs argument on the generated classes; the base class keeps
        # its codecs here. A unit test pins the behaviour (malformed body -> invalid_argument).
        app._codecs = _strict_codecs()
    return [_StreamEnvelopeCheck(app, {"gzip", "identity"}) for app in apps]


def procedure_paths(operations: Iterable[str]) -> set[str]:
    """Connect paths for operation names such as ``CreateTask`` or ``ListConnectors``."""
    services = {name: ASYNC_SERVICE for name in ("CreateTask", "GetTask", "DeleteTask", "GetTaskMetrics", "GetTaskLogs")}
    services.update({name: METADATA_SERVICE for name in ("GetConnector", "ListConnectors")})
    unknown = set(operations) - set(services)
    if unknown:
        raise ValueError(f"unknown operations {sorted(unknown)}; known: {sorted(services)}")
    return {f"/{services[name]}/{name}" for name in operations}


__all__ = ["connect_applications", "procedure_paths", "pb"]
