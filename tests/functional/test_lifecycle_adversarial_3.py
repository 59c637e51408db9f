"""A third adversary's review: attacks on the fixes of the second (commits 9d8d779..79a7134).

Each test either reproduces a finding (``xfail(strict=True)`` with the finding's number: the
suite stays green until a fix lands, then turns red until the mark is removed), or pins down an
attack on a fix that held, as a regression test.

The harness is the second review's ``World2`` (``tests/ledger_world.py`` with ``Ledger2``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format

from connectors import Resource
from connectors.connector_calls import deadline_passed, grpc_timeout_seconds, request_deadline
from connectors.errors import Code, invalid_argument
from connectors.store import ACTIVE, CANCELLING, CLAIMED, ENDED, RecordChanged, TaskExecutionKey, TaskRecord
from tests.functional.test_lifecycle_adversarial_2 import SLASHED_SECRET, World2


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[World2]:
    with World2(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def token_of(world: World2, run: str, attempt: int) -> str:
    return TaskExecutionKey.from_metadata(world.request(run, attempt).task_execution_metadata).idempotency_token()


# == Finding 1: create_error is the last try's, so a retry's refusal makes an earlier try's job "no job" ====
# A refused replay is trusted when record.create_error is a refusal. But the claim that takes over
# a released claim is a PutItem of a fresh record (create_error gone), and release_claim then
# writes only the *latest* try's error. Try 1's create timed out after the remote started the job
# (create_error deadline_exceeded); the executor retries CreateTask; a name-idempotent remote
# refuses try 2 "already exists" (invalid_argument); the record now says create_error =
# invalid_argument. The newer attempt's replay is refused the same way and trusted: the record
# ends "no job was started" while try 1's job runs on, watched by nobody.


def test_a_retry_refused_after_a_try_that_timed_out_does_not_make_the_running_job_forgotten(world):
    run = "retry-refused-run"
    assert world.error(world.create, run, 0, attempts={0: {"create_seconds": 3}}).code == Code.DEADLINE_EXCEEDED
    assert world.jobs() == {"job-1": "running"}
    assert world.records(run)[0].create_error == "deadline_exceeded"  # held: not trusted as it is
    world.connector.replay_error = invalid_argument("ValidationException: a job with this name already exists")
    assert (
        world.error(world.create, run, 0, attempts={0: {"create_seconds": 3}}).code == Code.INVALID_ARGUMENT
    )  # the executor's retry
    assert world.records(run)[0].create_error == ""  # try 1's outcome is unknown, and stays unknown
    world.create(
        run, 1, attempts={0: {"create_seconds": 3}}
    )  # the next attempt supersedes attempt 0: its replay is refused too
    record = world.records(run)[0]
    assert world.jobs()["job-1"] == "cancelled" or record.state != ENDED, (
        f"job-1 runs on; attempt 0 ended: {record.notes}"
    )


# == Finding 2: a secret URL-quoted the default way (quote(), '/' kept) is not cut ==========================
# The forms cut are the value, quote(value, safe=""), quote_plus(value) and the JSON escape. But
# urllib.parse.quote's default keeps '/': an AWS-style key with '/' and '+' comes out '/' raw and
# '+' as %2B, a form none of the four match. Console links are built that way.


def test_a_secret_quoted_with_the_default_safe_slash_is_not_answered_in_a_log_link(world):
    handle = world.create("default-quote-run", 0)
    quoted = quote(SLASHED_SECRET)
    assert "/" in quoted and "%2B" in quoted
    world.connector.reports["job-1"] = Resource(
        phase=TaskExecution.RUNNING,
        message="running",
        log_links=[TaskLog(name="console", uri=f"https://console.example.com/jobs/1?token={quoted}")],
    )
    answer = world.poll_with(handle, {"api_key": SLASHED_SECRET})
    assert quoted not in json_format.MessageToJson(answer), "the quoted secret is answered in a log link"


# == Finding 3: a secret that is a JSON token drops all of custom_info ======================================
# custom_info is redacted as serialized JSON text: a secret equal to a number in it (an account
# id, a PIN), or to true/false/null, is replaced by a bare *** and the text no longer parses; the
# whole custom_info is then left out (logged as a warning), not just the secret.


def test_a_numeric_secret_in_custom_info_is_cut_without_dropping_the_rest(world):
    handle = world.create("numeric-secret-run", 0)
    world.connector.reports["job-1"] = Resource(
        phase=TaskExecution.RUNNING, message="running", custom_info={"accountId": 123456789012, "jobId": "j-42"}
    )
    answer = world.poll_with(handle, {"account": "123456789012"})
    info = json_format.MessageToDict(answer.custom_info)
    assert "123456789012" not in json_format.MessageToJson(answer)  # held: not leaked
    assert info.get("jobId") == "j-42", f"custom_info was dropped: {info}"


# == Finding 4: a malformed Grpc-Timeout header makes a REST call a bare 500 ================================
# grpc_timeout_seconds promises None for a malformed header, but str.isdigit() accepts what int()
# refuses ('²', which a latin-1 header carries) and an over-long digit string overflows float: the
# exception is raised in _answer before its try, so the caller gets Starlette's text/plain 500,
# not a {"code", "message"} answer, and the request is not served.


@pytest.mark.parametrize("header", [b"\xb2S", b"1" * 400 + b"H"], ids=["superscript-two", "400-digits"])
def test_a_malformed_grpc_timeout_is_ignored_on_rest(world, header):
    request = world.request(f"odd-timeout-run-{len(header)}", 0)
    response = httpx.post(
        f"{world.server.url}/api/v1/connector/task",
        content=json_format.MessageToJson(request),
        headers=[(b"content-type", b"application/json"), (b"grpc-timeout", header)],
        timeout=10,
    )
    assert response.status_code == 200, f"{response.status_code}: {response.text[:200]}"


# == What held: kept as regression tests ====================================================================


def test_grpc_timeout_parsing_edges():
    assert grpc_timeout_seconds(None) is None and grpc_timeout_seconds("") is None
    assert grpc_timeout_seconds("S") is None and grpc_timeout_seconds("-5S") is None
    assert grpc_timeout_seconds("10x") is None and grpc_timeout_seconds("1.5S") is None
    assert grpc_timeout_seconds("500m") == 0.5 and grpc_timeout_seconds("99999999H") == 99999999 * 3600.0


def test_a_huge_grpc_timeout_leaves_the_call_its_own_deadline(world):
    response = httpx.post(
        f"{world.server.url}/api/v1/connector/task",
        content=json_format.MessageToJson(world.request("huge-timeout-run", 0)),
        headers={"content-type": "application/json", "Grpc-Timeout": "99999999H"},
        timeout=10,
    )
    assert response.status_code == 200 and world.jobs() == {"job-1": "running"}


def test_deadline_passed_without_a_deadline_is_false():
    token = request_deadline.set(None)
    try:
        assert deadline_passed() is False
    finally:
        request_deadline.reset(token)


def test_claim_reports_took_over_only_when_it_replaced_a_claim_and_a_lost_answer_counts_as_one(world):
    """A fresh claim: took_over False. The same put again (botocore's retry after a lost answer):
    claimed, took_over False (a fresh claim is a put if absent: it replaced nothing). A takeover
    of a released claim: took_over True, and the claim keeps the first try's created_at (the
    replay window counts from it)."""
    run = "took-over-run"
    assert world.error(world.create, run, 0, create_seconds=3).code == Code.DEADLINE_EXCEEDED
    released = world.records(run)[0]
    store = world.service.store
    fresh = TaskRecord(
        **{**released.__dict__, "attempt": 5, "secret": b"s" * 16, "version": 1, "state": CLAIMED, "create_error": None}
    )
    first = store.claim(fresh, 60)
    assert first.claimed and not first.took_over
    again = store.claim(fresh, 60)
    assert again.claimed and not again.took_over
    takeover = TaskRecord(**{**released.__dict__, "secret": b"t" * 16, "version": 1, "create_error": None})
    result = store.claim(takeover, 60)
    assert result.claimed and result.took_over
    assert world.records(run)[0].created_at == released.created_at and result.record.version == released.version + 1


def test_a_takeover_with_another_request_is_refused_and_leaves_the_released_claim(world):
    run = "digest-takeover-run"
    assert world.error(world.create, run, 0, attempts={0: {"create_seconds": 3}}).code == Code.DEADLINE_EXCEEDED
    before = world.records(run)[0]
    assert (
        world.error(world.create, run, 0, attempts={0: {"create_seconds": 3}}, other=1).code == Code.FAILED_PRECONDITION
    )
    after = world.records(run)[0]
    assert (after.secret, after.version, after.create_request) == (before.secret, before.version, before.create_request)
    world.create(run, 1, attempts={0: {"create_seconds": 3}})  # the released claim is still found and its job cancelled
    assert world.jobs()["job-1"] == "cancelled"


def test_supersede_leaves_an_older_record_another_canceller_holds(world):
    """An older attempt in `cancelling` with a live lease (the reaper holds it): the newer
    attempt's supersede does not cancel it a second time, and the record stays the holder's."""
    run = "held-cancel-run"
    handle = world.create(run, 0)
    record = world.record(handle)
    held = world.service.store.claim_cancel(record, b"r" * 16, 60, "reaper")
    world.create(run, 1)
    older = world.records(run)[0]
    assert older.state == CANCELLING and older.lease_owner == held.lease_owner
    assert world.ledger.jobs()["job-1"]["deletes"] == 0


def test_supersede_decides_again_when_its_mark_loses_to_a_release(world):
    """_take_older's loop: the mark loses to the older create's release; it then claims the
    released record as a canceller and cancels its job (the second review's finding 1, held)."""
    run = "take-older-run"
    assert world.error(world.create, run, 0, attempts={0: {"create_seconds": 3}}).code == Code.DEADLINE_EXCEEDED
    released = world.records(run)[0]
    stale = TaskRecord(**{**released.__dict__, "version": released.version - 1, "lease_expires_at": time.time() + 60})
    store = world.service.store
    real_attempts = store.attempts
    store.attempts = lambda action_id: [stale if r.attempt == 0 else r for r in real_attempts(action_id)]
    try:
        with pytest.raises(RecordChanged):
            store.mark_superseded(stale, 1)
        world.create(run, 1, attempts={0: {"create_seconds": 3}})
    finally:
        store.attempts = real_attempts
    assert world.jobs()["job-1"] == "cancelled" and world.records(run)[0].state == ENDED


def test_the_served_answer_to_an_ended_duplicate_with_another_request_names_the_request(world):
    run = "ended-digest-run"
    handle = world.create(run, 0)
    assert world.record(handle).state == ACTIVE
    error = world.error(world.create, run, 0, other=2)
    assert error.code == Code.FAILED_PRECONDITION and "another request" in error.message


def test_a_refused_late_create_is_ended_even_when_the_newer_attempts_mark_lands_first(world):
    """The newer attempt's supersede reads the late claim live and marks it between the late
    create's claim and its end: end_create (state claimed, lease ours; not conditional on the
    mark) still ends it, and no canceller ever replays a create for it."""
    run = "late-vs-mark-run"
    world.set(create_claim_seconds=1.0)
    world.create(run, 1)
    store = world.service.store
    real_end = store.end_create

    def end_after_the_newer_attempts_mark(record: TaskRecord, phase: int, message: str) -> TaskRecord:
        store.mark_superseded(world.records(run)[0], 1)
        return real_end(record, phase, message)

    store.end_create = end_after_the_newer_attempts_mark
    try:
        assert world.error(world.create, run, 0).code == Code.FAILED_PRECONDITION
    finally:
        store.end_create = real_end
    assert world.records(run)[0].state == ENDED
    time.sleep(1.1)
    world.reap(now=time.time() + world.settings.abandoned_after_minutes * 60 + 60)
    assert token_of(world, run, 0) not in {job["token"] for job in world.ledger.jobs().values()}
