"""The REST transport: the HTTP paths annotated in flyteidl2's service.proto, grpc-gateway style.

Bodies and answers are the messages' proto JSON; ``resource_meta`` travels in the path as
base64 (URL-safe or standard, padding optional). Errors are ``{"code", "message"}`` with the
Connect code name and the matching HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from flyteidl2.connector import connector_pb2 as pb
from google.protobuf import json_format
from google.protobuf.message import Message

from ..connector_calls import grpc_timeout_seconds, set_request_deadline
from ..errors import Code, ConnectError, internal, invalid_argument
from ..service import ConnectorService

logger = logging.getLogger(__name__)

_HTTP_STATUS = {
    Code.CANCELED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

REST_OPERATIONS = {
    "CreateTask": ("POST", "/api/v1/connector/task"),
    "GetTask": ("GET", "/api/v1/connector/task/{name}/{version}/{resource_meta}"),
    "DeleteTask": ("DELETE", "/api/v1/connector/task_executions/{name}/{version}/{resource_meta}"),
    "GetTaskMetrics": ("GET", "/api/v1/connector/task/metrics/{name}/{version}/{resource_meta}"),
    "GetTaskLogs": ("GET", "/api/v1/connector/task/logs/{name}/{version}/{resource_meta}"),
    "GetConnector": ("GET", "/api/v1/connector/{name}"),
    "ListConnectors": ("GET", "/api/v1/connectors"),
}


def error_response(error: ConnectError) -> JSONResponse:
    return JSONResponse({"code": error.code.value, "message": error.message}, status_code=_HTTP_STATUS[error.code])


def _message_response(message: Message) -> Response:
    return Response(json_format.MessageToJson(message), media_type="application/json")


def _resource_meta(value: str) -> bytes:
    try:
        return base64.b64decode(
            value + "=" * (-len(value) % 4), altchars=b"-_" if ("-" in value or "_" in value) else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise invalid_argument("resource_meta in the path must be base64") from None


def _category(name: str, version: str) -> pb.TaskCategory:
    try:
        return pb.TaskCategory(name=name, version=int(version))
    except ValueError:
        raise invalid_argument(f"task category version must be an integer, got {version!r}") from None


def _handle_and_category(request: Request) -> dict[str, Any]:
    params = request.path_params
    return {
        "resource_meta": _resource_meta(params["resource_meta"]),
        "task_category": _category(params["name"], params["version"]),
    }


def _query(request: Request, message: Message, skip: set[str]) -> None:
    """Fill scalar fields from the query string, as grpc-gateway does (``queries`` may repeat)."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        if key in skip:
            continue
        values = request.query_params.getlist(key)
        field = message.DESCRIPTOR.fields_by_name.get(key.split(".")[0])
        if field is None:
            raise invalid_argument(f"unknown query parameter {key!r}")
        # protobuf 7's upb descriptors have no ``label``; older runtimes may lack ``is_repeated``.
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        params[key] = values if repeated else values[-1]
    if params:
        try:
            json_format.ParseDict(params, message)
        except json_format.ParseError as error:
            raise invalid_argument(f"bad query parameters: {error}") from None


async def _answer(call: Callable[[], Awaitable[Response]], operation: str, request: Request) -> Response:
    try:
        # grpc-gateway passes the caller's deadline on as Grpc-Timeout; honour it as Connect's.
        set_request_deadline(grpc_timeout_seconds(request.headers.get("grpc-timeout")))
        return await call()
    except ConnectError as error:
        return error_response(error)
    except Exception:
        logger.exception("%s failed", operation)
        return error_response(internal(f"{operation} failed unexpectedly; the service logs have the details"))


def rest_router(service: ConnectorService, operations: set[str]) -> APIRouter:
    router = APIRouter()

    async def create_task(request: Request) -> Response:
        async def run() -> Response:
            body = await request.body()
            message = pb.CreateTaskRequest()
            try:
                json_format.Parse(body or b"{}", message)
            except (json_format.ParseError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise invalid_argument(f"malformed CreateTaskRequest (json): {error}") from None
            return _message_response(await service.create_task(message))

        return await _answer(run, "CreateTask", request)

    # Routes take only `request` and read path parameters from it: typed path parameters make
    # FastAPI import pydantic.v1 at app build time, about 20 ms of every cold start.
    def by_handle(message_type: type[Message], call: Callable[[Any], Awaitable[Message]], operation: str):
        async def route(request: Request) -> Response:
            async def run() -> Response:
                message = message_type(**_handle_and_category(request))
                _query(request, message, skip=set())
                return _message_response(await call(message))

            return await _answer(run, operation, request)

        return route

    async def get_task_logs(request: Request) -> Response:
        async def run() -> Response:
            message = pb.GetTaskLogsRequest(**_handle_and_category(request))
            _query(request, message, skip=set())
            stream = service.get_task_logs(message)
            first = await anext(stream, None)  # surface lookup errors as a status, before streaming

            async def lines() -> AsyncIterator[bytes]:
                item = first
                while item is not None:
                    yield (json.dumps({"result": json_format.MessageToDict(item)}) + "\n").encode()
                    try:
                        item = await anext(stream, None)
                    except ConnectError as error:
                        yield (
                            json.dumps({"error": {"code": error.code.value, "message": error.message}}) + "\n"
                        ).encode()
                        return

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        return await _answer(run, "GetTaskLogs", request)

    async def get_connector(request: Request) -> Response:
        message = pb.GetConnectorRequest(name=request.path_params["name"])
        return await _answer(lambda: _as_response(service.get_connector(message)), "GetConnector", request)

    async def list_connectors(request: Request) -> Response:
        return await _answer(
            lambda: _as_response(service.list_connectors(pb.ListConnectorsRequest())), "ListConnectors", request
        )

    endpoints = {
        "CreateTask": create_task,
        "GetTask": by_handle(pb.GetTaskRequest, service.get_task, "GetTask"),
        "DeleteTask": by_handle(pb.DeleteTaskRequest, service.delete_task, "DeleteTask"),
        "GetTaskMetrics": by_handle(pb.GetTaskMetricsRequest, service.get_task_metrics, "GetTaskMetrics"),
        "GetTaskLogs": get_task_logs,
        "GetConnector": get_connector,
        "ListConnectors": list_connectors,
    }
    # Specific paths before the catch-all /api/v1/connector/{name}.
    for operation in sorted(operations, key=lambda op: op == "GetConnector"):
        method, path = REST_OPERATIONS[operation]
        router.add_api_route(path, endpoints[operation], methods=[method], name=operation)
    return router


async def _as_response(call: Awaitable[Message]) -> Response:
    return _message_response(await call)
