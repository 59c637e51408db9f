"""The same app speaks gRPC (HTTP/2, h2c) as `connectors serve` runs it: flyteidl2's gRPC stubs,
the client a stock Flyte executor uses, drive a task end to end and see gRPC status codes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.dev.local_dynamodb import HOST, free_port
from connectors.dev.serve import run_hypercorn
from connectors.transport import create_app
from tests.flyte_requests import ECHO, echo_request


@pytest.fixture(scope="module")
def channel(service) -> Iterator[grpc.Channel]:
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(run_hypercorn(create_app(service), HOST, port, stop.wait)), daemon=True
    )
    thread.start()
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield channel
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)


def test_a_flyte_executor_can_drive_a_task_over_grpc(channel):
    metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
    listed = metadata.ListConnectors(pb.ListConnectorsRequest(), timeout=5)
    assert any(c.name == "echo" for m in listed.connectors for c in m.supported_task_categories)

    tasks = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    handle = tasks.CreateTask(echo_request(x=11, custom={"delay_seconds": 0.2}), timeout=10).resource_meta
    deadline = time.monotonic() + 10
    while (
        resource := tasks.GetTask(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO), timeout=5).resource
    ).phase != TaskExecution.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert {lit.name: lit.value.scalar.primitive.integer for lit in resource.outputs.literals}["x"] == 11
    logs = list(tasks.GetTaskLogs(pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO), timeout=5))
    assert logs[0].HasField("header") and logs[1].body.lines
    tasks.DeleteTask(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO), timeout=5)


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (echo_request(task_type="bigquery"), grpc.StatusCode.NOT_FOUND),
        (pb.CreateTaskRequest(), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_errors_arrive_as_grpc_status_codes(channel, request_, status):
    tasks = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        tasks.CreateTask(request_, timeout=5)
    assert caught.value.code() == status


def test_a_malformed_handle_is_invalid_argument_over_grpc(channel):
    tasks = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        tasks.GetTask(pb.GetTaskRequest(resource_meta=b"junk", task_category=ECHO), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
