"""examples/<task type>.json, each sent unchanged to `connectors serve` (what `make serve` runs) as
curl sends it, then polled over the same JSON API until it SUCCEEDED against the embedded moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.builtin.aws import AWS_CONNECTORS
from tests.connectors_serve import connectors_serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
SERVICE = "flyteidl2.connector.AsyncConnectorService"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with connectors_serve() as serving:
        yield serving.api
    assert "Traceback" not in serving.output, serving.output


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
