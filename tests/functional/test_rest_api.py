"""The REST paths of service.proto (grpc-gateway style JSON), on the same served app."""

from __future__ import annotations

import base64
import json
import time

import httpx
from google.protobuf import json_format

from tests.flyte_requests import echo_request


def _path_handle(handle_b64: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(handle_b64)).decode().rstrip("=")


def test_create_poll_and_delete_over_rest(served):
    body = json_format.MessageToJson(echo_request(x=5, name="rest", custom={"delay_seconds": 0.2}))
    created = httpx.post(
        f"{served.url}/api/v1/connector/task", content=body, headers={"content-type": "application/json"}
    )
    assert created.status_code == 200, created.text
    handle = _path_handle(created.json()["resourceMeta"])
    deadline = time.monotonic() + 10
    while True:
        got = httpx.get(f"{served.url}/api/v1/connector/task/echo/0/{handle}")
        assert got.status_code == 200, got.text
        if got.json()["resource"].get("phase") == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    literals = {lit["name"]: lit["value"] for lit in got.json()["resource"]["outputs"]["literals"]}
    assert literals["x"]["scalar"]["primitive"]["integer"] == "5"
    for _ in range(2):
        assert httpx.delete(f"{served.url}/api/v1/connector/task_executions/echo/0/{handle}").status_code == 200
    metrics = httpx.get(f"{served.url}/api/v1/connector/task/metrics/echo/0/{handle}")
    assert metrics.json()["results"][0]["metric"] == "elapsed_seconds"
    logs = httpx.get(f"{served.url}/api/v1/connector/task/logs/echo/0/{handle}")
    parts = [json.loads(line) for line in logs.text.splitlines()]
    assert "header" in parts[0]["result"] and parts[1]["result"]["body"]["lines"]


def test_metadata_over_rest(served):
    listed = httpx.get(f"{served.url}/api/v1/connectors").json()
    assert any(c["name"] == "echo" for m in listed["connectors"] for c in m["supportedTaskCategories"])
    assert httpx.get(f"{served.url}/api/v1/connector/Echo Connector").json()["connector"]["name"] == "Echo Connector"
    missing = httpx.get(f"{served.url}/api/v1/connector/Nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_rest_errors_carry_codes_and_statuses(served):
    cases = [
        (httpx.get, "/api/v1/connector/task/echo/0/!!!", 400, "invalid_argument"),
        (httpx.get, "/api/v1/connector/task/echo/zero/dDE", 400, "invalid_argument"),
        (
            httpx.get,
            f"/api/v1/connector/task/echo/0/{base64.urlsafe_b64encode(b't1' + b'A' * 48).decode()}",
            404,
            "not_found",
        ),
        (httpx.get, "/api/v1/connector/task/bigquery/0/dDE?unknown_param=1", 400, "invalid_argument"),
    ]
    for method, path, status, code in cases:
        response = method(f"{served.url}{path}")
        assert (response.status_code, response.json()["code"]) == (status, code), (path, response.text)
    bad = httpx.post(
        f"{served.url}/api/v1/connector/task", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_argument")
    unknown = httpx.post(
        f"{served.url}/api/v1/connector/task", content=json_format.MessageToJson(echo_request(task_type="athena"))
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
