"""examples/<task type>.json, each sent unchanged to `connectors serve` (what `make serve` runs) as
curl sends it, then polled over the same JSON API until it SUCCEEDED against the embedded moto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.builtin.aws import AWS_CONNECTORS
from connectors.dev.local_dynamodb import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
SERVICE = "flyteidl2.connector.AsyncConnectorService"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port, dynamodb_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "TASKS_TABLE")
    }
    env |= {"PORT": str(port), "DYNAMODB_PORT": str(dynamodb_port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                httpx.post(
                    f"{base}/flyteidl2.connector.ConnectorMetadataService/ListConnectors", content=b"{}", headers=JSON
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "connectors serve did not listen within 60 s"
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        assert "Traceback" not in output, output


def test_every_aws_connector_has_an_example():
    assert sorted(path.stem for path in EXAMPLES if path.stem != "echo") == sorted(AWS_CONNECTORS)


def test_serve_lists_every_aws_task_type_and_flytes_own_connectors(served):
    listed = httpx.post(
        f"{served}/flyteidl2.connector.ConnectorMetadataService/ListConnectors", content=b"{}", headers=JSON
    ).json()
    served_types = {
        category["name"] for connector in listed["connectors"] for category in connector["supportedTaskCategories"]
    }
    assert set(AWS_CONNECTORS) <= served_types
    assert {"databricks", "snowflake", "bigquery_query_job_task", "slurm"} <= served_types  # issue 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_the_example_runs_to_succeeded_unchanged(served, example):
    body = example.read_bytes()  # as `curl -d @examples/<file>` sends it
    created = httpx.post(f"{served}/{SERVICE}/CreateTask", content=body, headers=JSON, timeout=30)
    assert created.status_code == 200, created.text
    handle = created.json()["resourceMeta"]
    task_type = json.loads(body)["template"]["type"]
    deadline = time.monotonic() + 60
    while True:
        polled = httpx.post(
            f"{served}/{SERVICE}/GetTask",
            headers=JSON,
            timeout=30,
            json={"resourceMeta": handle, "taskCategory": {"name": task_type}},
        )
        assert polled.status_code == 200, polled.text
        resource = polled.json()["resource"]
        if resource.get("phase") in ("SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"):
            break
        assert time.monotonic() < deadline, f"{example.name} still {resource.get('phase')} after 60 s"
        time.sleep(0.5)
    assert resource["phase"] == "SUCCEEDED", resource
    again = httpx.post(f"{served}/{SERVICE}/CreateTask", content=body, headers=JSON, timeout=30)
    assert again.status_code == 200 and again.json()["resourceMeta"] == handle  # sent twice: one task
