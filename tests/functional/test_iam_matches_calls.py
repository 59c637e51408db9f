"""Each function's IAM grants in template.yaml are exactly the DynamoDB calls its code makes.

For every function of the template, its operations are driven (through the app it serves, with
only its own operations, or the reaper as its handler runs it) over the paths that write
differently: successes, failures, retries that supersede older attempts, the reaper's cancels.
Every DynamoDB call the store's client sends is recorded as (action, table or index), on a
fresh client per function, and the set must equal what template.yaml grants that function: a
grant no code uses, and a call without a grant (AccessDenied in AWS), both fail.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync, ConnectorMetadataServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors import AsyncConnector, Resource, ResourceMeta
from connectors.builtin import EchoConnector
from connectors.dev.invoke import load_template
from connectors.errors import Code, invalid_argument
from connectors.event_queue import receive_records
from connectors.event_receiver import EventReceiver
from connectors.job_events import JobEvents, detail_field
from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.service import ConnectorService
from connectors.settings import Settings
from connectors.store import TaskHandle, new_client
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, make_table, scan_table
from tests.flyte_requests import echo_request
from tests.remote_ledger import for_attempt
from tests.sample_connectors import BulkyConnector, CountingConnector, FailingConnector
from tests.unit.test_template import dynamodb_grants
from tests.unit.test_template_aws_connectors import FUNCTION_OPERATIONS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
TABLE_ARN = {"Fn::GetAtt": ["TasksTable", "Arn"]}
INDEX_ARN_PREFIX = "${TasksTable.Arn}/index/"

COUNTING = pb.TaskCategory(name="counting", version=0)
TROUBLE = pb.TaskCategory(name="trouble", version=0)
BULKY = pb.TaskCategory(name="bulky", version=0)
ECHO = pb.TaskCategory(name="echo", version=0)
EVENTED = pb.TaskCategory(name="evented", version=0)


# -- what the template grants ---------------------------------------------------------------


def functions() -> dict[str, dict[str, Any]]:
    return {name: r for name, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def _resource(resource: Any) -> str:
    """A granted resource as the recorder names it: ``table`` or ``index/<name>``."""
    if resource == TABLE_ARN:
        return "table"
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        if text.startswith(INDEX_ARN_PREFIX):
            return "index/" + text.removeprefix(INDEX_ARN_PREFIX)  # index/* would match no recorded call
    raise AssertionError(f"a DynamoDB grant on a resource that is neither the table nor one of its indexes: {resource}")


def granted(logical_id: str) -> set[tuple[str, str]]:
    """The function's DynamoDB grants (parsed as the template test does), resources named here."""
    return {(verb, _resource(json.loads(resource))) for verb, resource in dynamodb_grants(functions()[logical_id])}


def served_operations(logical_id: str) -> tuple[list[str], bool]:
    """The operations (and /healthz) the function's handler module serves: its lambda_handler call."""
    module = functions()[logical_id]["Properties"]["Handler"].rpartition(".")[0]
    tree = ast.parse(ROOT.joinpath(*module.split(".")).with_suffix(".py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lambda_handler":
            health = any(k.arg == "health" and ast.literal_eval(k.value) for k in node.keywords)
            return ast.literal_eval(node.args[0]), health
    raise AssertionError(f"{module} calls no lambda_handler")


# -- what the code calls --------------------------------------------------------------------


class CallRecorder:
    """A fresh DynamoDB client (one function's) that records each call it sends: (action,
    ``table`` or ``index/<IndexName>``), as IAM authorizes it. ``operations`` gets the connector
    operations the function's service calls (create, get, ...): the AWS connectors' grants per
    function follow FUNCTION_OPERATIONS (tests/unit/test_template_aws_connectors.py)."""

    def __init__(self, endpoint_url: str, table: str) -> None:
        self.client = new_client(endpoint_url)
        self.table = table
        self.calls: set[tuple[str, str]] = set()
        self.operations: set[str] = set()
        self.client.meta.events.register("before-call.dynamodb", self._record)

    def watch(self, service: ConnectorService) -> None:
        """Record each connector operation ``service`` calls (the canceller shares its ConnectorCalls)."""
        calls = service.calls
        call, stream = calls.call, calls.stream

        def recorded_call(connector: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
            self.operations.add(operation)
            return call(connector, operation, *args, **kwargs)

        def recorded_stream(connector: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
            self.operations.add(operation)
            return stream(connector, operation, *args, **kwargs)

        calls.call, calls.stream = recorded_call, recorded_stream

    def _record(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        assert body.get("TableName") == self.table, (model.name, body.get("TableName"))
        self.calls.add((model.name, f"index/{body['IndexName']}" if "IndexName" in body else "table"))


@dataclass
class TroubleMeta(ResourceMeta):
    job_id: str
    padding: str = ""
    delete_fails: bool = False


class TroubleConnector(AsyncConnector[TroubleMeta]):
    """Trouble on demand from ``template.custom``: ``create_fails``, ``meta_bytes`` (metadata too
    large to keep), ``delete_fails`` (the job cannot be stopped); under ``attempts`` ({"N": {...}})
    for attempt N only (every attempt of an action sends the same template)."""

    name = "Trouble Connector"
    task_type_name = "trouble"
    metadata_type = TroubleMeta

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = for_attempt(json_format.MessageToDict(task_template.custom), task_execution_metadata)
        if custom.get("create_fails"):
            raise invalid_argument("the remote API refused the job")  # refused outright: it started nothing
        return TroubleMeta(
            job_id=f"job-{kwargs['idempotency_token']}",
            padding="p" * int(custom.get("meta_bytes", 0)),
            delete_fails=bool(custom.get("delete_fails")),
        )

    async def get(self, resource_meta: TroubleMeta, **kwargs) -> Resource:
        return Resource(phase=TaskExecution.RUNNING, message=f"{resource_meta.job_id} running")

    async def delete(self, resource_meta: TroubleMeta, **kwargs) -> None:
        if resource_meta.delete_fails:
            raise RuntimeError("the remote API will not stop the job")


@dataclass
class EventedMeta(ResourceMeta):
    job_id: str


class EventedConnector(AsyncConnector[EventedMeta]):
    """A connector whose remote publishes state-change events (as the AWS connectors' services do):
    its tasks are indexed by job at create, and the StatusEventsFunction applies their events."""

    name = "Evented Connector"
    task_type_name = "evented"
    metadata_type = EventedMeta
    job_events = JobEvents("test.jobs", "Test Job State Change", detail_field("jobId"))
    PHASES: ClassVar[dict[str, int]] = {
        "RUNNING": TaskExecution.RUNNING,
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,
    }

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        return EventedMeta(job_id=f"job-{kwargs['idempotency_token']}")

    async def get(self, resource_meta: EventedMeta, **kwargs) -> Resource:
        return Resource(phase=TaskExecution.RUNNING, message="running")

    async def delete(self, resource_meta: EventedMeta, **kwargs) -> None:
        pass

    def job_key(self, resource_meta: EventedMeta) -> str:
        return resource_meta.job_id

    def resource_from_event(self, detail, resource_meta: EventedMeta) -> Resource | None:
        phase = self.PHASES.get(detail.get("status"))
        return None if phase is None else Resource(phase=phase, message=f"job {detail['status'].lower()}")


def registry() -> ConnectorRegistry:
    return ConnectorRegistry(
        [
            CountingConnector(),
            FailingConnector(),
            TroubleConnector(),
            BulkyConnector(),
            EchoConnector(),
            EventedConnector(),
        ]
    )


@pytest.fixture
def table(dynamodb_client: Any) -> str:
    return make_table(dynamodb_client, "iam")


@pytest.fixture
def seed(dynamodb_client: Any, table: str) -> ConnectorService:
    """Another function's service (its own client, not recorded) that makes the records to work on."""
    return make_service(Settings(tasks_table=table, abandoned_after_minutes=10), dynamodb_client, registry())


def function_service(dynamodb: Any, table: str, **settings: Any) -> tuple[ConnectorService, CallRecorder]:
    recorder = CallRecorder(dynamodb.endpoint_url, table)
    settings = {"tasks_table": table, "abandoned_after_minutes": 10, **settings}
    service = make_service(Settings(**settings), recorder.client, registry())
    recorder.watch(service)
    return service, recorder


def served(logical_id: str, service: ConnectorService) -> ServedApp:
    operations, health = served_operations(logical_id)
    return ServedApp(create_app(service, operations, health=health))


def create(seed: ConnectorService, **kwargs: Any) -> bytes:
    return asyncio.run(seed.create_task(echo_request(**kwargs))).resource_meta


def code_of(call: Any) -> Code | None:
    try:
        call()
    except ConnectError as error:
        return error.code
    return None


def assert_calls_are_grants(logical_id: str, recorder: CallRecorder) -> None:
    assert recorder.calls == granted(logical_id), (
        f"{logical_id} called {sorted(recorder.calls)} but template.yaml grants {sorted(granted(logical_id))}"
    )
    assert recorder.operations == FUNCTION_OPERATIONS[logical_id], (
        f"{logical_id} called connector operations {sorted(recorder.operations)}; the AWS connectors' grants "
        f"assume {sorted(FUNCTION_OPERATIONS[logical_id])}"
    )


# -- the functions ----------------------------------------------------------------------------


def test_every_function_is_checked_here() -> None:
    checked = {
        name.removeprefix("test_").removesuffix("_calls_exactly_its_grants")
        for name in globals()
        if name.endswith("_calls_exactly_its_grants")
    }
    assert checked == {
        "create_task",
        "get_task",
        "delete_task",
        "get_task_metrics",
        "get_task_logs",
        "connector_metadata",
        "reaper",
        "status_events",
    }
    assert set(functions()) == {
        "CreateTaskFunction",
        "GetTaskFunction",
        "DeleteTaskFunction",
        "GetTaskMetricsFunction",
        "GetTaskLogsFunction",
        "ConnectorMetadataFunction",
        "AbandonedTaskReaperFunction",
        "StatusEventsFunction",
    }


def test_create_task_calls_exactly_its_grants(dynamodb, dynamodb_client, table) -> None:
    service, recorder = function_service(dynamodb, table)
    with served("CreateTaskFunction", service) as app:
        client = AsyncConnectorServiceClientSync(app.url)
        # Created (claim, finish), and created again: the claim loses and the first handle is answered.
        first = client.create_task(echo_request(task_type="counting", run="c1")).resource_meta
        assert client.create_task(echo_request(task_type="counting", run="c1")).resource_meta == first
        # Over REST too.
        rest = httpx.post(
            f"{app.url}/api/v1/connector/task",
            headers={"content-type": "application/json"},
            content=json_format.MessageToJson(echo_request(task_type="counting", run="c2")),
        )
        assert rest.status_code == 200, rest.text
        # The connector fails: the claim is released.
        assert code_of(lambda: client.create_task(echo_request(task_type="failing", run="c3"))) == Code.INTERNAL
        # Metadata too large to keep: its job is cancelled and the record ended, or, when cancelling
        # fails, the claim is released for a canceller.
        too_large = {"meta_bytes": 390_000}
        assert (
            code_of(lambda: client.create_task(echo_request(task_type="trouble", run="c4", custom=too_large)))
            == Code.RESOURCE_EXHAUSTED
        )
        assert (
            code_of(
                lambda: client.create_task(
                    echo_request(task_type="trouble", run="c5", custom={**too_large, "delete_fails": True})
                )
            )
            == Code.RESOURCE_EXHAUSTED
        )
        # Retries that supersede older attempts: an active one (cancelled), one whose job will not stop
        # (cancel failed), and a released claim (create replayed with its token, refused: ended).
        client.create_task(echo_request(task_type="counting", run="c6", attempt=0))
        client.create_task(echo_request(task_type="counting", run="c6", attempt=1))
        stuck_0 = {"attempts": {"0": {"delete_fails": True}}}
        client.create_task(echo_request(task_type="trouble", run="c7", attempt=0, custom=stuck_0))
        client.create_task(echo_request(task_type="trouble", run="c7", attempt=1, custom=stuck_0))
        refused_0 = {"attempts": {"0": {"create_fails": True}}}
        assert (
            code_of(
                lambda: client.create_task(echo_request(task_type="trouble", run="c8", attempt=0, custom=refused_0))
            )
            == Code.INVALID_ARGUMENT
        )
        client.create_task(echo_request(task_type="trouble", run="c8", attempt=1, custom=refused_0))

    assert_calls_are_grants("CreateTaskFunction", recorder)
    # Each path above really ran.
    by_run = {}
    for item in scan_table(dynamodb_client, table):
        by_run[(item["execution"]["M"]["run"]["S"], int(item["attempt"]["N"]))] = item
    assert by_run[("c3", 0)]["state"]["S"] == "claimed"  # released
    assert by_run[("c4", 0)]["state"]["S"] == "ended"  # its job cancelled
    assert by_run[("c5", 0)]["state"]["S"] == "claimed"  # released: cancelling its job failed
    assert by_run[("c6", 0)]["state"]["S"] == "ended" and by_run[("c6", 1)]["state"]["S"] == "active"
    assert by_run[("c7", 0)]["state"]["S"] == "cancelling"  # cancel failed, left for the reaper
    assert by_run[("c8", 0)]["state"]["S"] == "ended" and by_run[("c8", 1)]["state"]["S"] == "active"


def test_get_task_calls_exactly_its_grants(dynamodb, table, seed) -> None:
    running = create(seed, task_type="counting", run="g1")
    done = create(seed, run="g2")  # echo: SUCCEEDED at the first poll
    stuck_0 = {"attempts": {"0": {"delete_fails": True}}}
    being_cancelled = create(seed, task_type="trouble", run="g3", attempt=0, custom=stuck_0)
    create(seed, task_type="trouble", run="g3", attempt=1, custom=stuck_0)  # leaves attempt 0 cancelling
    real = TaskHandle.decode(running)
    forged = TaskHandle(action_digest=real.action_digest, attempt=real.attempt + 5, secret=real.secret).encode()

    service, recorder = function_service(dynamodb, table)
    with served("GetTaskFunction", service) as app:
        client = AsyncConnectorServiceClientSync(app.url)

        def poll(handle: bytes, category: pb.TaskCategory) -> pb.Resource:
            return client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=category)).resource

        assert poll(running, COUNTING).phase == TaskExecution.RUNNING  # a new phase is recorded
        assert poll(running, COUNTING).phase == TaskExecution.RUNNING  # nothing changed: no write
        in_twenty_minutes = time.time() + 20 * 60
        service.store.clock = lambda: in_twenty_minutes  # the heartbeat is due
        assert poll(running, COUNTING).phase == TaskExecution.RUNNING
        assert poll(done, ECHO).phase == TaskExecution.SUCCEEDED  # ended
        assert poll(done, ECHO).phase == TaskExecution.SUCCEEDED  # read only
        assert poll(being_cancelled, TROUBLE).phase != TaskExecution.RUNNING
        assert code_of(lambda: poll(forged, COUNTING)) == Code.NOT_FOUND
    assert_calls_are_grants("GetTaskFunction", recorder)


def test_delete_task_calls_exactly_its_grants(dynamodb, table, seed) -> None:
    running = create(seed, task_type="counting", run="d1")
    stuck = create(seed, task_type="trouble", run="d2", custom={"delete_fails": True})

    service, recorder = function_service(dynamodb, table)
    with served("DeleteTaskFunction", service) as app:
        client = AsyncConnectorServiceClientSync(app.url)
        for _ in range(2):  # deleted, then already ended
            client.delete_task(pb.DeleteTaskRequest(resource_meta=running, task_category=COUNTING))
        assert (
            code_of(lambda: client.delete_task(pb.DeleteTaskRequest(resource_meta=stuck, task_category=TROUBLE)))
            == Code.INTERNAL
        )
    assert seed.store.load(TaskHandle.decode(running)).state == "ended"
    assert_calls_are_grants("DeleteTaskFunction", recorder)


def test_get_task_metrics_calls_exactly_its_grants(dynamodb, table, seed) -> None:
    bulky = create(seed, task_type="bulky", run="m1", custom={"answer_bytes": 10})
    counting = create(seed, task_type="counting", run="m2")

    service, recorder = function_service(dynamodb, table)
    with served("GetTaskMetricsFunction", service) as app:
        client = AsyncConnectorServiceClientSync(app.url)
        metrics = client.get_task_metrics(pb.GetTaskMetricsRequest(resource_meta=bulky, task_category=BULKY))
        assert metrics.results[0].metric == "bulk"
        assert (
            code_of(
                lambda: client.get_task_metrics(
                    pb.GetTaskMetricsRequest(resource_meta=counting, task_category=COUNTING)
                )
            )
            == Code.UNIMPLEMENTED
        )
    assert_calls_are_grants("GetTaskMetricsFunction", recorder)


def test_get_task_logs_calls_exactly_its_grants(dynamodb, table, seed) -> None:
    bulky = create(seed, task_type="bulky", run="l1", custom={"answer_bytes": 10})
    counting = create(seed, task_type="counting", run="l2")

    service, recorder = function_service(dynamodb, table)
    with served("GetTaskLogsFunction", service) as app:
        client = AsyncConnectorServiceClientSync(app.url)
        logs = list(client.get_task_logs(pb.GetTaskLogsRequest(resource_meta=bulky, task_category=BULKY)))
        assert logs[0].HasField("header") and logs[1].body.lines
        assert (
            code_of(
                lambda: list(
                    client.get_task_logs(pb.GetTaskLogsRequest(resource_meta=counting, task_category=COUNTING))
                )
            )
            == Code.UNIMPLEMENTED
        )
    assert_calls_are_grants("GetTaskLogsFunction", recorder)


def test_connector_metadata_calls_exactly_its_grants(dynamodb, table) -> None:
    service, recorder = function_service(dynamodb, table)
    with served("ConnectorMetadataFunction", service) as app:
        client = ConnectorMetadataServiceClientSync(app.url)
        assert client.list_connectors(pb.ListConnectorsRequest()).connectors
        assert client.get_connector(pb.GetConnectorRequest(name="Echo Connector")).connector.name == "Echo Connector"
        assert httpx.get(f"{app.url}/healthz").status_code == 200
        assert httpx.get(f"{app.url}/api/v1/connectors").status_code == 200
        assert httpx.get(f"{app.url}/api/v1/connector/Nope").status_code == 404
    assert recorder.calls == set() == granted("ConnectorMetadataFunction")
    assert recorder.operations == set() == FUNCTION_OPERATIONS["ConnectorMetadataFunction"]


def test_reaper_calls_exactly_its_grants(dynamodb, dynamodb_client, table, seed) -> None:
    create(seed, task_type="counting", run="r1")  # stale and active: cancelled
    create(seed, task_type="trouble", run="r2", custom={"delete_fails": True})  # its cancel fails
    # A released claim: create is replayed with its token, and refused.
    assert (
        code_of(lambda: create(seed, task_type="trouble", run="r3", custom={"create_fails": True}))
        == Code.INVALID_ARGUMENT
    )

    service, recorder = function_service(dynamodb, table)
    in_eleven_minutes = time.time() + 11 * 60
    first = asyncio.run(reap_abandoned(service.canceller, now=in_eleven_minutes))
    # The next pass finds the one whose cancel failed again (lease expired, heartbeat zeroed).
    second = asyncio.run(reap_abandoned(service.canceller, now=in_eleven_minutes))

    assert_calls_are_grants("AbandonedTaskReaperFunction", recorder)
    # Each path above really ran.
    assert len(first.cancelled) == 2 and len(first.failed) == 1, first.as_dict()
    assert not second.cancelled and len(second.failed) == 1, second.as_dict()
    states = sorted(item["state"]["S"] for item in scan_table(dynamodb_client, table))
    assert states == ["cancelling", "ended", "ended"]


def test_status_events_calls_exactly_its_grants(dynamodb, dynamodb_client, table, seed) -> None:
    jobs = {}
    for run in ("e1", "e2", "e3"):
        handle = TaskHandle.decode(create(seed, task_type="evented", run=run))
        jobs[run] = seed.store.load(handle).job_key.split("#", 1)[1]

    def message(run: str, status: str, second: int) -> dict[str, Any]:
        event = {
            "version": "0",
            "id": f"{run}-{status}",
            "detail-type": "Test Job State Change",
            "source": "test.jobs",
            "time": f"2026-12-07T03:00:{second:02d}Z",
            "detail": {"jobId": jobs.get(run, run), "status": status},
        }
        return {"messageId": f"{run}-{status}-{second}", "body": json.dumps(event)}

    service, recorder = function_service(dynamodb, table, status_safety_read_minutes=5.0)
    batch = [
        message("e1", "RUNNING", 1),  # applied
        message("e1", "RUNNING", 1),  # delivered twice: unchanged
        message("e2", "SUCCEEDED", 2),  # due: the next poll reads the job
        message("e3", "FAILED", 3),  # ended: the record ends, and leaves the job index
        message("e3", "RUNNING", 4),  # about an ended task: finds none
        message("not-a-job-of-this-service", "RUNNING", 5),
        {"messageId": "bad", "body": "not an event"},
    ]
    assert asyncio.run(receive_records(EventReceiver(service), batch)) == {"batchItemFailures": []}

    assert_calls_are_grants("StatusEventsFunction", recorder)
    # Each path above really ran.
    by_run = {item["execution"]["M"]["run"]["S"]: item for item in scan_table(dynamodb_client, table)}
    assert int(by_run["e1"]["phase"]["N"]) == TaskExecution.RUNNING and "status_pushed_at" in by_run["e1"]
    assert by_run["e2"]["state"]["S"] == "active" and "status_read_at" not in by_run["e2"]
    assert by_run["e3"]["state"]["S"] == "ended" and int(by_run["e3"]["phase"]["N"]) == TaskExecution.FAILED
