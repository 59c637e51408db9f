"""The HTTPS application: Connect and REST routes for the operations one function serves.

Every Lambda function builds this app with its own operations only (``handlers/``); the local
server (``connectors serve``) builds it with all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from .. import caller
from ..observability import logs
from ..service import ConnectorService
from .connect import connect_applications, procedure_paths
from .rest import rest_router

ALL_OPERATIONS = (
    "CreateTask",
    "GetTask",
    "DeleteTask",
    "GetTaskMetrics",
    "GetTaskLogs",
    "GetConnector",
    "ListConnectors",
)


class _OnlyProcedures:
    """An ASGI wrapper that serves the given Connect procedures and answers others ``unimplemented``."""

    def __init__(self, app: Any, allowed: set[str]) -> None:
        self._app = app
        self._allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self._allowed:
            body = json.dumps({"code": "unimplemented", "message": f"this function does not serve {scope['path']}"})
            await send(
                {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self._app(scope, receive, send)


class _BodyLimit:
    """Refuse a request whose declared body is over the limit before reading it: resource_exhausted."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit() and int(value) > self._max:
                    body = json.dumps(
                        {
                            "code": "resource_exhausted",
                            "message": f"request body of {int(value)} bytes is over the limit of {self._max}",
                        }
                    )
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 429,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body.encode()})
                    return
        await self._app(scope, receive, send)


class _Caller:
    """This request's caller (connectors/caller.py), from the API Gateway event Mangum puts in the
    scope, into the request's context and its log lines. Only API Gateway's own event is read,
    never a header. A Lambda request whose event names no IAM signer is refused
    ``unauthenticated``: every route requires IAM auth, so such an event comes from a route or an
    invocation that bypassed it. Without an event (``connectors serve``) there is no caller."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "aws.event" not in scope:
            await self._app(scope, receive, send)
            return
        signer = caller.from_event(scope["aws.event"])
        if signer is None:
            body = json.dumps({"code": "unauthenticated", "message": "this request names no IAM caller"})
            await send(
                {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        token = caller.current.set(signer)
        try:
            with logs.caller_keys(signer.principal, signer.arn):
                await self._app(scope, receive, send)
        finally:
            caller.current.reset(token)


def create_app(service: ConnectorService, operations: Iterable[str] = ALL_OPERATIONS, *, health: bool = True) -> Any:
    """An ASGI app serving ``operations`` over Connect and REST (and ``GET /healthz`` if ``health``)."""
    operations = set(operations)
    allowed = procedure_paths(operations)
    app = FastAPI(title="Flyte connector service", docs_url=None, redoc_url=None, openapi_url=None)

    if health:

        @app.get("/healthz")
        async def healthz():  # no return annotation: a response model would cost cold-start time
            return JSONResponse({"status": "ok", "connectors": len(service.registry)})

    for connect_app in connect_applications(service, service.settings.max_request_bytes):
        if any(path.startswith(connect_app.path + "/") for path in allowed):
            app.mount(connect_app.path, _OnlyProcedures(connect_app, allowed))
    app.include_router(rest_router(service, operations))
    return _Caller(_BodyLimit(app, service.settings.max_request_bytes))
