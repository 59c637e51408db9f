"""Exactly-once task starts and no orphaned jobs, against the real local DynamoDB."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin import EchoConnector
from connectors.errors import Code
from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import TaskHandle
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, make_table, scan_table
from tests.flyte_requests import echo_request
from tests.sample_connectors import CountingConnector, LedgerConnector

COUNTING = pb.TaskCategory(name="counting", version=0)
ROOT = Path(__file__).resolve().parents[2]


def test_twenty_concurrent_creates_start_one_job(dynamodb_client):
    """One claim wins; the others find it (lease live: ``unavailable``) or its record (the handle).

    Within the claim's lease no path calls create again; ``aborted`` would mean a finish lost to a
    second claim, which only a store whose conditional put is not atomic allows (moto's alone is
    not; connectors/dev/fake_aws/dynamodb.py makes it one step, and test_fake_dynamodb_atomicity.py
    makes the race certain and names the sequence)."""
    table = make_table(dynamodb_client)
    counting = CountingConnector(create_seconds=0.5)
    service = make_service(Settings(tasks_table=table), dynamodb_client, ConnectorRegistry([counting]))
    request = echo_request(task_type="counting", run="concurrent-run", action="a3")

    def call(_: int) -> bytes | Code:
        try:
            return AsyncConnectorServiceClientSync(served.url).create_task(request).resource_meta
        except ConnectError as error:
            return error.code

    with ServedApp(create_app(service)) as served, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(call, range(20)))
        retried = AsyncConnectorServiceClientSync(served.url).create_task(request).resource_meta

    handles = {a for a in answers if isinstance(a, bytes)}
    errors = [a for a in answers if not isinstance(a, bytes)]
    assert counting.calls["create"] == 1, (answers, counting.kwargs)
    assert len(handles) == 1 and handles == {retried}
    assert set(errors) <= {Code.UNAVAILABLE}, answers
    items = scan_table(dynamodb_client, table)
    assert len(items) == 1 and items[0]["state"]["S"] == "active"


def test_a_create_killed_between_claim_and_finish_resumes_without_a_second_remote_job(dynamodb_client, tmp_path):
    table = make_table(dynamodb_client)
    ledger = tmp_path / "remote-jobs.json"
    request = echo_request(task_type="ledger", run="killed-run", action="a0")
    (tmp_path / "request.pb").write_bytes(request.SerializeToString())
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from flyteidl2.connector import connector_pb2 as pb
        from connectors.registry import ConnectorRegistry
        from connectors.settings import Settings
        from connectors.store import new_client
        from tests.conftest import make_service
        from tests.sample_connectors import LedgerConnector
        service = make_service(Settings(tasks_table={table!r}, create_claim_seconds=1.0), new_client(),
                               ConnectorRegistry([LedgerConnector()]))
        request = pb.CreateTaskRequest.FromString(open({str(tmp_path / "request.pb")!r}, "rb").read())
        asyncio.run(service.create_task(request))
    """)
    env = {**os.environ, "LEDGER_PATH": str(ledger), "LEDGER_DIE_AFTER_START": "1"}
    died = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert died.returncode == 17, died.stderr.decode()[-2000:]
    assert len(json.loads(ledger.read_text())) == 1  # the remote job started; the record was not finished
    [claim] = scan_table(dynamodb_client, table)
    assert claim["state"]["S"] == "claimed" and "resource_meta" not in claim

    service = make_service(
        Settings(tasks_table=table, create_claim_seconds=1.0),
        dynamodb_client,
        ConnectorRegistry([LedgerConnector(str(ledger))]),
    )
    with pytest.raises(ConnectError) as caught:  # the claim is still live: retry later
        asyncio.run(service.create_task(request))
    assert caught.value.code == Code.UNAVAILABLE
    time.sleep(1.1)
    handle = asyncio.run(service.create_task(request)).resource_meta
    assert asyncio.run(service.create_task(request)).resource_meta == handle
    assert list(json.loads(ledger.read_text()).values()) == ["job-1"]  # one remote job, ever
    assert service.store.load(TaskHandle.decode(handle)).state == "active"
    [record] = scan_table(dynamodb_client, table)
    assert record["state"]["S"] == "active" and b"job-1" in record["resource_meta"]["B"]


def test_a_new_attempt_cancels_the_running_job_of_the_previous_one(dynamodb_client):
    table = make_table(dynamodb_client)
    counting = CountingConnector()
    service = make_service(Settings(tasks_table=table), dynamodb_client, ConnectorRegistry([counting]))
    first = asyncio.run(service.create_task(echo_request(task_type="counting", run="retry-run", attempt=0)))
    other_action = asyncio.run(service.create_task(echo_request(task_type="counting", run="retry-run", action="b")))
    asyncio.run(service.create_task(echo_request(task_type="counting", run="retry-run", attempt=1)))
    assert counting.calls["delete"] == 1
    old = asyncio.run(service.get_task(pb.GetTaskRequest(resource_meta=first.resource_meta, task_category=COUNTING)))
    assert old.resource.phase == TaskExecution.ABORTED and "superseded by attempt 1" in old.resource.message
    untouched = asyncio.run(
        service.get_task(pb.GetTaskRequest(resource_meta=other_action.resource_meta, task_category=COUNTING))
    )
    assert untouched.resource.phase == TaskExecution.RUNNING
    notes = {
        item["attempt"]["N"]: item.get("notes", {}).get("L", [])
        for item in scan_table(dynamodb_client, table)
        if item["execution"]["M"]["action"]["S"] == "a0"
    }
    assert notes["0"] == [{"S": "superseded"}] and notes["1"] == []


def test_the_reaper_cancels_tasks_no_executor_polls(dynamodb_client):
    table = make_table(dynamodb_client)
    counting = CountingConnector()
    service = make_service(
        Settings(tasks_table=table, abandoned_after_minutes=10),
        dynamodb_client,
        ConnectorRegistry([counting, EchoConnector()]),
    )
    abandoned = asyncio.run(service.create_task(echo_request(task_type="counting", run="reap-1")))
    watched = asyncio.run(service.create_task(echo_request(task_type="counting", run="reap-2")))
    finished = asyncio.run(service.create_task(echo_request(run="reap-3")))
    asyncio.run(
        service.get_task(
            pb.GetTaskRequest(resource_meta=finished.resource_meta, task_category=pb.TaskCategory(name="echo"))
        )
    )
    in_eleven_minutes = time.time() + 11 * 60
    service.store.clock = lambda: in_eleven_minutes - 60  # the executor polls `watched` ten minutes on
    asyncio.run(service.get_task(pb.GetTaskRequest(resource_meta=watched.resource_meta, task_category=COUNTING)))
    report = asyncio.run(reap_abandoned(service.canceller, now=in_eleven_minutes))
    assert len(report.cancelled) == 1 and not report.failed
    assert counting.calls["delete"] == 1
    reaped = asyncio.run(
        service.get_task(pb.GetTaskRequest(resource_meta=abandoned.resource_meta, task_category=COUNTING))
    )
    assert reaped.resource.phase == TaskExecution.ABORTED and "no executor polled" in reaped.resource.message
    assert asyncio.run(reap_abandoned(service.canceller, now=in_eleven_minutes)).cancelled == []


def test_concurrent_polls_never_move_a_finished_task_back(dynamodb_client):
    table = make_table(dynamodb_client)
    service = make_service(Settings(tasks_table=table), dynamodb_client, ConnectorRegistry([EchoConnector()]))
    handle = asyncio.run(
        service.create_task(echo_request(run="poll-race", custom={"delay_seconds": 0.3}))
    ).resource_meta
    echo = pb.TaskCategory(name="echo")

    async def poll_many() -> list[int]:
        phases = []
        for _ in range(8):
            answers = await asyncio.gather(
                *(service.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=echo)) for _ in range(5))
            )
            phases += [a.resource.phase for a in answers]
            await asyncio.sleep(0.06)
        return phases

    phases = asyncio.run(poll_many())
    first_done = phases.index(TaskExecution.SUCCEEDED)
    assert all(p == TaskExecution.SUCCEEDED for p in phases[first_done + 5 :])
    [item] = scan_table(dynamodb_client, table)
    assert item["phase"]["N"] == str(TaskExecution.SUCCEEDED) and "active_shard" not in item
    assert int(item["expires_at"]["N"]) > time.time() + 29 * 86400


def test_notes_stop_growing_when_cancelling_keeps_failing(dynamodb_client):
    from connectors.store import MAX_NOTES
    from tests.sample_connectors import FailingConnector

    table = make_table(dynamodb_client)
    service = make_service(
        Settings(tasks_table=table, abandoned_after_minutes=1),
        dynamodb_client,
        ConnectorRegistry([FailingConnector(), CountingConnector()]),
    )
    asyncio.run(service.create_task(echo_request(task_type="counting", run="stuck")))
    # Make the stuck task's connector one whose delete always fails.
    record = service.store.attempts(scan_table(dynamodb_client, table)[0]["action_id"]["S"])[0]
    dynamodb_client.update_item(
        TableName=table,
        Key={"action_id": {"S": record.action_id}, "attempt": {"N": "0"}},
        UpdateExpression="SET task_type = :t",
        ExpressionAttributeValues={":t": {"S": "failing"}},
    )
    later = time.time()
    for _ in range(MAX_NOTES + 5):
        later += 120
        service.store.clock = lambda now=later: now
        report = asyncio.run(reap_abandoned(service.canceller, now=later + 120))
        assert report.failed and not report.cancelled
    [item] = scan_table(dynamodb_client, table)
    assert len(item["notes"]["L"]) == MAX_NOTES and "active_shard" in item
    assert item["notes"]["L"][0]["S"].startswith("abandoned failed: connector Failing Connector failed to delete")
