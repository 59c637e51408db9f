"""Task handles and records: what the executor holds and what the table keeps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import Code, ConnectError
from connectors.settings import Settings
from connectors.store import TaskExecutionKey, TaskHandle, TaskRecord, new_secret
from tests.flyte_requests import execution_metadata


@given(
    digest=st.binary(min_size=16, max_size=16),
    attempt=st.integers(0, 2**32 - 1),
    secret=st.binary(min_size=16, max_size=16),
)
def test_handles_round_trip_and_are_short_url_safe_text(digest, attempt, secret):
    handle = TaskHandle(digest, attempt, secret)
    encoded = handle.encode()
    assert TaskHandle.decode(encoded) == handle
    assert encoded.startswith(b"t1") and len(encoded) == 50
    assert set(encoded.decode()) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@given(st.binary(max_size=80))
def test_anything_else_is_invalid_argument_never_a_crash(data):
    try:
        TaskHandle.decode(data)
    except ConnectError as error:
        assert error.code == Code.INVALID_ARGUMENT


def test_secrets_are_random_and_compared_whole():
    assert len({new_secret() for _ in range(1000)}) == 1000
    handle = TaskHandle(b"\1" * 16, 0, b"\2" * 16)
    assert handle.matches(b"\2" * 16) and not handle.matches(b"\2" * 15 + b"\3")


def test_execution_key_is_per_attempt_and_the_action_digest_per_action():
    first = TaskExecutionKey.from_metadata(execution_metadata("run-1", "a0", 0))
    second = TaskExecutionKey.from_metadata(execution_metadata("run-1", "a0", 1))
    other = TaskExecutionKey.from_metadata(execution_metadata("run-1", "a1", 0))
    assert first.action_digest() == second.action_digest() != other.action_digest()
    assert first.idempotency_token() != second.idempotency_token()
    assert (
        first.idempotency_token()
        == TaskExecutionKey.from_metadata(execution_metadata("run-1", "a0", 0)).idempotency_token()
    )
    from flyteidl2.connector.connector_pb2 import TaskExecutionMetadata

    assert TaskExecutionKey.from_metadata(TaskExecutionMetadata()) is None


def test_record_items_round_trip():
    record = TaskRecord(
        action_id="ab" * 16,
        attempt=3,
        secret=b"s" * 16,
        task_type="echo",
        task_version=1,
        state="active",
        phase=2,
        message="running",
        resource_meta=b"{}",
        output_prefix="s3://b/p",
        outputs_interface=b"\n\x01",
        execution={"run": "r"},
        created_at=1.5,
        updated_at=2.5,
        heartbeat_at=3.25,
        expires_at=99,
        version=4,
        active_shard="active#1",
        notes=["superseded"],
    )
    assert TaskRecord.from_item(record.to_item()) == record
    assert "lease_expires_at" not in record.to_item() and "create_request" not in record.to_item()
    claimed = TaskRecord(
        action_id="ab" * 16,
        attempt=0,
        secret=b"s" * 16,
        task_type="echo",
        task_version=0,
        lease_owner=b"s" * 16,
        lease_expires_at=7.5,
        create_request=b"x\x9c",
    )
    assert TaskRecord.from_item(claimed.to_item()) == claimed


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TASKS_TABLE", "my-table")
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "5.5")
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1024")
    settings = Settings.from_env()
    assert (settings.tasks_table, settings.connector_timeout_seconds, settings.max_request_bytes) == (
        "my-table",
        5.5,
        1024,
    )
    monkeypatch.setenv("CREATE_CLAIM_SECONDS", "soon")
    with pytest.raises(ValueError, match="CREATE_CLAIM_SECONDS must be a number"):
        Settings.from_env()
