"""Issue 8's edges, one test each, through the served app against the ledger's remote jobs.

The ledger (tests/remote_ledger.py) keeps its jobs in a file, so a test counts what really
started and what was cancelled, also across a process that died mid-create.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.answers import MAX_OUTPUTS_BYTES
from connectors.dev.events import http_api_event
from connectors.errors import Code
from connectors.runtime import lambda_handler
from connectors.store import ACTIVE, CANCELLING, CLAIMED, ENDED
from tests.conftest import LambdaContext
from tests.flyte_requests import echo_request
from tests.ledger_world import LEDGER, LedgerWorld
from tests.remote_ledger import LedgerMeta

World = LedgerWorld
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[World]:
    with World(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def job_states(world: World) -> dict[str, str]:
    return world.jobs()


# -- edge 1: a create that fails after its job exists keeps a record until the job is cancelled ------


def test_create_past_its_deadline_keeps_the_attempt_and_the_next_attempt_cancels_its_job(world):
    error = world.error(world.create, "late-run", 0, attempts={0: {"create_seconds": 5}})
    assert error.code == Code.DEADLINE_EXCEEDED
    claim = world.records("late-run")[0]
    assert claim.state == CLAIMED and claim.create_request and "deadline_exceeded" in claim.message
    handle = world.create("late-run", 1, attempts={0: {"create_seconds": 5}})  # the executor's next attempt
    assert job_states(world) == {"job-1": "cancelled", "job-2": "running"}
    records = world.records("late-run")
    assert records[0].state == ENDED and records[0].phase == TaskExecution.ABORTED
    assert "superseded by attempt 1" in records[0].message
    assert world.poll(handle).phase == TaskExecution.RUNNING


def test_a_retry_of_the_same_attempt_resumes_with_the_same_token(world):
    assert world.error(world.create, "retry-run", 0, create_seconds=5).code == Code.DEADLINE_EXCEEDED
    handle = world.create("retry-run", 0, create_seconds=5)  # the same request: taken over at once, job found
    assert list(job_states(world)) == ["job-1"]
    assert world.poll(handle).message == "job-1 running"


def test_metadata_too_large_cancels_the_job_then_answers_resource_exhausted(world):
    error = world.error(world.create, "big-run", 0, meta_padding=500_000)
    assert error.code == Code.RESOURCE_EXHAUSTED and "resource_meta" in error.message
    assert job_states(world) == {"job-1": "cancelled"}
    record = world.records("big-run")[0]
    assert record.state == ENDED and record.resource_meta is None and record.message.endswith("its job was cancelled")
    again = world.error(world.create, "big-run", 0)  # the same attempt again: told, not restarted
    assert again.code == Code.FAILED_PRECONDITION and len(world.ledger.jobs()) == 1


def test_metadata_that_does_not_encode_cancels_the_job(world):
    error = world.error(world.create, "odd-run", 0, unencodable_meta=True)
    assert error.code == Code.INTERNAL and "does not encode" in error.message
    assert job_states(world) == {"job-1": "cancelled"}


def test_a_create_killed_after_its_job_started_is_cancelled_by_the_reaper(world, tmp_path):
    request = world.request("killed-run", 0, custom={"die_after_start": True})
    (tmp_path / "request.pb").write_bytes(request.SerializeToString())
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from flyteidl2.connector import connector_pb2 as pb
        from connectors.registry import ConnectorRegistry
        from connectors.settings import Settings
        from connectors.store import new_client
        from tests.conftest import make_service
        from tests.remote_ledger import LedgerConnector
        service = make_service(Settings(tasks_table={world.settings.tasks_table!r}, create_claim_seconds=4.0),
                               new_client(), ConnectorRegistry([LedgerConnector({str(world.ledger.path)!r})]))
        request = pb.CreateTaskRequest.FromString(open({str(tmp_path / "request.pb")!r}, "rb").read())
        asyncio.run(service.create_task(request))
    """)
    died = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True, timeout=60)
    assert died.returncode == 17, died.stderr.decode()[-2000:]
    assert job_states(world) == {"job-1": "running"} and world.records("killed-run")[0].state == CLAIMED
    # its lease is still live (4 s: a loaded CI machine takes more than 1 s to get here)
    assert world.reap(now=time.time() + 3600).cancelled == []
    time.sleep(4.1)  # the lease ends; no newer attempt comes; an hour passes
    report = world.reap(now=time.time() + 3600)
    assert len(report.cancelled) == 1 and job_states(world) == {"job-1": "cancelled"}
    record = world.records("killed-run")[0]
    assert record.state == ENDED and record.phase == TaskExecution.ABORTED and record.notes == ["abandoned"]


# -- edge 2: the reaper cancels only what is still stale when it claims it -------------------------------


def test_a_poll_while_the_reaper_works_saves_its_task_and_a_poll_after_the_claim_is_told(world):
    # Each cancel takes 3 s (within the connector timeout): the window in which the other task's poll
    # must come, even on a loaded machine (parallel test workers).
    world.set(abandoned_after_minutes=1 / 60, connector_timeout_seconds=8.0)  # stale after a second
    handles = {run: world.create(run, 0, delete_seconds=3.0) for run in ("reap-run-a", "reap-run-b")}
    time.sleep(1.2)  # both are stale now
    outcome: dict[str, Any] = {}
    reaper = threading.Thread(target=lambda: outcome.update(report=world.reap(concurrency=1)))
    reaper.start()
    deadline = time.monotonic() + 5
    slow_run = None
    while slow_run is None and time.monotonic() < deadline:  # the reaper cancels one at a time (slowly)
        slow_run = next((run for run in handles if world.records(run)[0].state == CANCELLING), None)
        time.sleep(0.02)
    assert slow_run is not None, "the reaper never began a cancel"
    [watched_run] = [run for run in handles if run != slow_run]
    told = world.poll(handles[slow_run])  # the reaper holds it: told so, with what is stored
    assert told.phase == TaskExecution.QUEUED and told.message.startswith("being cancelled: no executor polled")
    assert world.poll(handles[watched_run]).phase == TaskExecution.RUNNING  # the executor is back: a heartbeat
    reaper.join(10)
    slow_job = LedgerMeta.decode(world.records(slow_run)[0].resource_meta).job_id
    assert job_states(world) == {job: ("cancelled" if job == slow_job else "running") for job in ("job-1", "job-2")}
    assert len(outcome["report"].cancelled) == 1 and len(outcome["report"].skipped) == 1
    assert world.poll(handles[slow_run]).phase == TaskExecution.ABORTED
    assert world.records(watched_run)[0].state == ACTIVE


# -- edge 3: a phase is answered only once it is stored ----------------------------------------------------


def test_a_poll_that_loses_its_write_to_a_message_change_stores_its_phase_before_answering(world):
    handle = world.create("race-run", 0, chatty=True)
    world.ledger.delay_next_get(1.0)
    slow: dict[str, Any] = {}
    first = threading.Thread(target=lambda: slow.update(answer=world.poll(handle)))
    first.start()
    time.sleep(0.3)
    assert world.poll(handle).phase == TaskExecution.RUNNING  # only the message moves: a new version
    world.ledger.set_state("job-1", "succeeded")  # the slow poll's get now sees success
    first.join(10)
    assert slow["answer"].phase == TaskExecution.SUCCEEDED
    record = world.records("race-run")[0]
    assert record.state == ENDED and record.phase == TaskExecution.SUCCEEDED


# -- edge 4: outputs are converted before SUCCEEDED is stored --------------------------------------------


def test_outputs_that_do_not_fit_settle_the_task_failed_naming_the_output(world):
    handle = world.create("misfit-run", 0, outputs={"x": "not a number"})
    world.ledger.set_state("job-1", "succeeded")
    for _ in range(2):
        answer = world.poll(handle)
        assert answer.phase == TaskExecution.FAILED and "output 'x'" in answer.message and "int" in answer.message
    record = world.records("misfit-run")[0]
    assert record.state == ENDED and record.phase == TaskExecution.FAILED


def test_outputs_too_large_to_answer_settle_the_task_failed(world):
    handle = world.create("huge-run", 0, big_output=4_300_000)
    world.ledger.set_state("job-1", "succeeded")
    answer = world.poll(handle)
    assert answer.phase == TaskExecution.FAILED and f"more than the {MAX_OUTPUTS_BYTES}" in answer.message
    assert world.records("huge-run")[0].phase == TaskExecution.FAILED


# -- edges 5 and 6: requests that cannot be kept apart or passed on ---------------------------------------


def test_a_create_without_task_execution_metadata_is_invalid_and_starts_nothing(world):
    request = world.request("no-id-run")
    request.ClearField("task_execution_metadata")
    error = world.error(world.client.create_task, request)
    assert error.code == Code.INVALID_ARGUMENT and "task_execution_metadata" in error.message
    assert world.ledger.jobs() == {} and world.records() == {}


@pytest.mark.parametrize(
    "secrets, configs, named",
    [
        ({"inputs": "x"}, {}, "'inputs'"),
        ({}, {"idempotency_token": "mine"}, "'idempotency_token'"),
        ({}, {"resource_meta": "r"}, "'resource_meta'"),
        ({"api_key": "s3cr3t-value"}, {"api_key": "other"}, "'api_key'"),
    ],
)
def test_connection_keys_that_collide_are_invalid_argument(world, secrets, configs, named):
    request = echo_request(task_type="ledger", run="collide-run", secrets=secrets, configs=configs)
    error = world.error(world.client.create_task, request)
    assert error.code == Code.INVALID_ARGUMENT and named in error.message and "s3cr3t-value" not in error.message
    assert world.ledger.jobs() == {}


# -- edge 7: deadlines follow the Lambda, streams too; NotImplementedError is unimplemented ----------


def test_the_lambdas_remaining_time_shortens_the_connector_deadline(world):
    world.set(connector_timeout_seconds=8.0)
    handler = lambda_handler(["CreateTask"], service=world.service)
    body = world.request("lambda-run", 0, custom={"create_seconds": 30}).SerializeToString()
    event = http_api_event("POST", "/flyteidl2.connector.AsyncConnectorService/CreateTask", body)
    started = time.monotonic()
    response = handler(event, ShortContext())
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 504 and b"deadline_exceeded" in _body(response)
    assert elapsed < ShortContext.remaining_ms / 1000, "answered before Lambda would have killed it"
    assert world.records("lambda-run")[0].state == CLAIMED  # released, for the next attempt to find


def test_a_log_stream_that_hangs_ends_with_deadline_exceeded(world):
    handle = world.create("hang-run", 0, logs_hang=True)
    started = time.monotonic()
    parts = []
    with pytest.raises(ConnectError) as caught:
        for part in world.client.get_task_logs(pb.GetTaskLogsRequest(resource_meta=handle, task_category=LEDGER)):
            parts.append(part)
    assert caught.value.code == Code.DEADLINE_EXCEEDED and len(parts) == 1
    assert time.monotonic() - started < world.settings.connector_timeout_seconds + 1


def test_not_implemented_in_any_call_is_unimplemented(world):
    error = world.error(world.create, "ni-run-0", 0, not_implemented=["create"])
    assert error.code == Code.UNIMPLEMENTED
    handle = world.create("ni-run-1", 0, not_implemented=["get", "delete", "get_logs"])
    assert world.error(world.poll, handle).code == Code.UNIMPLEMENTED
    assert (
        world.error(world.client.delete_task, pb.DeleteTaskRequest(resource_meta=handle, task_category=LEDGER)).code
        == Code.UNIMPLEMENTED
    )
    logs = pb.GetTaskLogsRequest(resource_meta=handle, task_category=LEDGER)
    assert world.error(lambda: list(world.client.get_task_logs(logs))).code == Code.UNIMPLEMENTED


class ShortContext(LambdaContext):
    remaining_ms = 2500

    @classmethod
    def get_remaining_time_in_millis(cls) -> int:
        return cls.remaining_ms


def _body(response: dict) -> bytes:
    return base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"].encode()


# -- edge 8: nothing writes an ended record but what is meant to -------------------------------------------


def test_a_late_poll_does_not_touch_a_task_deleted_meanwhile(world):
    handle = world.create("late-poll-run", 0)
    world.ledger.delay_next_get(1.0)
    late: dict[str, Any] = {}
    poller = threading.Thread(target=lambda: late.update(answer=world.poll(handle)))
    poller.start()
    time.sleep(0.3)
    world.client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=LEDGER))
    ended = world.records("late-poll-run")[0]
    poller.join(10)
    assert late["answer"].phase == TaskExecution.ABORTED  # what is stored, not the connector's stale report
    after = world.records("late-poll-run")[0]
    assert after == ended and after.heartbeat_at is None and after.active_shard is None


# -- edge 11: the reaper pages lazily, bounds its concurrency and keeps to its time ----------------------


def test_the_reaper_keeps_to_its_concurrency_and_time_budget(world):
    for n in range(12):
        world.create(f"many-run-{n}", 0, delete_seconds=0.6)
    in_an_hour = time.time() + 3600
    per_task = 2 * world.settings.connector_timeout_seconds + 3.0  # what the reaper keeps back for one task
    first = world.reap(now=in_an_hour, concurrency=4, budget_seconds=per_task + 0.3)
    assert first.stopped_early and len(first.cancelled) == 4  # the next four would start past its budget
    second = world.reap(now=in_an_hour, concurrency=4)
    assert not second.stopped_early and len(second.cancelled) == 8
    assert set(job_states(world).values()) == {"cancelled"}
    assert all(job["deletes"] == 1 for job in world.ledger.jobs().values())
    assert world.ledger.read()["max_deleting"] == 4


def test_what_a_connector_that_ignores_the_token_gets(world):
    """The warning of docs/write-a-connector.md, shown: the replayed create of attempt 0 starts another job (job-3),
    which is cancelled; job-1, whose answer was lost, runs on with nobody tracking it."""
    slow_careless = {0: {"create_seconds": 5, "ignore_token": True}}
    world.error(world.create, "careless-run", 0, attempts=slow_careless)
    world.create("careless-run", 1, attempts=slow_careless)
    assert job_states(world) == {"job-1": "running", "job-2": "running", "job-3": "cancelled"}
