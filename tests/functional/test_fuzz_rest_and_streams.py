"""Property-based fuzzing of the REST paths and the Connect stream envelopes: no unknown/internal/5xx.

Hypothesis generates REST requests (path segments, handles real, mangled and made up, query
strings, CreateTask JSON bodies built, mistyped, mutated or random) and GetTaskLogs stream
envelopes with wrong flags, wrong lengths, several messages and trailing junk, and sends them to
the app served by uvicorn on loopback, with only the built-in echo connector. Every answer must
be a deliberate one (see ``tests/fuzz_client.py``), and after the run every record in the
module's table is whole. The Connect bodies of every RPC are fuzzed in ``test_fuzz_connect.py``.
"""

from __future__ import annotations

import base64
import urllib.parse

from google.protobuf import json_format
from hypothesis import strategies as st

from tests.fuzz_bodies import create_requests, handles, json_with_wrong_types, mutated
from tests.fuzz_client import check_the_run, envelope, fuzz_property

# With test_fuzz_connect.py's 2,000 and 100: more than the 2,000 bodies and 100 per RPC of the whole run.
MIN_BODIES = 400
MIN_PER_RPC = 50
TESTS = {"envelopes", "rest"}


@fuzz_property
def test_stream_envelopes(fuzz, real, data):
    """GetTaskLogs envelopes with wrong flags, wrong lengths, several messages, trailing junk."""
    binary = real["messages"]["GetTaskLogs"].SerializeToString()
    flags = data.draw(st.sampled_from([0, 1, 2, 3, 0x80, 0xFF]) | st.integers(0, 255), label="flags")
    declared = data.draw(
        st.sampled_from([len(binary), len(binary) + 1, max(len(binary) - 1, 0), 0, 2**31, 2**32 - 1])
        | st.integers(0, 2**32 - 1),
        label="length",
    )
    body = bytes([flags]) + declared.to_bytes(4, "big") + binary
    body += data.draw(
        st.sampled_from([b"", envelope(binary), envelope(b""), b"\x00\x00"]) | st.binary(max_size=10), label="tail"
    )
    fuzz.stream(body, data.draw(st.sampled_from(["proto", "json"]), label="codec"))
    fuzz.finished.add("envelopes")


def _rest_segment() -> st.SearchStrategy[str]:
    return st.sampled_from(["echo", "0", "1", "-1", "x", "%00", "..", "%2F", "9" * 30]) | st.text(max_size=12)


@fuzz_property
def test_rest_paths_queries_and_bodies(fuzz, real, data):
    """The REST paths with fuzzed path segments, query strings and CreateTask JSON bodies."""
    handle = data.draw(handles(real["handles"]), label="handle")
    meta = data.draw(
        st.sampled_from([base64.urlsafe_b64encode(handle).decode().rstrip("="), base64.b64encode(handle).decode()])
        | _rest_segment(),
        label="meta",
    )
    name = data.draw(st.sampled_from(["echo", "echo", "counting"]) | _rest_segment(), label="name")
    version = data.draw(st.sampled_from(["0", "0", "1"]) | _rest_segment(), label="version")
    quote = lambda segment: urllib.parse.quote(segment, safe="")  # noqa: E731
    keys = st.sampled_from(
        [
            "lines",
            "token",
            "queries",
            "output_prefix",
            "task_category.name",
            "resource_meta",
            "step",
            "start_time",
            "connection.secrets",
            "nope",
            "connection",
        ]
    ) | st.text(max_size=8)
    params = data.draw(st.lists(st.tuples(keys, st.text(max_size=12)), max_size=3), label="params")
    routes = [
        ("GetTask", "GET", f"/api/v1/connector/task/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("DeleteTask", "DELETE", f"/api/v1/connector/task_executions/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("GetTaskMetrics", "GET", f"/api/v1/connector/task/metrics/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("GetTaskLogs", "GET", f"/api/v1/connector/task/logs/{quote(name)}/{quote(version)}/{quote(meta)}"),
        (
            "GetConnector",
            "GET",
            f"/api/v1/connector/{quote(data.draw(st.sampled_from(['Echo Connector']) | _rest_segment()))}",
        ),
        ("ListConnectors", "GET", "/api/v1/connectors"),
    ]
    for rpc, method, path in routes:
        fuzz.rest(rpc, method, path, params=params)
    create = data.draw(
        st.one_of(
            # inf in a template's Struct is legal in binary proto, and has no proto3 JSON form
            create_requests().map(_json_or_none).filter(lambda body: body is not None),
            json_with_wrong_types(real["messages"]["CreateTask"]),
            mutated(json_format.MessageToJson(real["messages"]["CreateTask"]).encode()),
            st.binary(max_size=100),
        ),
        label="create body",
    )
    fuzz.rest("CreateTask", "POST", "/api/v1/connector/task", body=create)
    fuzz.finished.add("rest")


def test_every_record_is_whole_after_the_fuzzing(fuzz, settings, dynamodb_client):
    """Enough bodies were sent, and no half-written record: each is created with its metadata, and its handle answers GetTask."""
    check_the_run(fuzz, settings, dynamodb_client, tests=TESTS, min_bodies=MIN_BODIES, min_per_rpc=MIN_PER_RPC)


def _json_or_none(message: object) -> bytes | None:
    """A message's proto3 JSON, or None for one JSON cannot carry (a Struct number that is inf)."""
    try:
        return json_format.MessageToJson(message).encode()  # type: ignore[arg-type]
    except ValueError:
        return None
