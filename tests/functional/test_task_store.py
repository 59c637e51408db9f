"""The lifecycle's conditional writes against the real local DynamoDB: one test per row that matters."""

from __future__ import annotations

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.errors import Code, ConnectError
from connectors.store import (
    ACTIVE,
    CANCELLING,
    CLAIMED,
    ENDED,
    MAX_NOTES,
    RecordChanged,
    StaleTask,
    TaskRecord,
    TaskStore,
    new_secret,
)
from connectors.store.budget import LATER_GROWTH_BYTES, MAX_ITEM_BYTES, MESSAGE_BYTES, NOTE_BYTES, item_bytes
from tests.conftest import make_table

DAY = 86400
T0 = 1_000_000.0


@pytest.fixture
def store(dynamodb_client) -> TaskStore:
    store = TaskStore(make_table(dynamodb_client), dynamodb_client, active_retention_days=30, terminal_retention_days=7)
    store.clock = lambda: T0
    return store


def new_record(action: str = "ab", attempt: int = 0, **fields) -> TaskRecord:
    return TaskRecord(
        action_id=action * 16,
        attempt=attempt,
        secret=new_secret(),
        task_type="echo",
        task_version=0,
        create_request=b"request",
        **fields,
    )


def created(store: TaskStore, action: str = "ab", attempt: int = 0) -> TaskRecord:
    record = new_record(action, attempt)
    assert store.claim(record, lease_seconds=60).claimed
    return store.finish_create(record, b"{}", TaskExecution.QUEUED)


def test_finish_moves_a_claim_to_active_and_drops_what_only_a_claim_needs(store):
    record = created(store)
    assert record.state == ACTIVE and record.resource_meta == b"{}" and record.heartbeat_at == T0
    assert record.lease_owner is None and record.lease_expires_at is None and record.create_request is None


def test_a_heartbeat_pushes_expiry_on_without_a_new_version(store):
    record = created(store)
    store.clock = lambda: T0 + 40 * DAY  # past the first expiry, still polled
    beat = store.heartbeat(record)
    assert beat.expires_at == int(T0 + 70 * DAY) and beat.heartbeat_at == T0 + 40 * DAY
    assert beat.version == record.version


def test_an_ended_record_leaves_the_index_and_no_poll_write_lands_on_it(store):
    record = created(store)
    done = store.record_phase(record, TaskExecution.SUCCEEDED, "done")
    assert done.state == ENDED and done.active_shard is None and done.heartbeat_at is None
    assert done.expires_at == int(T0 + 7 * DAY)
    for late_write in (
        lambda: store.record_phase(record, TaskExecution.RUNNING, "still running"),
        lambda: store.heartbeat(record),
        lambda: store.delete_task(record, TaskExecution.ABORTED, "deleted"),
    ):
        with pytest.raises(RecordChanged) as caught:  # edge 8: a late writer cannot touch it
            late_write()
        assert caught.value.current.phase == TaskExecution.SUCCEEDED
    assert store.attempts(record.action_id)[0].heartbeat_at is None


def test_a_phase_write_at_a_stale_version_loses(store):
    record = created(store)
    store.record_phase(record, TaskExecution.RUNNING, "message one")
    with pytest.raises(RecordChanged) as caught:
        store.record_phase(record, TaskExecution.SUCCEEDED, "done")
    assert caught.value.current.state == ACTIVE and caught.value.current.message == "message one"


def test_a_live_claim_is_not_taken_over_but_a_released_or_expired_one_is(store):
    first = new_record("cd")
    assert store.claim(first, lease_seconds=60).claimed
    second = new_record("cd")
    held = store.claim(second, lease_seconds=60)
    assert not held.claimed and held.record.secret == first.secret
    store.clock = lambda: T0 + 61
    assert store.claim(second, lease_seconds=60).claimed
    with pytest.raises(RecordChanged):  # the first caller lost its claim and cannot finish it
        store.finish_create(first, b"{}", TaskExecution.QUEUED)
    store.release_claim(second, "create failed (deadline_exceeded): slow")
    third = new_record("cd")
    store.clock = lambda: T0 + 62
    assert store.claim(third, lease_seconds=60).claimed  # released: taken over at once


def test_a_claimed_record_is_not_served(store):
    record = new_record("ef")
    store.claim(record, lease_seconds=60)
    with pytest.raises(ConnectError) as caught:
        store.load(record.handle)
    assert caught.value.code == Code.UNAVAILABLE


def test_the_reaper_claims_only_at_the_stale_heartbeat_it_listed(store):
    record = created(store, "aa")
    [[stale]] = list(store.stale_tasks(T0 + 1))
    assert stale == StaleTask(record.action_id, 0, T0)
    store.clock = lambda: T0 + 600
    store.heartbeat(record)  # an executor polled after the listing
    with pytest.raises(RecordChanged):
        store.reap_claim(stale, b"o" * 16, 60, "abandoned")
    [[fresh]] = list(store.stale_tasks(T0 + 601))
    reaped = store.reap_claim(fresh, b"o" * 16, 60, "abandoned")
    assert (
        reaped.state == CANCELLING and reaped.resource_meta == b"{}" and reaped.message == "being cancelled: abandoned"
    )
    with pytest.raises(RecordChanged):  # a poll after the claim cannot move it
        store.heartbeat(reaped)
    ended = store.cancelled(reaped, TaskExecution.ABORTED, "cancelled: abandoned", "abandoned")
    assert ended.state == ENDED and ended.notes == ["abandoned"] and list(store.stale_tasks(T0 + 10_000)) == []


def test_a_live_lease_is_not_reaped_and_a_failed_cancel_comes_back_to_the_reaper(store):
    claim = new_record("bb")
    store.claim(claim, lease_seconds=60)
    [[stale]] = list(store.stale_tasks(T0 + 1))
    with pytest.raises(RecordChanged):  # its create may still be running
        store.reap_claim(stale, b"o" * 16, 60, "abandoned")
    store.clock = lambda: T0 + 61
    reaped = store.reap_claim(stale, b"o" * 16, 60, "abandoned")
    assert reaped.state == CANCELLING and reaped.create_request == b"request"
    store.cancel_failed(reaped, "abandoned failed: remote down", 0.0)
    [[again]] = list(store.stale_tasks(T0 + 62))
    assert again.heartbeat_at == 0
    store.clock = lambda: T0 + 62
    assert store.reap_claim(again, b"p" * 16, 60, "abandoned").notes == ["abandoned failed: remote down"]


def test_notes_stop_at_the_cap(store):
    record = store.claim(new_record("dd"), lease_seconds=60).record
    for n in range(MAX_NOTES + 3):
        store.clock = lambda n=n: T0 + 100 + n
        record = store.reap_claim(StaleTask(record.action_id, 0, record.heartbeat_at), bytes([n]) * 16, 0, "x")
        store.cancel_failed(record, f"note {n}", 0.0)
        record = store.attempts(record.action_id)[0]
    assert len(record.notes) == MAX_NOTES


def test_the_size_budget_holds_at_its_boundary(store):
    """Edge 9: a record accepted at exactly the budget takes the largest message and every note."""
    record = new_record("ee")
    record.output_prefix = ""
    room = MAX_ITEM_BYTES - LATER_GROWTH_BYTES - item_bytes(_claimed_item(store, record))
    record.output_prefix = "p" * room  # now exactly at the budget
    assert store.claim(record, lease_seconds=60).claimed
    record.output_prefix += "p"
    with pytest.raises(ConnectError) as caught:  # one byte more is refused before any write
        store.claim(new_record("ef", output_prefix=record.output_prefix), lease_seconds=60)
    assert caught.value.code == Code.RESOURCE_EXHAUSTED and "output_prefix" in caught.value.message
    record = store.attempts(record.action_id)[0]
    big = "m" * (MESSAGE_BYTES * 2)
    store.release_claim(record, big)
    for n in range(MAX_NOTES):
        store.clock = lambda n=n: T0 + 100 + n
        record = store.reap_claim(StaleTask(record.action_id, 0, record.heartbeat_at), bytes([n]) * 16, 0, big)
        store.cancel_failed(record, "n" * (NOTE_BYTES * 2), 0.0)
        record = store.attempts(record.action_id)[0]
    store.clock = lambda: T0 + 200
    ended = store.cancelled(
        store.reap_claim(StaleTask(record.action_id, 0, 0), b"z" * 16, 0, big),
        TaskExecution.ABORTED,
        big,
        "n" * NOTE_BYTES,
    )
    assert ended.state == ENDED and len(ended.notes) == MAX_NOTES and len(ended.message) == MESSAGE_BYTES


def test_a_record_at_the_budget_takes_the_most_log_links_too(store):
    """A record accepted at the budget takes, over its active life, the largest message with the
    most log links the record keeps, then every note of its cancellation: links past the cap are
    dropped before the write (answers.py keeps the first that fit), never a write refused."""
    from flyteidl2.core.execution_pb2 import TaskLog

    from connectors.store.budget import LOG_LINKS_BYTES
    from connectors.store.log_links import decode_links, encode_links

    record = new_record("ea")
    record.output_prefix = ""
    record.output_prefix = "p" * (MAX_ITEM_BYTES - LATER_GROWTH_BYTES - item_bytes(_claimed_item(store, record)))
    assert store.claim(record, lease_seconds=60).claimed
    record = store.finish_create(record, b"{}", TaskExecution.QUEUED)
    many = [TaskLog(name=f"link {n}", uri=f"https://console.example.com/{n}/" + "u" * 300) for n in range(100)]
    encoded = encode_links(many)
    assert encoded is not None and LOG_LINKS_BYTES - 400 < len(encoded) <= LOG_LINKS_BYTES
    kept = decode_links(encoded)
    assert 0 < len(kept) < len(many) and kept == many[: len(kept)]
    big = "m" * (MESSAGE_BYTES * 2)
    record = store.record_phase(record, TaskExecution.RUNNING, big, log_links=encoded)
    assert record.log_links == encoded and len(record.message) == MESSAGE_BYTES
    for n in range(MAX_NOTES):
        store.clock = lambda n=n: T0 + 100 + n
        record = store.reap_claim(StaleTask(record.action_id, 0, record.heartbeat_at), bytes([n]) * 16, 0, big)
        store.cancel_failed(record, "n" * (NOTE_BYTES * 2), 0.0)
        record = store.attempts(record.action_id)[0]
    store.clock = lambda: T0 + 200
    ended = store.cancelled(
        store.reap_claim(StaleTask(record.action_id, 0, 0), b"z" * 16, 0, big),
        TaskExecution.ABORTED,
        big,
        "n" * NOTE_BYTES,
    )
    assert ended.state == ENDED and len(ended.notes) == MAX_NOTES and ended.log_links == encoded


def test_a_phase_write_keeps_replaces_or_removes_the_log_links(store):
    from flyteidl2.core.execution_pb2 import TaskLog

    from connectors.store.log_links import decode_links, encode_links

    record = created(store, "eb")
    console = encode_links([TaskLog(name="console", uri="https://console.example.com/1")])
    record = store.record_phase(record, TaskExecution.RUNNING, "running", log_links=console)
    assert store.attempts(record.action_id)[0].log_links == console
    both = encode_links([TaskLog(name="console", uri="https://console.example.com/1"), TaskLog(name="logs", uri="l")])
    record = store.record_phase(record, TaskExecution.RUNNING, "running", log_links=both)
    assert [link.name for link in decode_links(store.attempts(record.action_id)[0].log_links)] == ["console", "logs"]
    ended = store.record_phase(record, TaskExecution.FAILED, "failed", log_links=None)
    assert ended.state == ENDED and ended.log_links is None  # the last read reported none
    assert encode_links([]) is None and decode_links(None) == []


def _claimed_item(store: TaskStore, record: TaskRecord) -> dict:
    """The item a claim writes for ``record`` (the claim fills in its lease, heartbeat and shard)."""
    probe = TaskRecord(**{**record.__dict__, "notes": []})
    probe.state, probe.lease_owner, probe.lease_expires_at = CLAIMED, probe.secret, T0
    probe.created_at = probe.updated_at = probe.heartbeat_at = T0
    probe.expires_at, probe.active_shard = int(T0), "active#0"
    return probe.to_item()
