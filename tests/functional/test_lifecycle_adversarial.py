"""An adversary's review of the task lifecycle (issue 8), through the served app.

Each test either reproduces a finding (marked ``xfail(strict=True)`` with the finding's number,
so the suite stays green until it is fixed and turns red when a fix lands without removing the
mark), or pins down an attack that held, as a regression test.

The remote is the file-backed ledger (tests/remote_ledger.py); ``AdversarialLedger`` adds the
misbehaviour a real remote shows: a replayed create that meets a transient network error, a
connector that reads a connection config, an exception text that quotes a secret, report
strings with a lone surrogate (a JSON ``\\ud83d`` escape from a remote that cut an emoji in
half), a huge message, RETRYABLE_FAILED.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf.json_format import MessageToDict

from connectors import Resource
from connectors.dev.events import http_api_event
from connectors.errors import Code
from connectors.runtime import lambda_handler
from connectors.store import ACTIVE, CANCELLING, CLAIMED, ENDED, TaskHandle
from tests.conftest import LambdaContext, scan_table
from tests.ledger_world import LEDGER, LedgerWorld
from tests.remote_ledger import LedgerConnector, LedgerMeta

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SeCrEt-adversary-7f3a9c0d51e2"


class AdversarialLedger(LedgerConnector):
    """The ledger connector, with knobs a test turns on the instance the served app calls."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # A create that finds the token's job already started (a replay) raises this, if set.
        self.replay_error: BaseException | None = None
        # job_id -> what get answers instead of the ledger's report.
        self.reports: dict[str, Resource] = {}

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = MessageToDict(task_template.custom)
        for name in custom.get("require_kwargs", []):
            kwargs[name]  # a connector that reads its connection config (KeyError without it)
        if custom.get("leak_secret"):
            # Many client libraries quote the URL, and with it a key, in their exception text.
            raise RuntimeError(f"401 Unauthorized for url https://api.example.com/v1/jobs?api_key={kwargs['api_key']}")
        token = kwargs["idempotency_token"]
        replay = any(job["token"] == token for job in self.ledger.jobs().values())
        if replay and self.replay_error is not None:
            raise self.replay_error
        return await super().create(task_template, output_prefix, inputs, task_execution_metadata, **kwargs)

    async def get(self, resource_meta: LedgerMeta, **kwargs) -> Resource:
        if resource_meta.job_id in self.reports:
            await asyncio.to_thread(self.ledger.poll, resource_meta.job_id)
            return self.reports[resource_meta.job_id]
        return await super().get(resource_meta, **kwargs)


class World(LedgerWorld):
    """The ledger world with the adversarial connector, its remote reached at 1 s deadlines."""

    def __init__(self, dynamodb_client: Any, path: Path, **settings: Any) -> None:
        super().__init__(
            dynamodb_client, path, AdversarialLedger(path), **{"connector_timeout_seconds": 1.0, **settings}
        )


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[World]:
    with World(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# == Finding 1: a replayed create that fails for a passing reason is taken as "no job was started" ==========


def test_supersede_does_not_forget_a_job_when_the_replayed_create_meets_a_network_error(world):
    assert world.error(world.create, "blip-run", 0, attempts={0: {"create_seconds": 3}}).code == Code.DEADLINE_EXCEEDED
    assert world.jobs() == {"job-1": "running"}  # started; its answer was lost
    world.connector.replay_error = ConnectionError("connection reset by peer")  # one blip on the replay
    world.create("blip-run", 1, attempts={0: {"create_seconds": 3}})  # the executor's next attempt supersedes attempt 0
    older = world.records("blip-run")[0]
    # Either job-1 is cancelled, or attempt 0's record still says there may be a job to find.
    assert world.jobs()["job-1"] == "cancelled" or older.state != ENDED, (
        f"job-1 runs on, and attempt 0 ended with {older.message!r} {older.notes}"
    )


def test_the_reaper_does_not_forget_a_job_whose_connector_needs_its_connection_config(world):
    request = world.request(
        "config-run", 0, custom={"create_seconds": 3, "require_kwargs": ["region"]}, configs={"region": "eu-west-1"}
    )
    assert world.error(world.client.create_task, request).code == Code.DEADLINE_EXCEEDED
    assert world.jobs() == {"job-1": "running"} and world.records("config-run")[0].state == CLAIMED
    world.reap(now=time.time() + 3600)  # no newer attempt came: the reaper finds the released claim
    record = world.records("config-run")[0]
    assert world.jobs()["job-1"] == "cancelled" or record.state != ENDED, (
        f"job-1 runs on, and its record ended with notes {record.notes}"
    )


# == Finding 2: an older attempt whose create is still running when a newer attempt starts ==================


def test_an_older_attempts_create_in_flight_during_supersede_does_not_leave_its_job_running(world):
    world.set(connector_timeout_seconds=3.0)
    older: dict[str, Any] = {}

    def create_attempt_0() -> None:
        try:
            older["handle"] = world.create("inflight-run", 0, attempts={0: {"create_seconds": 1.2}})
        except ConnectError as error:  # whatever it answers: the executor has given up on it
            older["error"] = error

    thread = threading.Thread(target=create_attempt_0)
    thread.start()
    wait_for(lambda: "job-1" in world.jobs())  # attempt 0's job started; its CreateTask is still out
    newer = world.create(
        "inflight-run", 1, attempts={0: {"create_seconds": 1.2}}
    )  # the executor's deadline passed: attempt 1
    thread.join(10)
    assert world.poll(newer).message == "job-2 running"
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}, world.records("inflight-run")


def test_a_late_create_of_an_older_attempt_does_not_start_an_unwatched_job(world):
    world.create("late-run", 1)  # attempt 1 exists (attempt 0's request was delayed, or re-sent)
    with contextlib.suppress(ConnectError):
        world.create("late-run", 0)
    assert [state for job, state in world.jobs().items() if job != "job-1"] in ([], ["cancelled"]), world.jobs()


# == Finding 3: the caller's deadline ignores the time before the handler ran (cold start) ==================


class FifteenSeconds(LambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def test_create_answers_within_the_callers_deadline_counted_from_api_gateways_arrival(world):
    world.set(connector_timeout_seconds=8.0)
    handler = lambda_handler(["CreateTask"], service=world.service)
    body = world.request("cold-run", 0, custom={"create_seconds": 30}).SerializeToString()
    event = http_api_event("POST", "/flyteidl2.connector.AsyncConnectorService/CreateTask", body)
    event["headers"]["connect-timeout-ms"] = "4000"
    arrived = time.time() - 2.5  # API Gateway took it 2.5 s ago; the Lambda's init took that long
    event["requestContext"]["timeEpoch"] = int(arrived * 1000)
    response = handler(event, FifteenSeconds())
    answered = time.time()
    assert response["statusCode"] == 504
    assert answered < arrived + 4.0, f"answered {answered - arrived - 4.0:.2f} s after the caller gave up"


# == Finding 4: a secret quoted in a connector's exception reaches the table, the answer and the logs ====


def test_a_secret_quoted_by_a_failing_connector_is_not_stored_answered_or_logged(world, caplog):
    caplog.set_level(logging.DEBUG)
    request = world.request("leak-run", 0, custom={"leak_secret": True}, secrets={"api_key": SECRET})
    error = world.error(world.client.create_task, request)
    assert error.code == Code.INTERNAL
    stored = json.dumps(
        scan_table(world.dynamodb_client, world.settings.tasks_table),
        default=lambda value: bytes(value).decode("latin-1"),
    )
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.exc_info[1] if r.exc_info else ''}" for r in caplog.records
    )
    leaks = [
        where for where, text in (("table", stored), ("answer", error.message), ("logs", logged)) if SECRET in text
    ]
    assert leaks == [], f"the secret is in: {leaks}"


# == Finding 5: a lone surrogate in a report makes every poll `internal`; the phase is never stored =========


@pytest.mark.parametrize(
    "report",
    [
        Resource(phase=TaskExecution.RUNNING, message="step 3 of 5 \ud83d"),
        Resource(phase=TaskExecution.SUCCEEDED, message="done", outputs={"x": 1, "name": "caf\udce9"}),
    ],
    ids=["message", "output"],
)
def test_a_report_with_a_lone_surrogate_is_answered_and_stored(world, report):
    handle = world.create("surrogate-run", 0)
    world.connector.reports["job-1"] = report
    for _ in range(2):  # the executor polls again: the same answer, not an error it counts
        answer = world.poll(handle)
        assert answer.phase in (report.phase, TaskExecution.FAILED)
    assert world.record(handle).phase == answer.phase


# == Finding 6: the answer-size check blames the outputs for a large message, and fails a succeeded task ==


def test_a_large_message_does_not_fail_a_succeeded_task_with_small_outputs(world):
    handle = world.create("chatty-success-run", 0)
    world.connector.reports["job-1"] = Resource(
        phase=TaskExecution.SUCCEEDED, message="log line\n" * 470_000, outputs={"x": 7, "name": "ok"}
    )
    answer = world.poll(handle)
    assert answer.phase == TaskExecution.SUCCEEDED, answer.message[:200]
    assert {literal.name for literal in answer.outputs.literals} == {"x", "name"}


# == Finding 7: a cancel that can never succeed is retried by every reaper pass, forever =====================


def test_a_cancel_that_cannot_succeed_is_not_retried_by_every_reaper_pass(world):
    world.set(abandoned_after_minutes=1 / 60)  # a second
    world.create("poison-run", 0, not_implemented=["delete"])
    time.sleep(1.1)
    first = world.reap()
    assert len(first.failed) == 1
    second = world.reap()  # the next scheduled pass
    assert second.failed == [] and second.cancelled == [], "the same hopeless cancel again, two writes more"


# == Finding 8: a poll that changes only the message also moves the heartbeat (the index key) ===============


def test_a_message_only_change_does_not_rewrite_the_recent_heartbeat(world):
    handle = world.create("chatty-run", 0, chatty=True)
    world.poll(handle)  # QUEUED -> RUNNING: a phase change
    first = world.record(handle)
    time.sleep(0.05)
    assert world.poll(handle).message == "job-1 running (poll 2)"
    second = world.record(handle)
    assert second.message == "job-1 running (poll 2)"  # the message is stored, as it must be
    assert second.heartbeat_at == first.heartbeat_at, "the heartbeat was 0.05 s old: no need to move it"


# == Finding 9: a different request for a known task execution id is answered the existing task's handle ====


def test_a_different_request_for_a_known_task_execution_id_does_not_get_its_handle(world):
    first = world.client.create_task(world.request("shared-id-run", 0, x=1)).resource_meta
    other = world.request("shared-id-run", 0, x=2)
    other.output_prefix = "s3://somebody-else/outputs"
    try:
        answered = world.client.create_task(other).resource_meta
    except ConnectError as error:
        assert error.code in (Code.FAILED_PRECONDITION, Code.ALREADY_EXISTS, Code.INVALID_ARGUMENT)
        return
    assert answered != first, "another request was handed the first task's handle"


# == Finding 10: RETRYABLE_FAILED leaves the record active, to be "cancelled" and rewritten ABORTED later ====


def test_a_retryable_failure_settles_the_record(world):
    handle = world.create("retryable-run", 0)
    world.connector.reports["job-1"] = Resource(phase=TaskExecution.RETRYABLE_FAILED, message="internal_error")
    assert world.poll(handle).phase == TaskExecution.RETRYABLE_FAILED
    world.create("retryable-run", 1)  # the executor retries
    older = world.records("retryable-run")[0]
    assert older.state == ENDED and older.phase == TaskExecution.RETRYABLE_FAILED, (older.state, older.message)
    assert world.ledger.jobs()["job-1"]["deletes"] == 0, "a finished job was deleted"


# == Finding 11: the README's IAM paragraph contradicts template.yaml ======================================


def test_the_readme_does_not_list_iam_actions_the_template_no_longer_grants():
    for page in ("README.md", "docs/deploy.md", "docs/api.md"):  # the paragraph moved to the site
        text = (ROOT / page).read_text()
        assert "DeleteItem" not in text, f"{page} names DeleteItem; template.yaml grants it to no function"


# == What held: kept as regression tests ====================================================================


def test_supersede_after_create_keeps_to_the_callers_deadline_and_leaves_the_rest_to_the_reaper(world):
    """The executor's 10 s: a newer attempt's CreateTask answers within the caller's deadline even
    when the older attempt's delete hangs; the older attempt goes back to the reaper, due within a
    minute (the first back-off)."""
    world.create("slow-delete-run", 0, attempts={0: {"delete_seconds": 30}})
    client = AsyncConnectorServiceClientSync(world.server.url, timeout_ms=2500)
    world.set(connector_timeout_seconds=8.0)
    started = time.monotonic()
    handle = client.create_task(
        world.request("slow-delete-run", 1, custom={"attempts": {0: {"delete_seconds": 30}}})
    ).resource_meta
    assert time.monotonic() - started < 2.5
    older = world.records("slow-delete-run")[0]
    window = world.settings.abandoned_after_minutes * 60
    assert older.state == CANCELLING and older.lease_expires_at <= time.time()
    assert older.heartbeat_at <= time.time() - window + 61, "the reaper's pass after next minute takes it"
    assert world.poll(handle).message == "job-2 running"


def test_a_poll_racing_a_reaper_answers_only_what_is_stored(world):
    """The reaper claims a stale task while a poll that read `active` waits on the connector,
    which then says SUCCEEDED: whichever write wins, the poll answers the phase that is stored."""
    world.set(abandoned_after_minutes=1 / 60, connector_timeout_seconds=2.0)
    handle = world.create("race-reaper-run", 0, delete_seconds=1.0)
    time.sleep(1.1)
    world.ledger.delay_next_get(0.8)  # the poll reads `active`, then waits on the connector
    told: dict[str, Any] = {}
    poller = threading.Thread(target=lambda: told.update(answer=world.poll(handle)))
    poller.start()
    time.sleep(0.2)
    world.ledger.set_state("job-1", "succeeded")  # what the late poll's get will say
    reaper = threading.Thread(target=lambda: told.update(report=world.reap(concurrency=1)))
    reaper.start()
    poller.join(10)
    during = world.records("race-reaper-run")[0]
    reaper.join(10)
    assert told["answer"].phase == during.phase, (told["answer"].phase, during.state, during.phase)
    assert world.poll(handle).phase == world.records("race-reaper-run")[0].phase


@pytest.mark.parametrize(
    "handle, code",
    [
        (b"", Code.INVALID_ARGUMENT),
        (b"t2" + b"A" * 48, Code.INVALID_ARGUMENT),
        (b"t1" + b"A" * 47, Code.INVALID_ARGUMENT),
        (b"t1" + b"=" * 48, Code.INVALID_ARGUMENT),
        (b"t1" + b"\xff" * 48, Code.INVALID_ARGUMENT),
        (b"t1" + base64.urlsafe_b64encode(b"\0" * 16 + b"\xff\xff\xff\xff" + b"\0" * 16).rstrip(b"="), Code.NOT_FOUND),
    ],
)
def test_odd_handles_are_refused_with_a_clear_code(world, handle, code):
    assert world.error(world.poll, handle).code == code
    delete = pb.DeleteTaskRequest(resource_meta=handle, task_category=LEDGER)
    assert world.error(world.client.delete_task, delete).code == code


def test_a_handle_with_another_tasks_secret_is_not_found_and_changes_nothing(world):
    handle = world.create("forged-run", 0)
    real = TaskHandle.decode(handle)
    forged = TaskHandle(real.action_digest, real.attempt, bytes(16)).encode()
    before = world.record(handle)
    assert world.error(world.poll, forged).code == Code.NOT_FOUND
    delete = pb.DeleteTaskRequest(resource_meta=forged, task_category=LEDGER)
    assert world.error(world.client.delete_task, delete).code == Code.NOT_FOUND
    assert world.record(handle) == before and world.jobs() == {"job-1": "running"}


@pytest.mark.parametrize(
    "secrets, configs",
    [
        ({"self": "v"}, {}),
        ({}, {"lines": "v"}),
        ({"token": "v"}, {}),
    ],
)
def test_odd_connection_keys_are_invalid_argument_before_anything_starts(world, secrets, configs):
    request = world.request("keys-run", 0, secrets=secrets, configs=configs)
    assert world.error(world.client.create_task, request).code == Code.INVALID_ARGUMENT
    assert world.jobs() == {} and world.records() == {}


def test_a_claim_keeps_no_connection_and_a_finished_task_keeps_no_request(world):
    """create_request packing: the claim holds the request less its secrets (its configs stay, so
    that a replayed create gets them); once active, none."""
    request = world.request(
        "pack-run", 0, custom={"create_seconds": 3}, secrets={"api_key": SECRET}, configs={"region": "eu-west-1"}
    )
    assert world.error(world.client.create_task, request).code == Code.DEADLINE_EXCEEDED
    claim = world.records("pack-run")[0]
    assert claim.state == CLAIMED and claim.create_request
    unpacked = zlib.decompress(claim.create_request)
    assert SECRET.encode() not in unpacked and b"api_key" not in unpacked and b"eu-west-1" in unpacked
    handle = world.client.create_task(request).resource_meta  # the same request again resumes, no new job
    assert world.jobs() == {"job-1": "running"}
    assert world.record(handle).state == ACTIVE and world.record(handle).create_request is None
