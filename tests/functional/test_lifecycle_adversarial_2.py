"""A second adversary's review: attacks on the fixes of the first (commit 3de7ba4 and after).

Each test either reproduces a finding (``xfail(strict=True)`` with the finding's number: the
suite stays green until a fix lands, then turns red until the mark is removed), or pins down an
attack on a fix that held, as a regression test.

The harness is ``tests/ledger_world.py`` (a table, the file-backed ledger, the service on
loopback); ``World2`` runs it with ``Ledger2``, the first review's ``AdversarialLedger`` plus
what these attacks need: a connector that checks its connection secret before anything else
(as real ones do), one whose exception text quotes the secret URL-encoded (as an HTTP client
reports a request URL), one that fails after a delay quoting it raw, and a delete that raises a
chosen error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format
from google.protobuf.json_format import MessageToDict

from connectors import Resource
from connectors.cancel import FIRST_RETRY_SECONDS, pack_create_request
from connectors.create import _execution_fields
from connectors.dev.events import http_api_event
from connectors.errors import Code, invalid_argument
from connectors.runtime import lambda_handler
from connectors.store import ACTIVE, CANCELLING, CLAIMED, ENDED, MAX_NOTES, TaskExecutionKey, TaskRecord, new_secret
from tests.conftest import LambdaContext, scan_table
from tests.functional.test_lifecycle_adversarial import SECRET, AdversarialLedger, wait_for
from tests.ledger_world import LEDGER, LedgerWorld
from tests.remote_ledger import for_attempt

# An AWS-style secret key: '/' and '+' are what URL-quoting changes.
SLASHED_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class Ledger2(AdversarialLedger):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.delete_error: BaseException | None = None  # what delete raises, if set

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = for_attempt(MessageToDict(task_template.custom), task_execution_metadata)
        if custom.get("needs_api_key") and "api_key" not in kwargs:
            # What a connector does first: check its credentials. It started nothing.
            raise invalid_argument("ledger: the connection secret api_key is required")
        if custom.get("leak_quoted"):
            # A key sent as a query parameter (requests' params=) is form-encoded in the URL the HTTP
            # client's error reports: '/' and '+' come out %2F and %2B.
            raise RuntimeError(
                "401 Client Error: Unauthorized for url: https://api.example.com/v1/jobs"
                f"?api_key={quote(kwargs['api_key'], safe='')}"
            )
        if "leak_after" in custom:
            await asyncio.sleep(float(custom["leak_after"]))
            raise RuntimeError(f"401 Unauthorized: api_key={kwargs['api_key']} was refused")
        return await super().create(task_template, output_prefix, inputs, task_execution_metadata, **kwargs)

    async def delete(self, resource_meta, **kwargs) -> None:
        if self.delete_error is not None:
            raise self.delete_error
        await super().delete(resource_meta, **kwargs)


class World2(LedgerWorld):
    """The first review's world (1 s connector deadlines), with Ledger2 as its connector."""

    def __init__(self, dynamodb_client: Any, path: Path, **settings: Any) -> None:
        super().__init__(dynamodb_client, path, Ledger2(path), **{"connector_timeout_seconds": 1.0, **settings})

    def poll_with(self, handle: bytes, secrets: dict[str, str]) -> pb.Resource:
        request = pb.GetTaskRequest(resource_meta=handle, task_category=LEDGER, connection={"secrets": secrets})
        return self.client.get_task(request).resource

    def dead_claim(self, run: str, attempt: int) -> str:
        """A claim whose CreateTask started its job and then died (the Lambda was killed): the
        record as create_task claims it, and the job under the attempt's token. Its job id."""
        request = self.request(run, attempt)
        key = TaskExecutionKey.from_metadata(request.task_execution_metadata)
        record = TaskRecord(
            action_id=key.action_digest().hex(),
            attempt=attempt,
            secret=new_secret(),
            task_type="ledger",
            task_version=0,
            output_prefix=request.output_prefix,
            outputs_interface=request.template.interface.outputs.SerializeToString(),
            execution=_execution_fields(key),
            create_request=pack_create_request(request),
        )
        assert self.service.store.claim(record, self.settings.create_claim_seconds).claimed
        job_id, _ = self.ledger.start(key.idempotency_token(), False)
        return job_id


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[World2]:
    with World2(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def stored_text(world: World2) -> str:
    return repr(scan_table(world.dynamodb_client, world.settings.tasks_table))


def logged_text(caplog: Any) -> str:
    """What the service logs (botocore's DEBUG lines, request parameters, are off in a deployment)."""
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name.startswith("connectors"))


# == Finding 1: supersede's write that loses to the older attempt's own finish or release is "skipped" =======
# supersede reads the attempts (one Query), then marks a live claim at the version it read. If the
# older attempt's create finishes (or fails and releases) between the two, the mark loses and the
# older attempt is only "skipped": nobody decides again on the record it lost to. The older job
# then runs, watched by nobody, until the reaper's window passes from its claim (60 min).


@pytest.mark.parametrize("older_ends_by", ["finish", "release"])
def test_supersede_decides_again_when_the_older_attempts_create_ends_between_its_read_and_its_mark(
    world, older_ends_by
):
    run = f"mark-race-{older_ends_by}"
    # "finish": attempt 0's create answers after 2 s, within its 3 s; "release": its 2 s deadline passes.
    world.set(connector_timeout_seconds=3.0 if older_ends_by == "finish" else 2.0)
    older_custom = {"attempts": {0: {"create_seconds": 2.0 if older_ends_by == "finish" else 5}}}
    older: dict[str, Any] = {}

    def create_attempt_0() -> None:
        try:
            older["handle"] = world.create(run, 0, **older_custom)
        except ConnectError as error:
            older["error"] = error

    real_mark = world.service.store.mark_superseded

    def mark_after_the_older_create_ended(record: TaskRecord, newer_attempt: int) -> TaskRecord:
        # The Query saw attempt 0 claimed with a live lease; its create ends before the mark is written.
        def ended() -> bool:
            now = world.records(run)[0]
            return now.state == ACTIVE or (now.state == CLAIMED and now.lease_expired(time.time()))

        wait_for(ended, 5.0)
        return real_mark(record, newer_attempt)

    world.service.store.mark_superseded = mark_after_the_older_create_ended
    thread = threading.Thread(target=create_attempt_0)
    thread.start()
    wait_for(lambda: "job-1" in world.jobs())  # attempt 0's job started; its CreateTask is still out
    world.create(run, 1, **older_custom)  # the executor gave up on attempt 0: attempt 1
    thread.join(10)
    attempt_0 = world.records(run)[0]
    assert world.jobs()["job-1"] == "cancelled", (
        f"job-1 runs on; attempt 0 is {attempt_0.state}, superseded_by={attempt_0.superseded_by}, heartbeat "
        f"{time.time() - attempt_0.heartbeat_at:.0f} s old: the reaper takes it after "
        f"{world.settings.abandoned_after_minutes:g} min"
    )


# == Finding 2: a refused CreateTask of an older attempt makes a canceller start the job it refused =========
# _refuse_if_superseded releases the claim it just made (rather than ending it), even when that
# claim was fresh (no earlier try of the attempt, so connector.create was never called). A
# canceller (the newer attempt's supersede, or the reaper) then replays create with the
# attempt's token to find "its" job: the replay starts a job nobody asked for, then deletes it.


def test_a_refused_late_create_never_gets_a_job_started_for_it(world):
    world.create("refused-run", 1)  # job-1
    assert world.error(world.create, "refused-run", 0).code == Code.FAILED_PRECONDITION  # late attempt 0
    assert len(world.jobs()) == 1  # nothing started, as promised
    world.create("refused-run", 2)  # the executor's next attempt supersedes 1 and 0
    tokens = {job["token"] for job in world.ledger.jobs().values()}
    attempt_0 = TaskExecutionKey.from_metadata(world.request("refused-run", 0).task_execution_metadata)
    assert attempt_0.idempotency_token() not in tokens, (
        f"a job was started for attempt 0 to cancel it: {world.ledger.jobs()}, {world.records('refused-run')[0].notes}"
    )


# == Finding 3: a replayed create's "refusal" is trusted even when the replay itself caused it ===============
# _REFUSED (invalid_argument, failed_precondition, ...) on a replay ends the record "no job was
# started". But the reaper replays without the connection secrets: a connector that checks its
# credentials first answers invalid_argument, and the record of a running job is ended. A remote
# that is idempotent by job name, not by token, answers a replay "already exists" (AWS's
# ValidationException for SageMaker/Glue names: invalid_argument in a code-family mapping).


@pytest.mark.parametrize("canceller", ["reaper-without-secrets", "supersede-already-exists"])
def test_a_replay_refused_for_a_reason_of_the_replay_does_not_forget_the_running_job(world, canceller):
    run = f"refused-replay-{canceller}"
    custom = {"needs_api_key": True, "attempts": {0: {"create_seconds": 3}}}
    request = world.request(run, 0, custom=custom, secrets={"api_key": SECRET})
    assert world.error(world.client.create_task, request).code == Code.DEADLINE_EXCEEDED
    assert world.jobs() == {"job-1": "running"}  # started with the secret; the answer was lost
    if canceller == "reaper-without-secrets":
        world.reap(now=time.time() + world.settings.abandoned_after_minutes * 60 + 60)
    else:
        world.connector.replay_error = invalid_argument("ValidationException: a job with this name already exists")
        newer = world.request(run, 1, custom=custom, secrets={"api_key": SECRET})
        world.client.create_task(newer)
    record = world.records(run)[0]
    assert world.jobs()["job-1"] == "cancelled" or record.state != ENDED, (
        f"job-1 runs on; attempt 0 ended: {record.notes}"
    )


# == Finding 4: redaction matches the secret's exact text only =============================================


def test_a_url_quoted_secret_in_a_connector_error_is_not_stored_answered_or_logged(world, caplog):
    caplog.set_level(logging.DEBUG)
    request = world.request("quoted-leak-run", 0, custom={"leak_quoted": True}, secrets={"api_key": SLASHED_SECRET})
    error = world.error(world.client.create_task, request)
    assert error.code == Code.INTERNAL
    quoted = quote(SLASHED_SECRET, safe="")
    assert SLASHED_SECRET not in error.message  # the literal form is cut (held)
    leaks = [
        where
        for where, text in (("answer", error.message), ("table", stored_text(world)), ("logs", logged_text(caplog)))
        if quoted in text
    ]
    assert leaks == [], f"the URL-quoted secret {quoted} is in: {leaks}"


# == Finding 5: a secret in a report's custom_info or log links is answered (and shown in the UI) ===========


@pytest.mark.parametrize("where", ["custom_info", "log_links"])
def test_a_secret_in_a_reports_custom_info_or_log_links_is_not_answered(world, where):
    handle = world.create("report-leak-run", 0)
    world.connector.reports["job-1"] = Resource(
        phase=TaskExecution.RUNNING,
        message=f"submitted with key {SECRET}",
        custom_info={"containerOverrides": {"environment": [{"name": "API_KEY", "value": SECRET}]}}
        if where == "custom_info"
        else None,
        log_links=[TaskLog(name="console", uri=f"https://console.example.com/jobs/1?token={SECRET}")]
        if where == "log_links"
        else None,
    )
    answer = world.poll_with(handle, {"api_key": SECRET})
    assert SECRET not in answer.message  # held: the message is cut
    assert SECRET not in json_format.MessageToJson(answer), f"the secret is answered in {where}"
    assert SECRET not in stored_text(world), f"the secret is stored from {where}"  # links are kept in the record
    if where == "log_links":
        assert [link.uri for link in answer.log_links] == ["https://console.example.com/jobs/1?token=***"]


# == Finding 6: a CreateTask whose caller's deadline had passed before the handler ran still calls create ====


class FifteenSeconds(LambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def test_a_create_whose_callers_deadline_passed_before_it_arrived_starts_nothing(world):
    handler = lambda_handler(["CreateTask"], service=world.service)
    body = world.request("late-arrival-run", 0, custom={"create_seconds": 0.5}).SerializeToString()
    event = http_api_event("POST", "/flyteidl2.connector.AsyncConnectorService/CreateTask", body)
    event["headers"]["connect-timeout-ms"] = "3000"
    event["requestContext"]["timeEpoch"] = int((time.time() - 5) * 1000)  # a cold start 5 s long
    response = handler(event, FifteenSeconds())
    assert response["statusCode"] == 504
    time.sleep(0.3)  # a job the connector started (its thread finishes whatever wait_for says)
    assert world.jobs() == {}, f"a job was started for a caller that gave up 2 s before: {world.jobs()}"


# == Finding 7: the REST transport ignores the caller's deadline ===========================================


def test_the_rest_transport_keeps_to_the_callers_grpc_timeout(world):
    world.set(connector_timeout_seconds=2.0)
    request = world.request("rest-deadline-run", 0, custom={"create_seconds": 5})
    started = time.monotonic()
    response = httpx.post(
        f"{world.server.url}/api/v1/connector/task",
        content=json_format.MessageToJson(request),
        headers={"content-type": "application/json", "Grpc-Timeout": "500m"},
        timeout=10,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert elapsed < 1.2, f"answered after {elapsed:.2f} s; the caller gave up after 0.5 s"


# == Finding 8: custom_info that cannot be carried makes every poll `internal` ==============================


def test_custom_info_too_deep_to_encode_is_left_out_and_the_phase_answered(world):
    handle = world.create("deep-info-run", 0)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    world.connector.reports["job-1"] = Resource(phase=TaskExecution.RUNNING, message="running", custom_info=deep)
    assert world.poll(handle).phase == TaskExecution.RUNNING


# == What held: kept as regression tests ====================================================================


def test_a_superseded_claim_whose_owner_died_is_not_stuck_and_its_retry_starts_nothing(world):
    """A newer attempt marks a live claim (heartbeat 0); its owner is dead. A retry of the older
    attempt is refused (lease live, then expired: the claim put refuses a superseded claim), and
    the reaper takes the claim at its first pass after the lease ends, finding the job by replay."""
    world.set(create_claim_seconds=1.0)
    job = world.dead_claim("dead-owner-run", 0)
    world.create("dead-owner-run", 1)
    older = world.records("dead-owner-run")[0]
    assert (older.state, older.superseded_by, older.heartbeat_at) == (CLAIMED, 1, 0)
    assert world.error(world.create, "dead-owner-run", 0).code == Code.FAILED_PRECONDITION
    early = world.reap()
    assert early.cancelled == [] and world.jobs()[job] == "running"  # the lease still lives: left alone
    time.sleep(1.1)
    assert world.error(world.create, "dead-owner-run", 0).code == Code.FAILED_PRECONDITION
    assert len(world.jobs()) == 2  # attempt 0's job and attempt 1's: no new one
    assert len(world.reap().cancelled) == 1
    older = world.records("dead-owner-run")[0]
    assert world.jobs()[job] == "cancelled" and (older.state, older.phase) == (ENDED, TaskExecution.ABORTED)


def test_an_older_create_that_loses_to_the_mark_deletes_its_job_and_a_resend_starts_nothing(world):
    world.set(connector_timeout_seconds=3.0)
    slow_0 = {0: {"create_seconds": 1.0}}
    older: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: older.update(error=world.error(world.create, "resend-run", 0, attempts=slow_0))
    )
    thread.start()
    wait_for(lambda: "job-1" in world.jobs())
    world.create("resend-run", 1, attempts=slow_0)
    thread.join(10)
    assert older["error"].code == Code.FAILED_PRECONDITION
    assert world.error(world.create, "resend-run", 0, attempts=slow_0).code == Code.FAILED_PRECONDITION
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}
    assert world.records("resend-run")[0].state == ENDED


def test_a_replay_that_fails_forever_backs_off_to_the_window_and_keeps_the_record(world):
    """The reaper's passes over a cancel that keeps failing (a replayed create that meets a
    network error): each waits twice as long as the last, up to the abandonment window; the
    notes stop at MAX_NOTES; the TTL is pushed on each time; the record is never ended."""
    assert world.error(world.create, "forever-run", 0, create_seconds=3).code == Code.DEADLINE_EXCEEDED
    world.connector.replay_error = ConnectionError("connection reset by peer")
    world.set(replay_window_minutes=30 * 24 * 60)  # the ledger keeps its tokens: a day of passes stays inside
    clock = [time.time()]
    world.service.store.clock = lambda: clock[0]
    window = world.settings.abandoned_after_minutes * 60
    gaps = []
    for _ in range(25):
        due = world.records("forever-run")[0].heartbeat_at + window
        clock[0] = due - 1
        assert world.reap(now=clock[0]).failed == []  # not yet due: left alone
        clock[0] = due + 0.5
        assert len(world.reap(now=clock[0]).failed) == 1
        record = world.records("forever-run")[0]
        gaps.append(round(record.heartbeat_at + window - clock[0]))
        assert record.state == CANCELLING and record.expires_at >= clock[0] + 29 * 86400
    expected = [min(window, FIRST_RETRY_SECONDS * 2**n) for n in range(25)]
    assert gaps[:7] == [round(g) for g in expected[:7]] and set(gaps[7:]) == {round(window)}
    assert len(record.notes) == MAX_NOTES and world.jobs() == {"job-1": "running"}


def test_concurrent_requests_each_redact_their_own_secret(world):
    """The secret values live in a context variable: a request that sets none while another's
    connector is still running does not clear the other's."""
    answers: dict[str, Any] = {}

    def leaking() -> None:
        request = world.request("ctx-run-a", 0, custom={"leak_after": 0.4}, secrets={"api_key": SECRET})
        answers["a"] = world.error(world.client.create_task, request)

    thread = threading.Thread(target=leaking)
    thread.start()
    time.sleep(0.1)
    for n in range(3):  # requests without secrets while A's connector runs
        world.create(f"ctx-run-b{n}", 0)
    thread.join(10)
    assert answers["a"].code == Code.INTERNAL and SECRET not in answers["a"].message
    assert "***" in answers["a"].message


def test_a_supersede_inside_create_redacts_the_older_attempts_cancel_failure(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.create("supersede-redact-run", 0)
    world.connector.delete_error = RuntimeError(f"403 Forbidden: key {SECRET} may not cancel job-1")
    world.client.create_task(world.request("supersede-redact-run", 1, secrets={"api_key": SECRET}))
    older = world.records("supersede-redact-run")[0]
    assert older.state == CANCELLING and any("***" in note for note in older.notes)
    assert SECRET not in stored_text(world) and SECRET not in logged_text(caplog)


@pytest.mark.parametrize("time_epoch", [None, "garbage", True, "future"])
def test_a_missing_or_odd_time_epoch_leaves_the_caller_its_whole_deadline(world, time_epoch):
    handler = lambda_handler(["CreateTask"], service=world.service)
    body = world.request(f"epoch-run-{time_epoch}", 0, custom={"create_seconds": 0.3}).SerializeToString()
    event = http_api_event("POST", "/flyteidl2.connector.AsyncConnectorService/CreateTask", body)
    event["headers"]["connect-timeout-ms"] = "3000"
    if time_epoch is None:
        del event["requestContext"]["timeEpoch"]
    else:  # API Gateway's clock 10 s ahead of the Lambda's: nothing spent, not a negative
        event["requestContext"]["timeEpoch"] = int((time.time() + 10) * 1000) if time_epoch == "future" else time_epoch
    assert handler(event, FifteenSeconds())["statusCode"] == 200


def test_a_phase_outside_the_enum_is_answered_as_stored_and_delete_still_stops_the_job(world):
    """Phase 99 passes through, as the flyte SDK's server passes it (the executor treats it as a
    system error and deletes the task): what is answered is what is stored."""
    handle = world.create("phase-99-run", 0)
    world.connector.reports["job-1"] = Resource(phase=99, message="what is this")
    assert world.poll(handle).phase == 99
    assert world.record(handle).phase == 99 and world.record(handle).state == ACTIVE
    world.client.delete_task(pb.DeleteTaskRequest(resource_meta=handle, task_category=LEDGER))
    assert world.jobs() == {"job-1": "cancelled"} and world.record(handle).state == ENDED
