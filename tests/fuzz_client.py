"""The fuzz tests' harness: the served app, real bodies, sending, and the checks on every answer.

Every answer to a fuzz body must be a deliberate one: no HTTP 5xx (but the 501 the Connect
protocol prescribes for an unsupported compression), no Connect code ``unknown`` or
``internal``, and a 200 must parse as the RPC's response. A :class:`FuzzClient` counts the
bodies it sent, by RPC, and the answers, by code; each fuzz module gets its own (and its own
served app and table) and ends with :func:`check_the_run`: enough bodies were sent, and every
record the fuzzing left in the table is whole.

The fixtures below are module-scoped; tests/conftest.py lists this module in ``pytest_plugins``,
so a fuzz module asks for ``fuzz`` and ``real`` by name. ``@fuzz_property`` makes a test a
Hypothesis property over values it draws from ``data``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from flyteidl2.connector import connector_pb2 as pb
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.builtin import EchoConnector
from connectors.builtin.echo import EchoMetadata
from connectors.connect_envelope import END_STREAM, encode, read_all
from connectors.registry import ConnectorRegistry
from connectors.store import ACTIVE, CLAIMED, ENDED, TaskHandle, TaskRecord
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, scan_table
from tests.flyte_requests import ECHO, echo_request

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"

# RPC name -> (Connect path, request type, response type).
RPCS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "CreateTask": (f"{ASYNC}/CreateTask", pb.CreateTaskRequest, pb.CreateTaskResponse),
    "GetTask": (f"{ASYNC}/GetTask", pb.GetTaskRequest, pb.GetTaskResponse),
    "DeleteTask": (f"{ASYNC}/DeleteTask", pb.DeleteTaskRequest, pb.DeleteTaskResponse),
    "GetTaskMetrics": (f"{ASYNC}/GetTaskMetrics", pb.GetTaskMetricsRequest, pb.GetTaskMetricsResponse),
    "GetTaskLogs": (f"{ASYNC}/GetTaskLogs", pb.GetTaskLogsRequest, pb.GetTaskLogsResponse),
    "GetConnector": (f"{METADATA}/GetConnector", pb.GetConnectorRequest, pb.GetConnectorResponse),
    "ListConnectors": (f"{METADATA}/ListConnectors", pb.ListConnectorsRequest, pb.ListConnectorsResponse),
}
UNARY = [name for name in RPCS if name != "GetTaskLogs"]
FORBIDDEN_CODES = {"unknown", "internal"}

# FUZZ_EXAMPLES=500 fuzzes longer (the default keeps each module well under a minute).
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


def fuzz_property(test: Callable[..., None]) -> Any:
    """A property over values drawn in the test from ``data``, with the FUZZ settings and a 120 s timeout."""
    return pytest.mark.timeout(120)(FUZZ(given(data=st.data())(test)))


envelope = encode  # one Connect stream message: flags, length, data


def _protocol_mandated(response: httpx.Response) -> bool:
    """The one 5xx the Connect protocol prescribes for bad input: an unsupported compression is
    ``unimplemented`` (HTTP 501), whatever the body. Anything else at 5xx is a failure."""
    if response.status_code != 501 or not response.content:
        return False
    body = response.json()
    return body.get("code") == "unimplemented" and "compression" in body.get("message", "")


def check_connect_error(response: httpx.Response, what: str) -> str:
    """The Connect code of an error answer (HTTP errors before the protocol have none)."""
    assert response.status_code < 500 or _protocol_mandated(response), (
        f"{what}: HTTP {response.status_code} {response.content[:300]!r}"
    )
    if not response.content:
        return f"http{response.status_code}"
    body = response.json()
    code = body.get("code", f"http{response.status_code}")
    assert code not in FORBIDDEN_CODES, f"{what}: {code}: {body.get('message')}"
    return code


class FuzzClient:
    """Sends bodies to the served app over Connect and REST, checks each answer, counts both."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.sent: Counter[str] = Counter()  # bodies sent, by RPC
        self.codes: Counter[str] = Counter()  # answers, by Connect code (or "ok")
        self.finished: set[str] = set()  # the fuzz tests of the module that ran to the end

    def _answered(self, rpc: str, code: str) -> str:
        self.sent[rpc] += 1
        self.codes[code] += 1
        return code

    def unary(self, rpc: str, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> str:
        path, _, response_type = RPCS[rpc]
        what = f"{rpc} {content_type} {body[:120]!r}"
        response = self.http.post(path, content=body, headers={"content-type": content_type, **(headers or {})})
        if response.status_code != 200:
            return self._answered(rpc, check_connect_error(response, what))
        if content_type.endswith("proto"):
            response_type.FromString(response.content)
        else:
            json_format.Parse(response.content, response_type())
        return self._answered(rpc, "ok")

    def stream(self, body: bytes, codec: str = "proto", headers: dict[str, str] | None = None) -> str:
        """GetTaskLogs as a Connect server stream: the end-of-stream message carries any error."""
        path, _, response_type = RPCS["GetTaskLogs"]
        what = f"GetTaskLogs connect+{codec} {body[:120]!r}"
        response = self.http.post(
            path, content=body, headers={"content-type": f"application/connect+{codec}", **(headers or {})}
        )
        if response.status_code != 200:
            return self._answered("GetTaskLogs", check_connect_error(response, what))
        code = "ok"
        for flags, payload in read_all(response.content):  # EnvelopeError: a truncated answer
            if flags & END_STREAM:
                end = json.loads(payload or b"{}")
                if "error" in end:
                    code = end["error"].get("code", "unknown")
                    assert code not in FORBIDDEN_CODES, (
                        f"{what}: stream ended with {code}: {end['error'].get('message')}"
                    )
            elif codec == "proto":
                response_type.FromString(payload)
            else:
                json_format.Parse(payload, response_type())
        return self._answered("GetTaskLogs", code)

    def post(self, rpc: str, body: bytes, codec: str) -> str:
        """A body in ``codec`` (proto or json) to its RPC: GetTaskLogs in one stream envelope."""
        if rpc == "GetTaskLogs":
            return self.stream(envelope(body), codec)
        return self.unary(rpc, body, f"application/{codec}")

    def message(self, rpc: str, message: Message) -> None:
        """A message to its RPC in every encoding the RPC takes."""
        self.post(rpc, message.SerializeToString(), "proto")
        try:
            text = json_format.MessageToJson(message).encode()
        except json_format.SerializeToJsonError:
            return  # valid on the wire, not in proto JSON (a Timestamp out of range...)
        self.post(rpc, text, "json")

    def rest(
        self, rpc: str, method: str, path: str, body: bytes | None = None, params: list[tuple[str, str]] | None = None
    ) -> str:
        response = self.http.request(
            method,
            path,
            content=body,
            params=params,
            headers={"content-type": "application/json"} if body is not None else None,
        )
        what = f"REST {method} {path} {params} {body[:120] if body else b''!r}"
        assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.content[:300]!r}"
        if response.status_code == 200:
            code = "ok"
            if rpc == "GetTaskLogs":
                for line in response.content.splitlines():
                    error = json.loads(line).get("error")
                    if error:
                        assert error["code"] not in FORBIDDEN_CODES, f"{what}: stream error {error}"
                        code = error["code"]
            else:
                json.loads(response.content)
        else:
            try:
                body_json = response.json()
            except ValueError:
                body_json = {}
            code = body_json.get("code", f"http{response.status_code}") if isinstance(body_json, dict) else "http"
            assert code not in FORBIDDEN_CODES, f"{what}: {code}: {body_json}"
        return self._answered(rpc, code)


# -- the served app and real bodies (module-scoped fixtures) ---------------------------------------


@pytest.fixture(scope="module")
def echo_served(settings, dynamodb_client) -> Iterator[ServedApp]:
    """The app with only the built-in echo connector, on the module's own table."""
    registry = ConnectorRegistry([EchoConnector()])
    with ServedApp(create_app(make_service(settings, dynamodb_client, registry))) as server:
        yield server


@pytest.fixture(scope="module")
def fuzz(echo_served) -> Iterator[FuzzClient]:
    with httpx.Client(base_url=echo_served.url, timeout=30) as http:
        yield FuzzClient(http)


@pytest.fixture(scope="module")
def real(fuzz) -> dict[str, Any]:
    """Real handles (a running and a failing echo task) and one valid body per RPC."""
    handles = []
    for custom in ({"delay_seconds": 3600}, {"fail": "planned failure"}, {}):
        response = fuzz.http.post(
            RPCS["CreateTask"][0],
            content=echo_request(custom=custom).SerializeToString(),
            headers={"content-type": "application/proto"},
        )
        assert response.status_code == 200, response.text
        handles.append(pb.CreateTaskResponse.FromString(response.content).resource_meta)
    handle = handles[0]
    bodies = {
        "CreateTask": echo_request(custom={"delay_seconds": 1}),
        "GetTask": pb.GetTaskRequest(resource_meta=handle, task_category=ECHO, output_prefix="s3://b/p"),
        "DeleteTask": pb.DeleteTaskRequest(resource_meta=handles[2], task_category=ECHO),
        "GetTaskMetrics": pb.GetTaskMetricsRequest(resource_meta=handle, task_category=ECHO, queries=["cpu"]),
        "GetTaskLogs": pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO, lines=10, token="t"),
        "GetConnector": pb.GetConnectorRequest(name="Echo Connector"),
        "ListConnectors": pb.ListConnectorsRequest(),
    }
    return {"handles": handles, "messages": bodies}


# -- after the run ----------------------------------------------------------------------------------


def check_the_run(
    fuzz: FuzzClient, settings: Any, dynamodb_client: Any, *, tests: set[str], min_bodies: int, min_per_rpc: int
) -> None:
    """Enough bodies were sent (when all of ``tests`` ran to the end), and no record is half-written:
    each is created with its metadata, and its handle answers GetTask."""
    if not fuzz.finished:
        pytest.skip("no fuzz test of this module ran in this session")
    total = sum(fuzz.sent.values())
    print(f"\nfuzz: {total} bodies sent: {dict(fuzz.sent)}; answers: {dict(fuzz.codes)}")
    if fuzz.finished >= tests:
        assert total >= min_bodies, f"only {total} bodies were sent"
        assert all(fuzz.sent[rpc] >= min_per_rpc for rpc in RPCS), dict(fuzz.sent)
    items = scan_table(dynamodb_client, settings.tasks_table)
    assert items, "the fuzzing created no task at all: the generators are too weak"
    now = time.time()
    for item in items:
        record = TaskRecord.from_item(item)
        where = f"{record.action_id}/{record.attempt}"
        if record.state == CLAIMED:  # a create the connector refused: released, with what a canceller replays
            assert record.lease_expires_at <= now and record.create_request, f"{where} is a claim still held"
            assert record.message.startswith("create failed"), f"{where}: {record.message}"
            continue
        assert record.state in (ACTIVE, ENDED), f"{where} left in state {record.state}"
        if record.resource_meta is None:
            # metadata too large to keep: the job was cancelled at once; or an attempt older than
            # one of its action that exists (two random bodies can name one action): started nothing
            refused_older = re.fullmatch(
                r"attempt \d+ of this action exists; attempt \d+ is not started", record.message
            )
            assert record.state == ENDED and (record.message.endswith("its job was cancelled") or refused_older), (
                f"{where}: {record.message}"
            )
            continue
        assert record.resource_meta, f"{where} is created without resource_meta"
        assert record.lease_expires_at is None and record.create_request is None, f"{where} still carries a claim"
        assert record.category == ("echo", 0), f"{where} is of category {record.category}"
        EchoMetadata.decode(record.resource_meta)
        handle = record.handle.encode()
        assert TaskHandle.decode(handle) == record.handle
        code = fuzz.unary(
            "GetTask",
            pb.GetTaskRequest(resource_meta=handle, task_category=ECHO).SerializeToString(),
            "application/proto",
        )
        assert code == "ok", f"{where}: GetTask answered {code}"
