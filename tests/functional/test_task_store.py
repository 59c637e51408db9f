"""The task store's writes against the real local DynamoDB: claims, polls, expiry."""

from __future__ import annotations

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.errors import Code, ConnectError
from connectors.store import RecordChanged, TaskRecord, TaskStore, new_secret
from tests.conftest import make_table

DAY = 86400


@pytest.fixture
def store(dynamodb_client) -> TaskStore:
    store = TaskStore(make_table(dynamodb_client), dynamodb_client, active_retention_days=30, terminal_retention_days=7)
    store.clock = lambda: 1_000_000.0
    return store


def created(store: TaskStore, attempt: int = 0) -> TaskRecord:
    record = TaskRecord(action_id="ab" * 16, attempt=attempt, secret=new_secret(), task_type="echo", task_version=0)
    assert store.claim(record, claim_seconds=60).claimed
    return store.finish_create(record, b"{}", TaskExecution.QUEUED)


def test_every_poll_of_an_active_task_pushes_its_expiry_on(store):
    record = created(store)
    store.clock = lambda: 1_000_000.0 + 40 * DAY  # past the first expiry, still polled
    polled = store.record_poll(record, record.phase, record.message)
    assert polled.expires_at == int(1_000_000 + 70 * DAY) and polled.polled_at == 1_000_000 + 40 * DAY
    assert polled.version == record.version  # a plain poll is not a change


def test_a_terminal_record_leaves_the_active_index_and_expires_after_the_retention(store):
    record = created(store)
    done = store.record_poll(record, TaskExecution.SUCCEEDED, "done")
    assert done.active_shard is None and done.polled_at is None
    assert done.expires_at == int(1_000_000 + 7 * DAY)
    with pytest.raises(RecordChanged) as caught:  # a stale writer cannot move it back
        store.record_poll(record, TaskExecution.RUNNING, "still running")
    assert caught.value.current.phase == TaskExecution.SUCCEEDED


def test_a_live_claim_is_not_taken_over_but_an_expired_one_is(store):
    first = TaskRecord(action_id="cd" * 16, attempt=0, secret=new_secret(), task_type="echo", task_version=0)
    assert store.claim(first, claim_seconds=60).claimed
    second = TaskRecord(action_id="cd" * 16, attempt=0, secret=new_secret(), task_type="echo", task_version=0)
    held = store.claim(second, claim_seconds=60)
    assert not held.claimed and held.record.secret == first.secret
    store.clock = lambda: 1_000_000.0 + 61
    assert store.claim(second, claim_seconds=60).claimed
    with pytest.raises(RecordChanged):  # the first caller lost its claim and cannot finish it
        store.finish_create(first, b"{}", TaskExecution.QUEUED)


def test_a_claimed_record_is_not_served_until_created(store):
    record = TaskRecord(action_id="ef" * 16, attempt=0, secret=new_secret(), task_type="echo", task_version=0)
    store.claim(record, claim_seconds=60)
    with pytest.raises(ConnectError) as caught:
        store.load(record.handle)
    assert caught.value.code == Code.UNAVAILABLE
