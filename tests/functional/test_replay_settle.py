"""A create whose outcome is unknown, for a connector that finds an earlier try's job by a look-up
that lags (Batch's ListJobs): it is not replayed until its ``replay_settle_seconds`` have passed,
by a retry of the same attempt, a newer attempt or the reaper, so the look-up sees the job."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.errors import Code
from connectors.store import CLAIMED, ENDED
from tests.ledger_world import LedgerWorld
from tests.remote_ledger import LedgerConnector

SETTLE = 3.0


class LaggingLedgerConnector(LedgerConnector):
    replay_settle_seconds = SETTLE


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[LedgerWorld]:
    with LedgerWorld(dynamodb_client, tmp_path / "ledger.json", LaggingLedgerConnector(tmp_path / "ledger.json")) as w:
        yield w


def test_a_retry_of_the_same_attempt_waits_for_the_settle_time_then_resumes_with_one_job(world):
    assert world.error(world.create, "settle-run", 0, create_seconds=5).code == Code.DEADLINE_EXCEEDED
    claim = world.records("settle-run")[0]
    assert claim.state == CLAIMED and claim.lease_expires_at >= time.time() + SETTLE - 1.5
    early = world.error(world.create, "settle-run", 0, create_seconds=5)
    assert early.code == Code.UNAVAILABLE and "in progress" in early.message
    time.sleep(SETTLE)
    handle = world.create("settle-run", 0, create_seconds=5)
    assert list(world.jobs()) == ["job-1"] and world.poll(handle).message == "job-1 running"


def test_a_newer_attempt_within_the_settle_time_leaves_the_older_job_to_the_reaper_which_cancels_it(world):
    slow_0 = {0: {"create_seconds": 5}}  # every attempt sends the same template, as the executor does
    assert world.error(world.create, "newer-run", 0, attempts=slow_0).code == Code.DEADLINE_EXCEEDED
    world.create("newer-run", 1, attempts=slow_0)
    older = world.records("newer-run")[0]
    assert older.state == CLAIMED and older.superseded_by == 1  # marked, not replayed yet
    assert world.jobs() == {"job-1": "running", "job-2": "running"}
    assert world.reap().cancelled == []  # its lease (the settle time) still holds
    time.sleep(SETTLE)
    report = world.reap()
    assert len(report.cancelled) == 1
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}
    assert world.records("newer-run")[0].state == ENDED and world.records("newer-run")[0].phase == TaskExecution.ABORTED


def test_a_refused_create_is_not_held(world):
    error = world.error(world.create, "refused-run", 0, outputs="not-a-dict", not_implemented=["create"])
    assert error.code == Code.UNIMPLEMENTED
    assert world.records("refused-run")[0].lease_expires_at <= time.time()
