"""The Connect API served over loopback, driven by flyteidl2's generated clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from connectrpc.codec import proto_json_codec
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync, ConnectorMetadataServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin import EchoConnector
from connectors.errors import Code
from connectors.registry import ConnectorRegistry
from connectors.store import CLAIMED, TaskHandle, TaskRecord
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, scan_table
from tests.flyte_requests import ECHO, echo_request
from tests.sample_connectors import CountingConnector, FailingConnector, StallingConnector

CODECS = {"proto": None, "json": proto_json_codec()}


@pytest.fixture(scope="module")
def counting() -> CountingConnector:
    return CountingConnector()


@pytest.fixture(scope="module")
def served(settings, dynamodb_client, counting) -> Iterator[ServedApp]:
    registry = ConnectorRegistry([EchoConnector(), counting, FailingConnector(), StallingConnector()])
    with ServedApp(create_app(make_service(settings, dynamodb_client, registry))) as server:
        yield server


@pytest.fixture(params=sorted(CODECS))
def client(request, served) -> AsyncConnectorServiceClientSync:
    return AsyncConnectorServiceClientSync(served.url, codec=CODECS[request.param])


def expect_error(code: Code, call, *args) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.message
    return caught.value


def poll(client, handle: bytes, category=ECHO, until=TaskExecution.SUCCEEDED, timeout=10.0) -> pb.Resource:
    deadline = time.monotonic() + timeout
    while True:
        resource = client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=category)).resource
        if resource.phase == until or time.monotonic() > deadline:
            return resource
        time.sleep(0.1)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_list_and_get_connectors(served, codec):
    metadata = ConnectorMetadataServiceClientSync(served.url, codec=CODECS[codec])
    listed = metadata.list_connectors(pb.ListConnectorsRequest())
    categories = {(c.name, c.version) for m in listed.connectors for c in m.supported_task_categories}
    assert {("echo", 0), ("counting", 0), ("failing", 0)} <= categories
    echo = metadata.get_connector(pb.GetConnectorRequest(name="Echo Connector")).connector
    assert [c.name for c in echo.supported_task_categories] == ["echo"]
    error = expect_error(Code.NOT_FOUND, metadata.get_connector, pb.GetConnectorRequest(name="Nope"))
    assert "Nope" in error.message and "Echo Connector" in error.message


def test_echo_task_runs_to_success_and_echoes_its_inputs(client):
    # Long enough that the first poll, even on a loaded machine (parallel test workers), comes first.
    created = client.create_task(echo_request(x=7, name="flyte", custom={"delay_seconds": 3.0}))
    handle = created.resource_meta
    assert handle.startswith(b"t1") and len(handle) < 64
    first = client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)).resource
    assert first.phase == TaskExecution.RUNNING
    done = poll(client, handle)
    assert done.phase == TaskExecution.SUCCEEDED
    outputs = {lit.name: lit.value.scalar.primitive for lit in done.outputs.literals}
    assert outputs["x"].integer == 7 and outputs["name"].string_value == "flyte"
    # DeleteTask is idempotent: twice, both answered.
    client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO))
    client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO))


def test_echo_failure_is_reported_as_failed(client):
    handle = client.create_task(echo_request(custom={"fail": "boom on purpose"})).resource_meta
    resource = poll(client, handle, until=TaskExecution.FAILED)
    assert (resource.phase, resource.message) == (TaskExecution.FAILED, "boom on purpose")
    assert poll(client, handle, until=TaskExecution.FAILED).phase == TaskExecution.FAILED


def test_delete_cancels_a_running_task_and_it_stays_aborted(client):
    handle = client.create_task(echo_request(custom={"delay_seconds": 60})).resource_meta
    client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO))
    client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO))
    resource = client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)).resource
    assert resource.phase == TaskExecution.ABORTED


def test_second_create_of_one_attempt_answers_the_same_handle(served, counting, settings, dynamodb_client):
    client = AsyncConnectorServiceClientSync(served.url)
    request = echo_request(task_type="counting", run="same-run", action="a1", attempt=2)
    before = counting.calls["create"]
    first = client.create_task(request).resource_meta
    second = client.create_task(request).resource_meta
    assert first == second
    assert counting.calls["create"] == before + 1
    # Another attempt of the same action is another task.
    third = client.create_task(echo_request(task_type="counting", run="same-run", action="a1", attempt=3)).resource_meta
    assert third != first
    tokens = [call["idempotency_token"] for call in counting.kwargs if call["operation"] == "create"]
    assert tokens[-1] != tokens[-2] and len(tokens[-1]) == 32
    # ...and the executor gave up on attempt 2 when it started attempt 3: its job is cancelled.
    assert counting.kwargs[-1]["operation"] == "delete"


def test_connection_secrets_reach_the_connector_but_never_the_table(served, counting, settings, dynamodb_client):
    client = AsyncConnectorServiceClientSync(served.url)
    secret = "s3cr3t-value-9f2c"
    request = echo_request(task_type="counting", secrets={"api_key": secret}, configs={"region": "eu-west-1"})
    handle = client.create_task(request).resource_meta
    category = pb.TaskCategory(name="counting", version=0)
    client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=category, connection=request.connection))
    received = [call for call in counting.kwargs if call.get("api_key") == secret]
    assert {call["operation"] for call in received} == {"create", "get"}
    assert all(call["region"] == "eu-west-1" for call in received)
    assert secret not in repr(scan_table(dynamodb_client, settings.tasks_table))


def test_unknown_task_type_is_not_found_naming_what_is_served(client):
    error = expect_error(Code.NOT_FOUND, client.create_task, echo_request(task_type="bigquery"))
    assert "bigquery" in error.message and "echo (version 0)" in error.message


def test_missing_template_or_type_is_invalid_argument(client):
    expect_error(Code.INVALID_ARGUMENT, client.create_task, pb.CreateTaskRequest(output_prefix="s3://x"))
    request = echo_request()
    request.template.type = ""
    expect_error(Code.INVALID_ARGUMENT, client.create_task, request)


def test_bad_echo_configuration_is_invalid_argument(client):
    expect_error(Code.INVALID_ARGUMENT, client.create_task, echo_request(custom={"delay_seconds": "soon"}))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/proto", b"\xff\xff\xff\x0f\x01"),
        ("application/json", b"{not json"),
        ("application/json", b'{"template": 5}'),
    ],
)
def test_malformed_body_is_invalid_argument(served, content_type, body):
    response = httpx.post(
        f"{served.url}/flyteidl2.connector.AsyncConnectorService/CreateTask",
        content=body,
        headers={"content-type": content_type},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"


def test_body_over_the_limit_is_resource_exhausted(served, settings):
    response = httpx.post(
        f"{served.url}/flyteidl2.connector.AsyncConnectorService/CreateTask",
        content=b"\0" * (settings.max_request_bytes + 1),
        headers={"content-type": "application/proto"},
    )
    assert response.json()["code"] == "resource_exhausted"


def test_unknown_malformed_forged_and_mismatched_handles(client):
    handle = client.create_task(echo_request()).resource_meta
    parsed = TaskHandle.decode(handle)
    forged = TaskHandle(parsed.action_digest, parsed.attempt, b"\0" * 16).encode()
    never = TaskHandle(b"\1" * 16, 0, b"\2" * 16).encode()
    for bad in (forged, never):
        expect_error(Code.NOT_FOUND, client.get_task, pb.GetTaskRequest(resource_meta=bad, task_category=ECHO))
        expect_error(Code.NOT_FOUND, client.delete_task, pb.DeleteTaskRequest(resource_meta=bad, task_category=ECHO))
    for bad in (b"", b"garbage", b"t1" + b"!" * 48, handle[:-1]):
        expect_error(Code.INVALID_ARGUMENT, client.get_task, pb.GetTaskRequest(resource_meta=bad, task_category=ECHO))
    other = pb.TaskCategory(name="counting", version=0)
    expect_error(Code.INVALID_ARGUMENT, client.get_task, pb.GetTaskRequest(resource_meta=handle, task_category=other))
    expect_error(Code.INVALID_ARGUMENT, client.get_task, pb.GetTaskRequest(resource_meta=handle))


def released_claim(dynamodb_client: Any, table: str, run: str) -> TaskRecord:
    """The record a failed create leaves: claimed, its lease released, the request kept to replay."""
    [record] = [r for r in map(TaskRecord.from_item, scan_table(dynamodb_client, table)) if r.execution["run"] == run]
    assert record.state == CLAIMED and record.lease_expires_at <= time.time() and record.create_request
    return record


def test_connector_exception_is_internal_with_its_message_and_keeps_a_released_claim(client, settings, dynamodb_client):
    error = expect_error(Code.INTERNAL, client.create_task, echo_request(task_type="failing", run="failing-run"))
    assert "quota exceeded" in error.message and "Traceback" not in error.message
    record = released_claim(dynamodb_client, settings.tasks_table, "failing-run")
    assert "create failed (internal)" in record.message and "quota exceeded" in record.message


def test_connector_past_its_deadline_is_deadline_exceeded_and_keeps_a_released_claim(client, settings, dynamodb_client):
    started = time.monotonic()
    expect_error(Code.DEADLINE_EXCEEDED, client.create_task, echo_request(task_type="stalling", run="stalling-run"))
    assert time.monotonic() - started < settings.connector_timeout_seconds + 2
    assert "deadline_exceeded" in released_claim(dynamodb_client, settings.tasks_table, "stalling-run").message


def test_metrics_and_log_stream(client):
    handle = client.create_task(echo_request(custom={"delay_seconds": 5})).resource_meta
    metrics = client.get_task_metrics(pb.GetTaskMetricsRequest(resource_meta=handle, task_category=ECHO))
    assert [r.metric for r in metrics.results] == ["elapsed_seconds"]
    parts = list(client.get_task_logs(pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO)))
    assert parts[0].HasField("header")
    lines = [line.message for part in parts[1:] for line in part.body.lines]
    assert any("delay of 5 s" in line for line in lines)


def test_operations_a_connector_lacks_are_unimplemented(client):
    category = pb.TaskCategory(name="counting", version=0)
    handle = client.create_task(echo_request(task_type="counting")).resource_meta
    expect_error(
        Code.UNIMPLEMENTED,
        client.get_task_metrics,
        pb.GetTaskMetricsRequest(resource_meta=handle, task_category=category),
    )
    with pytest.raises(ConnectError) as caught:
        list(client.get_task_logs(pb.GetTaskLogsRequest(resource_meta=handle, task_category=category)))
    assert caught.value.code == Code.UNIMPLEMENTED


def test_unreachable_dynamodb_is_unavailable(settings):
    from connectors.dev.local_dynamodb import free_port
    from connectors.store import new_client

    dead = new_client(f"http://127.0.0.1:{free_port()}")
    registry = ConnectorRegistry([EchoConnector()])
    with ServedApp(create_app(make_service(settings, dead, registry))) as server:
        client = AsyncConnectorServiceClientSync(server.url)
        expect_error(Code.UNAVAILABLE, client.create_task, echo_request())
        handle = TaskHandle(b"\1" * 16, 0, b"\2" * 16).encode()
        expect_error(Code.UNAVAILABLE, client.get_task, pb.GetTaskRequest(resource_meta=handle, task_category=ECHO))


def test_healthz(served):
    response = httpx.get(f"{served.url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_the_callers_deadline_shortens_the_connector_deadline(settings, dynamodb_client):
    """CONNECTOR_TIMEOUT_SECONDS is 8 s, the client's connect-timeout-ms 2.5 s: the server answers
    deadline_exceeded itself, before the client gives up, keeping time back to release its claim."""
    from dataclasses import replace

    registry = ConnectorRegistry([StallingConnector()])
    patient = make_service(replace(settings, connector_timeout_seconds=8.0), dynamodb_client, registry)
    with ServedApp(create_app(patient)) as server:
        client = AsyncConnectorServiceClientSync(server.url, timeout_ms=2500)
        started = time.monotonic()
        error = expect_error(
            Code.DEADLINE_EXCEEDED, client.create_task, echo_request(task_type="stalling", run="impatient-run")
        )
        elapsed = time.monotonic() - started
    assert "connector Stalling Connector did not finish create" in error.message  # the server's own answer
    assert elapsed < 2.4
    released_claim(dynamodb_client, settings.tasks_table, "impatient-run")
