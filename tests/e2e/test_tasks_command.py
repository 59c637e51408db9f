"""`connectors tasks list|show`, run as a user runs it (a child process) against moto's DynamoDB.

The tasks are created through the service (CreateTask, GetTask), so the records are what a
deployment writes: one still queued, one running (polled), one finished, a retried action.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.service import ConnectorService
from connectors.store import TaskHandle, TaskStore
from tests.flyte_requests import ECHO, echo_request

ROOT = Path(__file__).resolve().parents[2]
SECRET_INPUT = "input-value-never-shown"


def tasks(
    *args: str, table: str | None, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **({"TASKS_TABLE": table} if table else {}), **(env or {})}
    environment = {key: value for key, value in environment.items() if key not in drop}
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "tasks", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(service: ConnectorService, **kwargs: Any) -> bytes:
    return asyncio.run(service.create_task(echo_request(name=SECRET_INPUT, **kwargs))).resource_meta


def poll(service: ConnectorService, handle: bytes) -> pb.Resource:
    return asyncio.run(service.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO))).resource


@pytest.fixture(scope="module")
def world(service: ConnectorService, table_name: str) -> dict[str, bytes]:
    queued = create(service, run="run-queued")
    running = create(service, run="run-running", custom={"delay_seconds": 3600})
    assert poll(service, running).phase == TaskExecution.RUNNING  # the poll wrote its heartbeat
    done = create(service, run="run-done")
    assert poll(service, done).phase == TaskExecution.SUCCEEDED  # the record ended
    retried_0 = create(service, run="run-retried", action="a1", attempt=0, custom={"delay_seconds": 3600})
    retried_1 = create(service, run="run-retried", action="a1", attempt=1, custom={"delay_seconds": 3600})
    return {"queued": queued, "running": running, "done": done, "retried_0": retried_0, "retried_1": retried_1}


def runs(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(row["run"], row["action"], row["attempt"]) for row in rows]


def test_list_prints_every_task_newest_first(world: dict[str, bytes], table_name: str) -> None:
    result = tasks("list", table=table_name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ACTION",
        "ATTEMPT",
        "TASK",
        "TYPE",
        "PHASE",
        "STATE",
        "LAST",
        "POLL",
        "CREATED",
        "MESSAGE",
    ]
    body = lines[1:]
    assert [line.split()[0] for line in body] == ["run-retried", "run-retried", "run-done", "run-running", "run-queued"]
    running = next(line for line in body if line.startswith("run-running"))
    assert "RUNNING" in running and "echo/0" in running and "echo: waiting for the delay to pass" in running
    assert " ago)" in running  # the last poll: ISO time and age
    done = next(line for line in body if line.startswith("run-done"))
    assert "SUCCEEDED" in done and "ended" in done
    # Neither the handles (unless asked), nor an input value.
    assert "t1" not in result.stdout.replace("task", "")
    assert SECRET_INPUT not in result.stdout + result.stderr


def test_list_json_has_the_fields_an_operator_needs(world: dict[str, bytes], table_name: str) -> None:
    result = tasks("list", "--json", table=table_name)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    by_run = {(row["run"], row["attempt"]): row for row in rows}
    running = by_run[("run-running", 0)]
    assert running["project"] == "flytesnacks" and running["domain"] == "development"
    assert running["task_type"] == "echo" and running["task_version"] == 0
    assert running["phase"] == "RUNNING" and running["state"] == "active"
    assert running["heartbeat_at"].endswith("Z") and 0 <= running["heartbeat_age_seconds"] < 600
    assert running["created_at"].endswith("Z")
    assert "handle" not in running
    assert by_run[("run-done", 0)]["heartbeat_at"] is None  # an ended task left the index
    assert by_run[("run-queued", 0)]["phase"] == "QUEUED"
    assert SECRET_INPUT not in result.stdout


def test_list_active_reads_only_tasks_not_ended(world: dict[str, bytes], table_name: str) -> None:
    result = tasks("list", "--active", "--json", table=table_name)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted(runs(rows)) == [("run-queued", "a0", 0), ("run-retried", "a1", 1), ("run-running", "a0", 0)], (
        "the finished task and the superseded attempt (cancelled by attempt 1) are not active"
    )
    assert all(row["state"] == "active" for row in rows)


def test_list_run_filters_by_execution_run(world: dict[str, bytes], table_name: str) -> None:
    result = tasks("list", "--run", "run-retried", "--json", table=table_name)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert runs(rows) == [("run-retried", "a1", 1), ("run-retried", "a1", 0)]
    older = rows[1]
    assert older["state"] == "ended"  # superseded: attempt 1's CreateTask cancelled its job

    active = json.loads(tasks("list", "--active", "--run", "run-retried", "--json", table=table_name).stdout)
    assert runs(active) == [("run-retried", "a1", 1)]

    nothing = tasks("list", "--run", "no-such-run", table=table_name)
    assert nothing.returncode == 0 and "no tasks of run no-such-run" in nothing.stdout


def test_list_limit_and_handles(world: dict[str, bytes], table_name: str) -> None:
    result = tasks("list", "--limit", "2", "--handles", "--json", table=table_name)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert runs(rows) == [("run-retried", "a1", 1), ("run-retried", "a1", 0)]
    assert rows[0]["handle"] == world["retried_1"].decode()

    text = tasks("list", "--limit", "1", "--handles", table=table_name)
    assert text.stdout.splitlines()[0].split()[-1] == "HANDLE"
    assert world["retried_1"].decode() in text.stdout
    assert tasks("list", "--limit", "0", table=table_name).returncode == 2


def test_show_prints_one_task_with_its_notes_and_lease(world: dict[str, bytes], table_name: str) -> None:
    handle = world["retried_0"].decode()
    result = tasks("show", handle, table=table_name)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if not line.startswith(("  -", "notes")))
    fields = {name.strip(): value.strip() for name, value in fields.items()}
    assert fields["run"] == "run-retried" and fields["action"] == "a1" and fields["attempt"] == "0"
    assert fields["task type"] == "echo (version 0)"
    assert fields["state"] == "ended"
    assert fields["handle"] == handle
    assert fields["project"] == "flytesnacks/development"
    assert "  - " in result.stdout  # the cancellation left a note
    assert SECRET_INPUT not in result.stdout

    shown = json.loads(tasks("show", handle, "--json", table=table_name).stdout)
    assert shown["notes"] and shown["handle"] == handle and shown["state"] == "ended"
    assert shown["lease"] is None and shown["create_error"] is None
    assert set(shown) >= {
        "run",
        "action",
        "attempt",
        "task_type",
        "phase",
        "state",
        "message",
        "heartbeat_at",
        "heartbeat_age_seconds",
        "created_at",
        "notes",
        "lease",
        "superseded_by",
        "create_error",
    }
    # Nothing secret: no field carries the secret's bytes, the lease owner or the create request.
    secret = TaskHandle.decode(world["retried_0"]).secret
    assert secret.hex() not in json.dumps(shown) and "create_request" not in shown and "lease_owner" not in shown


def test_show_a_claimed_task_names_its_lease(service: ConnectorService, table_name: str) -> None:
    """A claim whose create never finished (a crashed CreateTask) shows who holds it until when."""
    from connectors.store import TaskExecutionKey, TaskRecord, new_secret

    key = TaskExecutionKey(project="flytesnacks", domain="development", run="run-claimed", action="a0")
    record = TaskRecord(
        action_id=key.action_digest().hex(),
        attempt=0,
        secret=new_secret(),
        task_type="echo",
        task_version=0,
        execution={"project": "flytesnacks", "domain": "development", "run": "run-claimed", "action": "a0"},
    )
    service.store.claim(record, lease_seconds=600)
    shown = json.loads(tasks("show", record.handle.encode().decode(), "--json", table=table_name).stdout)
    assert shown["state"] == "claimed"
    assert shown["lease"]["holder"] == "create" and shown["lease"]["expired"] is False
    assert record.secret.hex() not in json.dumps(shown)


def test_show_takes_the_handle_as_a_json_answer_gives_it(world: dict[str, bytes], table_name: str) -> None:
    """CreateTask over JSON (curl, docs/run-locally.md) answers ``resourceMeta`` in base64, as proto3 JSON
    writes bytes: that is the handle an operator has in hand, and show finds the task by it."""
    import base64

    raw = world["retried_0"]
    for given in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        result = tasks("show", given, table=table_name)
        assert result.returncode == 0, result.stderr
        assert "handle:" in result.stdout and raw.decode() in result.stdout


def test_the_general_aws_endpoint_names_the_local_table_too(world: dict[str, bytes], table_name: str) -> None:
    """AWS_ENDPOINT_URL (docs/flyte-tasks.md's local environment) sends boto3's DynamoDB calls to
    make serve's moto as AWS_ENDPOINT_URL_DYNAMODB does: the command reads that table."""
    local = {"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL_DYNAMODB"]}
    drop = ("AWS_ENDPOINT_URL_DYNAMODB", "TASKS_TABLE")
    result = tasks("list", "--run", "run-retried", "--table", table_name, table=None, env=local, drop=drop)
    assert result.returncode == 0, result.stderr
    assert "run-retried" in result.stdout
    # With no table named, make serve's (connector-tasks) at that endpoint, not "which task table?"
    result = tasks("list", table=None, env=local, drop=drop)
    assert "which task table" not in result.stderr
    assert result.returncode == 0 or "connector-tasks" in result.stderr, result.stderr


@pytest.mark.parametrize("handle", ["not-a-handle", "t1" + "A" * 48, "", "\udcff", "dDE="])
def test_show_a_bad_handle_is_a_usage_error(handle: str, table_name: str) -> None:
    result = tasks("show", handle, table=table_name)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "not a task handle" in result.stderr or "no task with this handle" in result.stderr


def test_show_a_handle_with_the_wrong_secret_finds_nothing(world: dict[str, bytes], table_name: str) -> None:
    real = TaskHandle.decode(world["running"])
    forged = TaskHandle(real.action_digest, real.attempt, b"\0" * 16).encode().decode()
    result = tasks("show", forged, table=table_name)
    assert result.returncode == 2
    assert "no task with this handle" in result.stderr and result.stdout == ""


def test_no_table_named_is_a_usage_error(table_name: str) -> None:
    result = tasks("list", table=None, drop=("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "TASKS_TABLE"))
    assert result.returncode == 2
    assert "AWS_ENDPOINT_URL_DYNAMODB" in result.stderr and "TASKS_TABLE" in result.stderr


def test_a_missing_table_is_a_clear_error(dynamodb: Any) -> None:
    result = tasks("list", table="no-such-table")
    assert result.returncode == 1
    assert "no-such-table" in result.stderr and "Traceback" not in result.stderr


def test_the_reads_work_in_process(world: dict[str, bytes], table_name: str, dynamodb_client: Any) -> None:
    """TaskReader answers what the command prints (its reads, without a child process)."""
    from connectors.dev.tasks import TaskReader, list_tasks

    reader = TaskReader(table_name, dynamodb_client)
    assert reader.get(TaskHandle.decode(world["done"])).state == "ended"
    assert {r.execution["run"] for r in list_tasks(reader, active=True)} >= {"run-queued", "run-running"}
    assert TaskStore(table_name, dynamodb_client).load(TaskHandle.decode(world["queued"])).phase == TaskExecution.QUEUED
