"""connectors/snapstart.py: the hooks registered with the Lambda runtime's snapshot_restore_py, run as
Lambda runs them (before the snapshot, after a restore), against the moto DynamoDB of conftest."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors import snapstart
from connectors.builtin.aws import base
from connectors.runtime import LazyClient, build_service
from connectors.settings import Settings

snapshot_restore_py = pytest.importorskip("snapshot_restore_py")
ROOT = Path(__file__).resolve().parents[2]


def run_hooks() -> None:
    """What the Lambda runtime does: before-snapshot hooks in reverse order, after-restore in order."""
    before = snapshot_restore_py.get_before_snapshot()
    while before:
        func, args, kwargs = before.pop()
        func(*args, **kwargs)
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)
    snapshot_restore_py.get_after_restore().clear()


def test_a_restore_reseeds_random_and_drops_every_client(table_name: str, dynamodb: Any) -> None:
    service = build_service(Settings(tasks_table=table_name))
    client = service.store._client
    assert isinstance(client, LazyClient) and not client.built
    client.describe_table(TableName=table_name)  # a real call on the moto table builds it
    assert client.built
    base.client("athena")
    assert base._clients
    random.seed(1234)
    snapshotted = random.random()

    assert snapstart.register(service)
    random.seed(1234)  # the state the snapshot would hold
    run_hooks()

    assert not client.built and not base._clients
    assert random.random() != snapshotted  # re-seeded from os.urandom
    assert client.describe_table(TableName=table_name)["Table"]["TableName"] == table_name  # built again
    assert client.built


def test_register_is_a_no_op_where_the_runtime_module_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    assert snapstart.register(object()) is False


def test_the_metadata_function_builds_no_dynamodb_client() -> None:
    code = (
        "import handlers.connector_metadata\n"
        "from connectors.runtime import default_service\n"
        "assert not default_service().store._client.built\n"
        "print('no client')\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "TASKS_TABLE": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FLYTE_SDK_CONNECTORS": "none",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no client" in result.stdout
