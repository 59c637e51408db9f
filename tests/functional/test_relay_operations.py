"""The relay as operators run it: it rides over API blips, answers health probes, exposes metrics.

The API is the real app (echo connector, moto's DynamoDB) served over loopback HTTP behind
``FaultyGateway``, an ASGI layer that answers chosen calls itself, as API Gateway does when a
function is throttled, crashes or times out (a status and ``{"message": ...}``, no Connect code),
and passes everything else to the app. The relay runs as ``connectors relay`` runs it (unsigned:
signing is test_relay.py's subject), flyteidl2's gRPC stubs call it as the executor does, the
standard ``grpc.health.v1`` stub probes it as Kubernetes does, and its ``/metrics`` is scraped
over HTTP and parsed as Prometheus parses it.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.core.execution_pb2 import TaskExecution
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from connectors.builtin import EchoConnector
from connectors.connect_envelope import END_STREAM, encode
from connectors.dev.local_dynamodb import HOST, free_port
from connectors.registry import ConnectorRegistry
from connectors.relay import RetryPolicy, retry_reason
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service
from tests.flyte_requests import ECHO, echo_request
from tests.functional.test_relay import RunningRelay

SERVICES = ("", "flyteidl2.connector.AsyncConnectorService", "flyteidl2.connector.ConnectorMetadataService")
FAST = {"base_delay": 0.01, "max_delay": 0.05}  # quick backoff, so tests do not wait on jitter


@dataclass
class Fault:
    status: int
    body: bytes
    content_type: str = "application/json"
    times: int | None = 1  # None: every time


class FaultyGateway:
    """In front of ``app``: answers the next calls of a method with the faults queued for it,
    passes the rest on; ``seen`` records (method, arrival time) of every request."""

    def __init__(self, app) -> None:
        self.app = app
        self.faults: dict[str, list[Fault]] = {}
        self.seen: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def fail(
        self,
        method: str,
        status: int,
        body: bytes | dict,
        *,
        times: int | None = 1,
        content_type: str = "application/json",
    ) -> None:
        payload = json.dumps(body).encode() if isinstance(body, dict) else body
        with self._lock:
            self.faults.setdefault(method, []).append(Fault(status, payload, content_type, times))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def count(self, method: str) -> int:
        return sum(1 for seen, _ in self.seen if seen == method)

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            self.seen.append((method, time.monotonic()))
            queue = self.faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    queue.pop(0)
            return fault

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        fault = self._next_fault(scope["path"].rsplit("/", 1)[-1])
        if fault is None:
            return await self.app(scope, receive, send)
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": fault.status,
                "headers": [(b"content-type", fault.content_type.encode()), (b"apigw-requestid", b"fault=")],
            }
        )
        await send({"type": "http.response.body", "body": fault.body})


THROTTLED = {"message": "Too Many Requests"}
UNAVAILABLE_503 = {"message": "Service Unavailable"}
BAD_GATEWAY_HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class Relay(RunningRelay):
    """``serve()`` with metrics on a free loopback port (test_relay's RunningRelay), with stubs."""

    def __init__(self, endpoint: str, retry: RetryPolicy | None = None) -> None:
        self.metrics_port = 0
        super().__init__(
            endpoint, unsigned=True, retry=retry, metrics_listen=f"{HOST}:0", metrics_ready=self._metrics_started
        )

    def _metrics_started(self, port: int) -> None:
        self.metrics_port = port

    def __enter__(self) -> Relay:  # type: ignore[override]
        self.channel = super().__enter__()
        self.tasks = service_pb2_grpc.AsyncConnectorServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        return self

    def scrape(self) -> str:
        response = httpx.get(f"http://{HOST}:{self.metrics_port}/metrics", timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    def metric(self, name: str, **labels: str) -> float:
        """The value of the sample ``name`` with ``labels`` (a subset) in a fresh scrape; 0 if absent."""
        total = 0.0
        for family in text_string_to_metric_families(self.scrape()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@pytest.fixture(scope="module")
def gateway(settings, dynamodb_client) -> Iterator[tuple[str, FaultyGateway]]:
    faulty = FaultyGateway(create_app(make_service(settings, dynamodb_client, ConnectorRegistry([EchoConnector()]))))
    with ServedApp(faulty) as server:
        yield server.url, faulty


@pytest.fixture
def api(gateway) -> Iterator[FaultyGateway]:
    gateway[1].clear()
    yield gateway[1]
    gateway[1].clear()


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(*args, **kwargs)
        if not hasattr(result, "SerializeToString"):
            list(result)
    return caught.value


def get_task(handle: bytes) -> pb.GetTaskRequest:
    return pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)


def test_one_503_on_get_task_does_not_reach_the_executor(gateway, api):
    with Relay(gateway[0]) as relay:
        for service in SERVICES:
            assert (
                relay.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        handle = relay.tasks.CreateTask(echo_request(x=5), timeout=10).resource_meta

        api.fail("GetTask", 503, UNAVAILABLE_503)  # API Gateway's own answer: no Connect code
        resource = relay.tasks.GetTask(get_task(handle), timeout=10).resource
        assert resource.phase in (TaskExecution.RUNNING, TaskExecution.SUCCEEDED)
        assert api.count("GetTask") == 2  # the 503, then the call that went through

        assert relay.metric("flyte_connector_relay_retries_total", operation="get", reason="http_503") == 1
        assert relay.metric("flyte_connector_requests_success_total", task_type="echo", operation="get") == 1
        assert relay.metric("flyte_connector_requests_success_total", task_type="echo", operation="create") == 1
        assert relay.metric("flyte_connector_requests_failure_total") == 0
        assert relay.metric("flyte_connector_request_latency_seconds_count", task_type="echo", operation="get") == 1
        assert relay.metric("process_resident_memory_bytes") > 0
        relay.tasks.DeleteTask(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO), timeout=5)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, THROTTLED),  # API Gateway or Lambda throttling
        (502, BAD_GATEWAY_HTML),  # an HTML 5xx, as a load balancer answers
        (504, {"message": "Endpoint request timed out"}),
        (503, {"code": "unavailable", "message": "the task table did not answer"}),  # the service's own
    ],
)
def test_passing_failures_are_retried(gateway, api, status, body):
    with Relay(gateway[0], RetryPolicy(**FAST)) as relay:
        api.fail(
            "CreateTask",
            status,
            body,
            times=2,
            content_type="text/html" if isinstance(body, bytes) else "application/json",
        )
        request = echo_request()
        handle = relay.tasks.CreateTask(request, timeout=10).resource_meta
        assert api.count("CreateTask") == 3
        assert relay.tasks.CreateTask(request, timeout=10).resource_meta == handle  # the service de-duplicated it
        reason = retry_reason(status, body.get("code") if isinstance(body, dict) else None)
        assert relay.metric("flyte_connector_relay_retries_total", operation="create", reason=reason) == 2
        assert relay.metric("flyte_connector_requests_success_total", operation="create") == 2


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"code": "invalid_argument", "message": "no"}, grpc.StatusCode.INVALID_ARGUMENT),
        (429, {"code": "resource_exhausted", "message": "too many tasks"}, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (404, {"code": "not_found", "message": "no such task"}, grpc.StatusCode.NOT_FOUND),
        (500, {"code": "internal", "message": "bug"}, grpc.StatusCode.INTERNAL),
        (403, {"message": "Forbidden"}, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_answers_that_would_not_change_are_not_retried(gateway, api, status, body, code):
    with Relay(gateway[0], RetryPolicy(**FAST)) as relay:
        api.fail("GetTask", status, body)
        error = rpc_error(relay.tasks.GetTask, get_task(b"t1whatever"), timeout=5)
        assert error.code() == code
        assert api.count("GetTask") == 1
        assert relay.metric("flyte_connector_relay_retries_total") == 0
        label = "permission_denied" if status == 403 else body["code"]
        assert (
            relay.metric("flyte_connector_requests_failure_total", task_type="echo", operation="get", error_code=label)
            == 1
        )


def test_a_real_invalid_argument_from_the_service_is_not_retried(gateway, api):
    with Relay(gateway[0]) as relay:
        error = rpc_error(relay.tasks.GetTask, get_task(b"junk"), timeout=5)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert api.count("GetTask") == 1


def test_retries_stop_before_the_deadline(gateway, api):
    with Relay(gateway[0], RetryPolicy(max_attempts=1000, base_delay=0.02, max_delay=0.1, margin=0.5)) as relay:
        api.fail("GetTask", 503, UNAVAILABLE_503, times=None)
        started = time.monotonic()
        error = rpc_error(relay.tasks.GetTask, get_task(b"t1x"), timeout=1.5)
        elapsed = time.monotonic() - started
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()  # the API's answer, not a timeout
        assert "503" in error.details()
        assert elapsed < 1.5
        arrivals = [at for method, at in api.seen if method == "GetTask"]
        assert len(arrivals) >= 5  # it did retry, many times
        assert arrivals[-1] < started + 1.5 - 0.3  # and never one inside the last 0.5 s margin (less slack)
        assert (
            relay.metric(
                "flyte_connector_relay_retries_exhausted_total", operation="get", reason="http_503", limit="deadline"
            )
            == 1
        )
        assert relay.metric("flyte_connector_relay_retries_total", operation="get") == len(arrivals) - 1


def test_retries_stop_after_max_attempts(gateway, api):
    with Relay(gateway[0], RetryPolicy(max_attempts=3, **FAST)) as relay:
        api.fail("DeleteTask", 502, BAD_GATEWAY_HTML, times=None, content_type="text/html")
        error = rpc_error(
            relay.tasks.DeleteTask, pb.DeleteTaskRequest(resource_meta=b"t1x", task_category=ECHO), timeout=10
        )
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert api.count("DeleteTask") == 3
        assert relay.metric("flyte_connector_relay_retries_total", operation="delete", reason="http_502") == 2
        assert relay.metric("flyte_connector_relay_retries_exhausted_total", operation="delete", limit="attempts") == 1
        assert relay.metric("flyte_connector_requests_failure_total", operation="delete", error_code="unavailable") == 1


HEADER = pb.GetTaskLogsResponse(header=pb.GetTaskLogsResponseHeader(token="t")).SerializeToString()
STREAM_UNAVAILABLE = encode(b'{"error": {"code": "unavailable", "message": "blip"}}', END_STREAM)


def test_a_log_stream_is_retried_only_before_its_first_message(gateway, api):
    with Relay(gateway[0], RetryPolicy(**FAST)) as relay:
        handle = relay.tasks.CreateTask(echo_request(), timeout=10).resource_meta
        logs = pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO)

        api.fail("GetTaskLogs", 502, BAD_GATEWAY_HTML, content_type="text/html")
        api.fail("GetTaskLogs", 200, STREAM_UNAVAILABLE, content_type="application/connect+proto")
        parts = list(relay.tasks.GetTaskLogs(logs, timeout=10))
        assert [part.WhichOneof("part") for part in parts][:1] == ["header"]
        assert api.count("GetTaskLogs") == 3
        assert relay.metric("flyte_connector_relay_retries_total", operation="get_logs") == 2

        # Once a message has reached the executor, a failure is its to see, not the relay's to hide.
        api.fail("GetTaskLogs", 200, encode(HEADER) + STREAM_UNAVAILABLE, content_type="application/connect+proto")
        stream = relay.tasks.GetTaskLogs(logs, timeout=10)
        assert next(stream).header.token == "t"
        with pytest.raises(grpc.RpcError) as caught:
            next(stream)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert api.count("GetTaskLogs") == 4
        assert (
            relay.metric(
                "flyte_connector_requests_failure_total",
                task_type="echo",
                operation="get_logs",
                error_code="unavailable",
            )
            == 1
        )


def test_the_health_service_says_not_serving_when_the_relay_stops(gateway, api):
    with Relay(gateway[0]) as relay:
        error = rpc_error(relay.health.Check, health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        watch = relay.health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stopper = threading.Thread(target=relay.stop)
        stopper.start()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        stopper.join(timeout=10)


def test_the_metrics_name_calls_as_flyte_does(gateway, api):
    with Relay(gateway[0]) as relay:
        metadata = service_pb2_grpc.ConnectorMetadataServiceStub(relay.channel)
        metadata.ListConnectors(pb.ListConnectorsRequest(), timeout=5)
        rpc_error(metadata.GetConnector, pb.GetConnectorRequest(name="Nope"), timeout=5)
        rpc_error(relay.tasks.CreateTask, echo_request(task_type="bigquery"), timeout=5)
        text = relay.scrape()
        assert "# TYPE flyte_connector_request_latency_seconds histogram" in text
        assert relay.metric("flyte_connector_requests_success_total", task_type="", operation="list_connectors") == 1
        assert (
            relay.metric(
                "flyte_connector_requests_failure_total",
                task_type="",
                operation="get_connector",
                error_code="not_found",
            )
            == 1
        )
        assert (
            relay.metric(
                "flyte_connector_requests_failure_total",
                task_type="bigquery",
                operation="create",
                error_code="not_found",
            )
            == 1
        )


def test_a_caller_cannot_grow_the_metrics_without_bound(gateway, api):
    with Relay(gateway[0]) as relay:
        from connectors.relay import metrics as relay_metrics

        for i in range(relay_metrics.MAX_TASK_TYPES + 5):
            rpc_error(
                relay.tasks.GetTask,
                pb.GetTaskRequest(resource_meta=b"junk", task_category=pb.TaskCategory(name=f"type{i}")),
                timeout=5,
            )
        families = {f.name: f for f in text_string_to_metric_families(relay.scrape())}
        task_types = {s.labels["task_type"] for s in families["flyte_connector_requests_failure"].samples}
        # the API refused every one (no connector serves them): they share the pool of the unconfirmed
        assert len(task_types) == relay_metrics.MAX_UNCONFIRMED_TASK_TYPES + 1 and "other" in task_types


def test_the_backoff_is_full_jitter_within_the_deadline():
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.3, margin=0.2, rng=random.Random(7))
    delays = [policy.backoff(n) for n in (1, 2, 3, 10) for _ in range(200)]
    assert all(0 <= d <= 0.3 for d in delays) and max(delays[:200]) <= 0.1 and max(delays[600:]) > 0.25
    assert policy.next_delay(4, 100) == (None, "attempts")
    assert policy.next_delay(1, 0.2) == (None, "deadline")  # no room for a wait and an attempt
    delay, _ = policy.next_delay(1, 10)
    assert delay is not None and 0 <= delay <= 0.1
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_what_is_worth_retrying():
    assert retry_reason(503, None) == "http_503" and retry_reason(500, None) == "http_500"
    assert retry_reason(429, None) == "throttled"
    assert retry_reason(503, "unavailable") == retry_reason(200, "unavailable") == "unavailable"
    for code in ("resource_exhausted", "internal", "deadline_exceeded", "invalid_argument", "unknown"):
        assert retry_reason(500, code) is None
    assert retry_reason(400, None) is None and retry_reason(403, None) is None and retry_reason(404, None) is None


def test_connectors_relay_serves_health_and_metrics_on_its_flags(gateway, api):
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.cli",
            "relay",
            "--unsigned",
            "--endpoint",
            gateway[0],
            "--listen",
            f"{HOST}:{port}",
            "--metrics-listen",
            f"{HOST}:{metrics_port}",
            "--max-attempts",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"{HOST}:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            health = health_pb2_grpc.HealthStub(channel)
            assert (
                health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            )
            api.fail("GetTask", 503, UNAVAILABLE_503, times=None)
            error = rpc_error(service_pb2_grpc.AsyncConnectorServiceStub(channel).GetTask, get_task(b"t1x"), timeout=10)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert api.count("GetTask") == 2  # --max-attempts 2
        text = httpx.get(f"http://{HOST}:{metrics_port}/metrics", timeout=5).text
        assert 'flyte_connector_relay_retries_total{operation="get",reason="http_503"} 1.0' in text
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "/metrics" in stderr


@pytest.mark.parametrize("flags", [["--metrics-listen", "9090"], ["--max-attempts", "0"]])
def test_connectors_relay_refuses_bad_operations_flags(flags):
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "connectors.cli",
            "relay",
            "--unsigned",
            "--endpoint",
            "http://127.0.0.1:1",
            "--listen",
            f"{HOST}:{free_port()}",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == 2, process.stderr
    assert process.stderr.startswith("connectors relay: ") and "Traceback" not in process.stderr
