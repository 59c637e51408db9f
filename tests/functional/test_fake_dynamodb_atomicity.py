"""The claim is one conditional PutItem: exactly once holds only if the store applies it atomically.

DynamoDB evaluates a write's condition and applies the write as one step on the item ("individual
write operations such as UpdateItem are atomic and always operate on the most recent version of
the item, regardless of concurrency": DynamoDB developer guide, handling concurrent updates).
moto's server (5.2.6, the local DynamoDB of every functional test) does not: ``Table.put_item``
reads the current item, parses and evaluates the condition, then stores the new item, with no
lock, while its werkzeug server runs one thread per request. Two concurrent
``attribute_not_exists`` puts on one key can both read "absent" and both succeed (about 2 bursts of
20 in 100 on an idle machine; more on a loaded one).

That is how ``test_exactly_once.py::test_twenty_concurrent_creates_start_one_job`` failed under
``pytest -n 4`` with two ``connector.create`` calls carrying the same token:

1. CreateTask A: ``claim`` PutItem; moto reads the item: absent, condition true.
2. CreateTask B: ``claim`` PutItem; moto reads the item: still absent, condition true.
3. moto stores A's claim, then B's over it; both puts answer 200, so both callers hold
   ``ClaimResult(claimed=True)`` (B's ``ReturnValues=ALL_OLD`` may even show A's item: a takeover).
4. A and B each Query the attempts, then call ``connector.create`` with the attempt's token.
5. ``finish_create``: only the owner stored last (B) matches ``lease_owner = :owner``; A's update
   fails its condition against B's record (claimed or active, not superseded), and A answers
   ``aborted`` ("another CreateTask took over"). The other 18 find B's claim (lease live:
   ``unavailable``) or B's active record (the handle).

On DynamoDB step 3 cannot happen: one of the two puts fails its condition. No path of the
service itself calls create twice within a live lease; the botocore retries of a claim or a
finish whose answer was lost are recognised (test_outage.py), and the replay paths need an
expired or released lease or a canceller (docs/task-lifecycle.md).

These tests make the race deterministic without relying on CPU load: their moto server (the
fake AWS, with every patch ``connectors.dev.fake_aws`` applies) holds each PutItem of an absent
key between its read and its write until a second PutItem of the same key has read it too (or
3 s passed). On a store whose conditional put is atomic the second read waits for the first
write, and exactly one claim wins. Both failed (two winners, two creates) until
``connectors/dev/fake_aws/dynamodb.py`` applied each item operation as one step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from connectrpc.errors import ConnectError
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

from connectors.dev.local_dynamodb import HOST, LOCAL_ENV, _wait_for_port, free_port
from connectors.errors import Code
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import TaskRecord, TaskStore, new_client, new_secret
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, scan_table
from tests.flyte_requests import echo_request
from tests.sample_connectors import CountingConnector
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]

# Run in the server's process: the fake AWS's patches, then a wider window between a PutItem's
# read of the current item and its write (moto's Table.put_item reads through Table.get_item).
_SERVER = textwrap.dedent(
    """
    import collections, sys, threading
    sys.path.insert(0, {root!r})
    from connectors.dev.fake_aws import apply_patches
    apply_patches()
    from moto.dynamodb.models.table import Table

    local = threading.local()
    readers = collections.Counter()
    met = threading.Condition()
    put_item, get_item = Table.put_item, Table.get_item

    def putting(self, *args, **kwargs):
        local.putting = True
        try:
            return put_item(self, *args, **kwargs)
        finally:
            local.putting = False

    def reading(self, hash_key, range_key=None, *args, **kwargs):
        current = get_item(self, hash_key, range_key, *args, **kwargs)
        if current is None and getattr(local, "putting", False):
            key = (self.name, str(hash_key), str(range_key))
            with met:
                readers[key] += 1
                met.notify_all()
                met.wait_for(lambda: readers[key] >= 2, timeout=3.0)
        return current

    if {widen!r}:
        Table.put_item, Table.get_item = putting, reading
    from moto.server import main
    main(["-H", {host!r}, "-p", "{port}"])
    """
)


def _server(*, widen: bool) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in LOCAL_ENV.items()}}
    script = _SERVER.format(root=str(ROOT), host=HOST, port=port, widen=widen)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        _wait_for_port(port, process, 20.0)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def racy_endpoint() -> Iterator[str]:
    """The fake AWS as every test runs it, with moto's read-to-write window made wide: a second
    PutItem of the key must come in while the first is between its read and its write."""
    for port in _server(widen=True):
        yield f"http://{HOST}:{port}"


@pytest.fixture(scope="module")
def atomic_port() -> Iterator[int]:
    """The fake AWS as every test runs it (each item operation one step, as DynamoDB applies it):
    what is left to test is the service's own handling of lost answers and botocore's retries."""
    yield from _server(widen=False)


@pytest.fixture
def client(racy_endpoint: str) -> Any:
    """No retries and a long read timeout: what is measured is the store's answer, not botocore's."""
    config = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return boto3.client("dynamodb", endpoint_url=racy_endpoint, config=config)


def create(served: ServedApp, request: Any) -> bytes | Code:
    """One CreateTask through the served app: its handle, or its error's code."""
    try:
        return AsyncConnectorServiceClientSync(served.url, timeout_ms=60_000).create_task(request).resource_meta
    except ConnectError as error:
        return error.code


def _table(client: Any, name: str) -> str:
    TaskStore(name, client).create_table()
    return name


def test_two_concurrent_claims_of_one_attempt_one_wins(client):
    """The store-level invariant the service builds on: of two claims of one absent attempt, one."""
    store = TaskStore(_table(client, "claim-race"), client)
    start = threading.Barrier(2)

    def claim(_: int) -> bool:
        record = TaskRecord(action_id="ab" * 16, attempt=0, secret=new_secret(), task_type="counting", task_version=0)
        start.wait()
        return store.claim(record, 60.0).claimed

    with ThreadPoolExecutor(2) as pool:
        claimed = list(pool.map(claim, range(2)))
    assert claimed.count(True) == 1, claimed


def test_concurrent_creates_start_one_job_when_the_store_interleaves_claims(client):
    """test_exactly_once's twenty concurrent CreateTasks, with moto's race made certain: one create."""
    table = _table(client, "create-race")
    counting = CountingConnector(create_seconds=0.5)
    service = make_service(Settings(tasks_table=table), client, ConnectorRegistry([counting]))
    request = echo_request(task_type="counting", run="racy-run", action="a3")

    with ServedApp(create_app(service)) as served, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: create(served, request), range(20)))

    tokens = {call["idempotency_token"] for call in counting.kwargs if call["operation"] == "create"}
    assert len(tokens) == 1  # whatever happens, every create of the attempt carries its one token
    assert counting.calls["create"] == 1, answers
    assert {a for a in answers if not isinstance(a, bytes)} <= {Code.UNAVAILABLE}, answers
    [item] = scan_table(client, table)
    assert item["state"]["S"] == "active"


def test_lost_answers_amid_twenty_concurrent_creates_start_one_job(atomic_port):
    """The service's own part, on a store whose writes are atomic: twenty concurrent CreateTasks
    while DynamoDB's answers are lost (the requests land; botocore retries each conditional put,
    which then fails against the claim already written, the winner's own included). The winner
    recognises its claim and creates once; the others are told to retry; nothing aborts."""
    proxy = TcpProxy(atomic_port).start()
    direct = boto3.client("dynamodb", endpoint_url=f"http://{HOST}:{atomic_port}")
    table = _table(direct, "lost-answers")
    counting = CountingConnector(create_seconds=0.5)
    service = make_service(Settings(tasks_table=table), new_client(proxy.url), ConnectorRegistry([counting]))
    request = echo_request(task_type="counting", run="lost-answers-run", action="a3")

    try:
        with ServedApp(create_app(service)) as served, ThreadPoolExecutor(20) as pool:
            proxy.cut("drop_responses")
            pending = [pool.submit(create, served, request) for _ in range(20)]
            proxy.wait_for_a_dropped_response(since=0)  # a claim is written; its answer lost
            proxy.restore()  # the pending calls' connections are reset: botocore retries them
            answers = [future.result(timeout=60) for future in pending]
    finally:
        proxy.stop()
    handles = {a for a in answers if isinstance(a, bytes)}
    assert counting.calls["create"] == 1, answers
    assert len(handles) == 1 and {a for a in answers if not isinstance(a, bytes)} <= {Code.UNAVAILABLE}, answers
    [item] = scan_table(direct, table)
    assert item["state"]["S"] == "active"
