"""Every events/*.json, as API Gateway sends it, through its Lambda handler, in-process."""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path

import pytest
from flyteidl2.connector import connector_pb2 as pb

from connectors.connect_envelope import END_STREAM, end_stream_error, read_all
from connectors.dev.events import EVENT_FUNCTIONS, all_events, seed_example_task
from connectors.store import TaskHandle, TaskStore
from tests.conftest import LambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
HANDLER_MODULES = {
    "CreateTaskFunction": "handlers.create_task",
    "GetTaskFunction": "handlers.get_task",
    "DeleteTaskFunction": "handlers.delete_task",
    "GetTaskMetricsFunction": "handlers.get_task_metrics",
    "GetTaskLogsFunction": "handlers.get_task_logs",
    "ConnectorMetadataFunction": "handlers.connector_metadata",
    "AbandonedTaskReaperFunction": "handlers.reap_abandoned",
    "StatusEventsFunction": "handlers.status_events",
}
RESPONSES = {
    "create_task": pb.CreateTaskResponse,
    "get_task": pb.GetTaskResponse,
    "delete_task": pb.DeleteTaskResponse,
    "get_task_metrics": pb.GetTaskMetricsResponse,
    "list_connectors": pb.ListConnectorsResponse,
    "get_connector": pb.GetConnectorResponse,
}


@pytest.fixture(scope="module")
def seeded(lambda_environment, dynamodb_client) -> bytes:
    return seed_example_task(TaskStore(lambda_environment, dynamodb_client))


def invoke(name: str) -> dict:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    module = importlib.import_module(HANDLER_MODULES[EVENT_FUNCTIONS[name]])
    return module.handler(event, LambdaContext())


def body_bytes(response: dict) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def test_event_files_are_current():
    """events/ is what connectors.dev.events builds (regenerate with python -m connectors.dev.events)."""
    for name, event in all_events().items():
        assert json.loads((EVENTS / f"{name}.json").read_text()) == event, name
    assert {path.stem for path in EVENTS.glob("*.json")} == set(all_events())


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_connect_event_answers_200_with_a_decodable_body(name, seeded):
    response = invoke(name)
    assert response["statusCode"] == 200, body_bytes(response)
    message = RESPONSES[name].FromString(body_bytes(response))
    if name == "create_task":
        assert TaskHandle.decode(message.resource_meta).attempt == 0
    if name == "get_task":
        assert message.resource.phase in (3, 4)  # SUCCEEDED, or ABORTED once delete_task ran first
    if name == "list_connectors":
        assert any(c.name == "echo" for m in message.connectors for c in m.supported_task_categories)


def test_log_stream_event_answers_enveloped_messages(seeded):
    response = invoke("get_task_logs")
    assert response["statusCode"] == 200
    messages = []
    for flags, payload in read_all(body_bytes(response)):
        if flags & END_STREAM:
            assert end_stream_error(payload) is None
        else:
            messages.append(pb.GetTaskLogsResponse.FromString(payload))
    assert messages[0].HasField("header") and messages[1].body.lines


def test_rest_and_health_events(seeded):
    rest = invoke("get_task_rest")
    assert rest["statusCode"] == 200 and "phase" in json.loads(body_bytes(rest))["resource"]
    health = invoke("healthz")
    assert health["statusCode"] == 200 and json.loads(body_bytes(health))["status"] == "ok"


def test_a_function_serves_only_its_own_operation(seeded):
    event = json.loads((EVENTS / "list_connectors.json").read_text())
    module = importlib.import_module(HANDLER_MODULES["CreateTaskFunction"])
    response = module.handler(event, LambdaContext())
    assert response["statusCode"] == 404


def test_handlers_work_after_an_asyncio_run_in_the_same_process(seeded):
    import asyncio

    asyncio.run(asyncio.sleep(0))  # leaves the main thread with no current event loop
    assert invoke("list_connectors")["statusCode"] == 200


def test_the_scheduled_event_runs_the_reaper(seeded):
    report = invoke("reap_abandoned")
    assert report["cancelled"] == 0 and report["failed"] == 0  # the example task was polled just now


def test_the_sqs_batch_runs_the_status_events_receiver(seeded):
    # A Batch job no task of this table has: nothing to apply, nothing to deliver again.
    assert invoke("status_events") == {"batchItemFailures": []}
