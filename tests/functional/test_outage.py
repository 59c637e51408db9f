"""DynamoDB outages mid-run: calls answer ``unavailable`` fast, and no record is lost or half-written.

This module runs its own moto server (not the session's) behind a small TCP proxy on loopback.
The store reaches DynamoDB only through the proxy, which can be cut and restored without
losing moto's in-memory data, in three ways:

- ``refuse``: the port is closed and every open connection reset (DynamoDB down, a reset).
- ``hang``: connections are accepted but nothing comes back (a black-holed network).
- ``drop_responses``: requests reach DynamoDB but its answers are lost (a write that happened
  though its caller never heard so: botocore retries it).

The tests read the table directly from moto, past the proxy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync, ConnectorMetadataServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin import EchoConnector
from connectors.dev.local_dynamodb import LocalDynamoDB
from connectors.errors import Code
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import ACTIVE, CLAIMED, TaskRecord, TaskStore, new_client
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, scan_table
from tests.flyte_requests import ECHO, echo_request
from tests.sample_connectors import CountingConnector
from tests.tcp_proxy import TcpProxy

COUNTING = pb.TaskCategory(name="counting", version=0)
CLAIM_SECONDS = 3.0
# The executor gives CreateTask 10 s; an outage must be answered well before that.
EXECUTOR_DEADLINE = 10.0


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(moto_server: LocalDynamoDB) -> Iterator[TcpProxy]:
    proxy = TcpProxy(moto_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def direct(moto_server: LocalDynamoDB) -> Any:
    """A client straight to moto, past the proxy: how the tests read the table."""
    return new_client(moto_server.endpoint_url)


@pytest.fixture(scope="module")
def outage_settings(direct: Any) -> Settings:
    settings = Settings(tasks_table="outage-tasks", connector_timeout_seconds=5.0, create_claim_seconds=CLAIM_SECONDS)
    TaskStore(settings.tasks_table, direct).create_table()
    return settings


@pytest.fixture(scope="module")
def counting() -> CountingConnector:
    return CountingConnector(create_seconds=0.5)


@pytest.fixture
def served(outage_settings: Settings, proxy: TcpProxy, counting: CountingConnector) -> Iterator[ServedApp]:
    """A fresh app and DynamoDB client per test: botocore's retry quota is per client, and an
    earlier test's outage must not have used it up."""
    registry = ConnectorRegistry([EchoConnector(), counting])
    with ServedApp(create_app(make_service(outage_settings, new_client(proxy.url), registry))) as server:
        yield server


@pytest.fixture
def client(served: ServedApp, proxy: TcpProxy) -> Iterator[AsyncConnectorServiceClientSync]:
    yield AsyncConnectorServiceClientSync(served.url, timeout_ms=60_000)
    proxy.restore()  # whatever a test did, the next one starts with DynamoDB reachable


def records(direct: Any, settings: Settings) -> dict[tuple[str, int], TaskRecord]:
    return {(r.action_id, r.attempt): r for r in map(TaskRecord.from_item, scan_table(direct, settings.tasks_table))}


def timed_error(call: Any, *args: Any) -> tuple[Code, float]:
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        call(*args)
    return caught.value.code, time.monotonic() - started


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def assert_whole(direct: Any, settings: Settings) -> None:
    """Every record is created with its metadata, or a claim that has not yet expired."""
    now = time.time()
    for key, record in records(direct, settings).items():
        if record.state == ACTIVE:
            assert record.resource_meta and record.lease_expires_at is None, key
        else:
            assert record.state == CLAIMED and record.lease_expires_at and record.lease_expires_at > now - 60, key


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_calls_answer_unavailable_fast_and_records_survive(
    client, served, proxy, direct, outage_settings, counting, mode
):
    created = [client.create_task(echo_request(custom={"delay_seconds": 3600})).resource_meta for _ in range(5)]
    created += [client.create_task(echo_request(task_type="counting")).resource_meta for _ in range(3)]
    for handle in created[:5]:
        assert (
            client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)).resource.phase
            == TaskExecution.RUNNING
        )
    before = records(direct, outage_settings)
    creates_before = counting.calls["create"]

    proxy.cut(mode)
    new_request = echo_request(task_type="counting", run=f"outage-{mode}")
    calls = [
        ("CreateTask", client.create_task, new_request),
        ("CreateTask echo", client.create_task, echo_request()),
        ("GetTask", client.get_task, pb.GetTaskRequest(resource_meta=created[0], task_category=ECHO)),
        ("DeleteTask", client.delete_task, pb.DeleteTaskRequest(resource_meta=created[1], task_category=ECHO)),
        ("GetTask counting", client.get_task, pb.GetTaskRequest(resource_meta=created[5], task_category=COUNTING)),
        (
            "GetTaskMetrics",
            client.get_task_metrics,
            pb.GetTaskMetricsRequest(resource_meta=created[2], task_category=ECHO),
        ),
    ]
    # Several at once, as executors would call: each answers unavailable before the executor gives up.
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = dict(
            zip([name for name, *_ in calls], pool.map(lambda c: timed_error(c[1], c[2]), calls), strict=True)
        )
    print(
        f"\n{mode} outage:",
        ", ".join(f"{name} {code.value} in {seconds:.2f} s" for name, (code, seconds) in answers.items()),
    )
    for name, (code, seconds) in answers.items():
        assert code == Code.UNAVAILABLE, f"{name} answered {code} during a {mode} outage"
        assert seconds < (3.0 if mode == "refuse" else EXECUTOR_DEADLINE * 0.8), f"{name} took {seconds:.1f} s ({mode})"
    # What needs no table still works.
    metadata = ConnectorMetadataServiceClientSync(served.url)
    assert metadata.list_connectors(pb.ListConnectorsRequest()).connectors
    assert counting.calls["create"] == creates_before, "connector.create ran although its claim was never written"

    proxy.restore()
    after = records(direct, outage_settings)
    assert {key: after[key] for key in before} == before, "a record written before the outage changed"
    assert set(after) == set(before), "a call that answered unavailable left a record behind"
    for handle in created[:5]:
        assert (
            client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)).resource.phase
            == TaskExecution.RUNNING
        )
    # The CreateTask that answered unavailable succeeds when retried, with one connector.create.
    handle = client.create_task(new_request).resource_meta
    assert counting.calls["create"] == creates_before + 1
    assert client.create_task(new_request).resource_meta == handle
    assert counting.calls["create"] == creates_before + 1
    assert_whole(direct, outage_settings)


def test_outage_between_claim_and_finish_resumes_after_the_claim_expires(
    client, proxy, direct, outage_settings, counting
):
    request = echo_request(task_type="counting", run="cut-mid-create")
    creates_before = counting.calls["create"]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(timed_error, client.create_task, request)
        wait_for(lambda: counting.calls["create"] == creates_before + 1, what="connector.create to start")
        proxy.cut("refuse")  # the claim is written; connector.create is running
        code, seconds = pending.result()
    assert code == Code.UNAVAILABLE and seconds < 5
    proxy.restore()

    (record,) = [r for r in records(direct, outage_settings).values() if r.execution.get("run") == "cut-mid-create"]
    assert record.state == CLAIMED and record.resource_meta is None, "the unfinished create must stay a claim"
    assert record.lease_expires_at > time.time(), "the claim must not have expired yet"
    # Until the claim expires, a retry is told to come back, and starts nothing.
    code, _ = timed_error(client.create_task, request)
    assert code == Code.UNAVAILABLE
    assert counting.calls["create"] == creates_before + 1

    time.sleep(max(0.0, record.lease_expires_at - time.time()) + 0.2)
    handle = client.create_task(request).resource_meta
    assert counting.calls["create"] == creates_before + 2, "the resumed create calls the connector once"
    tokens = [call["idempotency_token"] for call in counting.kwargs if call["operation"] == "create"][-2:]
    assert tokens[0] == tokens[1], "the resumed create must hand the connector the same idempotency token"
    (record,) = [r for r in records(direct, outage_settings).values() if r.execution.get("run") == "cut-mid-create"]
    assert record.state == ACTIVE and record.handle.encode() == handle
    assert (
        client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=COUNTING)).resource.phase
        == TaskExecution.RUNNING
    )
    assert_whole(direct, outage_settings)


def test_a_claim_whose_answer_was_lost_is_still_ours(client, proxy, direct, outage_settings, counting):
    """The claim reaches DynamoDB but its answer does not: botocore retries the conditional put,
    which then fails against the caller's own claim. The caller must recognise it and go on."""
    request = echo_request(task_type="counting", run="lost-claim-answer")
    creates_before = counting.calls["create"]
    dropped = proxy.responses_dropped
    proxy.cut("drop_responses")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: client.create_task(request).resource_meta)
        proxy.wait_for_a_dropped_response(since=dropped)  # the claim is written; its answer lost
        proxy.restore()  # the pending put's connection is reset; botocore retries it
        handle = pending.result(timeout=30)
    assert counting.calls["create"] == creates_before + 1
    (record,) = [r for r in records(direct, outage_settings).values() if r.execution.get("run") == "lost-claim-answer"]
    assert record.state == ACTIVE and record.handle.encode() == handle
    assert_whole(direct, outage_settings)


def test_a_finish_whose_answer_was_lost_is_still_ours(client, proxy, direct, outage_settings, counting):
    """connector.create ran and the record was finished, but the answer to the finishing write was
    lost: the retried write fails its condition against the caller's own finished record. The
    caller must answer the handle, not an error that makes the executor start another job."""
    request = echo_request(task_type="counting", run="lost-finish-answer")
    creates_before = counting.calls["create"]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: client.create_task(request).resource_meta)
        wait_for(lambda: counting.calls["create"] == creates_before + 1, what="connector.create to start")
        dropped = proxy.responses_dropped
        proxy.cut("drop_responses")
        # The next store call is the finishing write: once its answer is lost, the record is finished.
        proxy.wait_for_a_dropped_response(since=dropped)
        proxy.restore()
        handle = pending.result(timeout=30)
    assert counting.calls["create"] == creates_before + 1
    (record,) = [r for r in records(direct, outage_settings).values() if r.execution.get("run") == "lost-finish-answer"]
    assert record.state == ACTIVE and record.handle.encode() == handle
    assert_whole(direct, outage_settings)
