"""Answers too large for Lambda (6 MB for the whole response) come back as resource_exhausted.

API Gateway events, as events/*.json are, go through handlers built with ``lambda_handler``, in
process, for GetTaskMetrics and GetTaskLogs of a connector that answers as much as it is asked
for. Each protocol gets the error in its own form, which the relay turns into RESOURCE_EXHAUSTED
(not UNAVAILABLE, which the executor retries); answers that fit are untouched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from flyteidl2.connector import connector_pb2 as pb
from google.protobuf import json_format
from mangum import Mangum

from connectors import caller
from connectors.connect_envelope import END_STREAM, encode, end_stream_error, read_all
from connectors.dev.events import http_api_event
from connectors.registry import ConnectorRegistry
from connectors.relay import error_from_response, grpc_code_for_connect
from connectors.runtime import lambda_handler
from connectors.transport import create_app
from tests.conftest import LambdaContext, make_service
from tests.flyte_requests import echo_request
from tests.sample_connectors import BulkyConnector

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
BULKY = pb.TaskCategory(name="bulky", version=0)
LAMBDA_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous response payload quota, stated independently of the code
OVER = 7_000_000  # answer bytes: over the limit in every protocol
SMALL = 2_000

# protocol -> (how the request is sent, path template); REST paths carry the handle base64url.
PROTOCOLS = {
    "connect-proto": "application/proto",
    "connect-json": "application/json",
    "rest": None,
}
STREAM_PROTOCOLS = {
    "connect-proto": "application/connect+proto",
    "connect-json": "application/connect+json",
    "rest": None,
}
REST_PATHS = {
    "GetTaskMetrics": "/api/v1/connector/task/metrics/bulky/0/{}",
    "GetTaskLogs": "/api/v1/connector/task/logs/bulky/0/{}",
}
REQUESTS = {"GetTaskMetrics": pb.GetTaskMetricsRequest, "GetTaskLogs": pb.GetTaskLogsRequest}


@pytest.fixture(scope="module")
def bulky_service(settings, dynamodb_client):
    return make_service(settings, dynamodb_client, ConnectorRegistry([BulkyConnector()]))


@pytest.fixture(scope="module")
def handlers(bulky_service) -> dict[str, Callable[[dict, Any], dict]]:
    return {operation: lambda_handler([operation], service=bulky_service) for operation in REQUESTS}


@pytest.fixture(scope="module")
def tasks(bulky_service) -> dict[int, bytes]:
    """A bulky task per answer size: its handle."""

    async def create(size: int) -> bytes:
        # created by the principal the events below name: a task answers only its creator (issue 18)
        token = caller.current.set(caller.from_event(http_api_event("POST", f"{ASYNC}/CreateTask", b"{}")))
        try:
            request = echo_request(task_type="bulky", custom={"answer_bytes": size})
            return (await bulky_service.create_task(request)).resource_meta
        finally:
            caller.current.reset(token)

    return {size: asyncio.run(create(size)) for size in (SMALL, 5_000_000, OVER)}


def event(operation: str, protocol: str, handle: bytes) -> dict:
    if protocol == "rest":
        return http_api_event(
            "GET", REST_PATHS[operation].format(base64.urlsafe_b64encode(handle).decode().rstrip("="))
        )
    request = REQUESTS[operation](resource_meta=handle, task_category=BULKY)
    content_type = (STREAM_PROTOCOLS if operation == "GetTaskLogs" else PROTOCOLS)[protocol]
    body = json_format.MessageToJson(request).encode() if content_type.endswith("json") else request.SerializeToString()
    if operation == "GetTaskLogs":
        body = encode(body)
    return http_api_event("POST", f"{ASYNC}/{operation}", body, content_type=content_type)


def lambda_bytes(response: dict) -> int:
    """The size of the response as the Python 3.12 runtime serialises it (ensure_ascii=False), and as
    other runtimes do (ASCII escapes): the larger."""
    return max(len(json.dumps(response, ensure_ascii=False).encode()), len(json.dumps(response).encode()))


def body_bytes(response: dict) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def relay_code(operation: str, protocol: str, response: dict) -> grpc.StatusCode | None:
    """The gRPC status the relay would answer for this response (None: success)."""
    body = body_bytes(response)
    if response["statusCode"] != 200:
        return error_from_response(response["statusCode"], body, response.get("headers")).code
    if operation == "GetTaskLogs" and protocol != "rest":
        for flags, message in read_all(body):
            if flags & END_STREAM:
                error = end_stream_error(message)
                return None if error is None else grpc_code_for_connect(error["code"])
        raise AssertionError("the stream has no end-of-stream message")
    return None


def assert_resource_exhausted(operation: str, protocol: str, response: dict) -> dict:
    """Check the protocol's error form; return the error's {code, message}."""
    body = body_bytes(response)
    if operation == "GetTaskLogs" and protocol != "rest":
        assert response["statusCode"] == 200
        assert response["headers"]["content-type"] == STREAM_PROTOCOLS[protocol]
        messages = read_all(body)
        assert len(messages) == 1 and messages[0][0] == END_STREAM
        error = end_stream_error(messages[0][1])
    else:
        assert response["statusCode"] == 429
        assert response["headers"]["content-type"] == "application/json"
        error = json.loads(body)
    assert error["code"] == "resource_exhausted"
    assert relay_code(operation, protocol, response) == grpc.StatusCode.RESOURCE_EXHAUSTED
    return error


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("operation", sorted(REQUESTS))
def test_an_answer_over_the_lambda_limit_is_resource_exhausted(handlers, tasks, operation, protocol, caplog):
    # Lambda logs at INFO (LOG_LEVEL's default): what any logger writes there is in CloudWatch.
    # (Whether INFO reached caplog used to depend on which tests ran before in the process.)
    caplog.set_level(logging.INFO)
    response = handlers[operation](event(operation, protocol, tasks[OVER]), LambdaContext())
    assert lambda_bytes(response) < LAMBDA_LIMIT
    error = assert_resource_exhausted(operation, protocol, response)
    size = int(error["message"].split(" bytes")[0].rsplit(" ", 1)[-1])
    assert size > LAMBDA_LIMIT and str(LAMBDA_LIMIT) in error["message"], error["message"]
    assert operation in error["message"]
    warnings = [
        record for record in caplog.records if record.levelname == "WARNING" and str(size) in record.getMessage()
    ]
    assert warnings, "no warning logged"
    assert all("llll" not in r.getMessage() and "7777" not in r.getMessage() for r in warnings)
    handle_text = base64.urlsafe_b64encode(tasks[OVER]).decode()[:20]
    leaked = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records if handle_text in r.getMessage()]
    assert not leaked, leaked


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_base64_counts_a_binary_answer_under_6_mb_that_lambda_would_refuse(handlers, tasks, protocol):
    """5 MB of metrics: 6.7 MB once a binary body is base64-encoded, so over; as JSON text it fits."""
    response = handlers["GetTaskMetrics"](event("GetTaskMetrics", protocol, tasks[5_000_000]), LambdaContext())
    assert lambda_bytes(response) < LAMBDA_LIMIT
    if protocol == "connect-proto":
        assert_resource_exhausted("GetTaskMetrics", protocol, response)
    else:
        assert response["statusCode"] == 200 and relay_code("GetTaskMetrics", protocol, response) is None
        assert len(body_bytes(response)) > 5_000_000


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("operation", sorted(REQUESTS))
def test_an_answer_that_fits_is_untouched(bulky_service, handlers, tasks, operation, protocol):
    sent = event(operation, protocol, tasks[SMALL])
    response = handlers[operation](sent, LambdaContext())
    plain = Mangum(create_app(bulky_service, [operation], health=False), lifespan="off")(sent, LambdaContext())
    assert response == plain
    assert response["statusCode"] == 200 and relay_code(operation, protocol, response) is None
    body = body_bytes(response)
    if operation == "GetTaskMetrics":
        message = pb.GetTaskMetricsResponse()
        if protocol == "connect-proto":
            message.ParseFromString(body)
        else:
            json_format.Parse(body, message)
        assert len(message.results[0].data.fields["samples"].string_value) == SMALL
