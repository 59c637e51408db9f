"""Property-based fuzzing of every RPC over the Connect protocol: bad input never answers unknown/internal/5xx.

Hypothesis generates request bodies (messages built from field strategies, random bytes,
gzip-compressed, bit-flipped and truncated real bodies, proto JSON with wrong types, large field
values) and sends them to the app served by uvicorn on loopback as ``application/proto`` and
``application/json``, and to the GetTaskLogs stream in ``application/connect+proto`` / ``+json``
envelopes. Every answer must be a deliberate one (see ``tests/fuzz_client.py``). Only the
built-in echo connector is registered, and it must never fail on fuzz input: bad input is
``invalid_argument`` (or another deliberate code) before it can become a connector failure.

After the run every record in the module's table is whole: ``created`` with its connector
metadata, its handle answers GetTask without an internal error, and no ``creating`` claim is
left behind. The REST paths and the stream envelopes themselves are fuzzed in
``test_fuzz_rest_and_streams.py``.
"""

from __future__ import annotations

import gzip

import pytest
from flyteidl2.connector import connector_pb2 as pb
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flyte_requests import echo_request
from tests.fuzz_bodies import (
    by_handle_requests,
    create_requests,
    echo_create_requests,
    json_with_wrong_types,
    mutated,
    small_text,
)
from tests.fuzz_client import FUZZ, UNARY, check_the_run, envelope, fuzz_property

# The Connect module alone sends the whole suite's former share: 2,000 bodies, 100 per RPC.
MIN_BODIES = 2000
MIN_PER_RPC = 100
TESTS = {"messages", "random", "compressed", "mutated", "json", "large"}


@fuzz_property
def test_messages_built_from_field_values(fuzz, real, data):
    """Well-formed messages with fuzzed field values, to every RPC, as proto and as JSON."""
    fuzz.message("CreateTask", data.draw(create_requests(), label="create"))
    fuzz.message("CreateTask", data.draw(echo_create_requests(), label="echo create"))
    for rpc in ("GetTask", "DeleteTask", "GetTaskMetrics", "GetTaskLogs"):
        fuzz.message(rpc, data.draw(by_handle_requests(rpc, real["handles"]), label=rpc))
    fuzz.message(
        "GetConnector", pb.GetConnectorRequest(name=data.draw(st.sampled_from(["Echo Connector", ""]) | small_text))
    )
    fuzz.message("ListConnectors", pb.ListConnectorsRequest())
    fuzz.finished.add("messages")


@pytest.mark.timeout(120)
@FUZZ
@given(
    body=st.binary(max_size=300),
    text=st.text(max_size=120),
    encoding=st.sampled_from([None, None, None, "identity", "gzip", "br", "zstd", "snappy", ""]),
)
def test_random_bytes_to_every_rpc(fuzz, body, text, encoding):
    """Random bytes as proto, random text as JSON, random envelopes as streams; some claim a compression."""
    headers = {"content-encoding": encoding} if encoding is not None else None
    for rpc in UNARY:
        fuzz.unary(rpc, body, "application/proto", headers)
        fuzz.unary(rpc, text.encode(), "application/json", headers)
    stream_headers = {"connect-content-encoding": encoding} if encoding is not None else None
    fuzz.stream(body, "proto", stream_headers)
    fuzz.stream(envelope(body), "proto", stream_headers)
    fuzz.stream(envelope(text.encode()), "json", stream_headers)
    fuzz.finished.add("random")


@fuzz_property
def test_compressed_bodies(fuzz, real, data, settings):
    """gzip bodies: real messages compressed (then mutated or not), and bodies that inflate past the limit."""
    for rpc, message in real["messages"].items():
        binary = message.SerializeToString()
        kind = data.draw(st.sampled_from(["plain", "mutated", "bomb"]), label=f"{rpc} kind")
        if kind == "bomb":
            compressed = gzip.compress(
                b"\0" * (settings.max_request_bytes + data.draw(st.integers(1, 1000))), compresslevel=1
            )
        else:
            compressed = gzip.compress(binary)
            if kind == "mutated":
                compressed = data.draw(mutated(compressed), label=rpc)
        if rpc == "GetTaskLogs":
            flagged = envelope(compressed, flags=1)
            fuzz.stream(flagged, "proto", {"connect-content-encoding": "gzip"})
            fuzz.stream(
                flagged, "proto", {"connect-content-encoding": data.draw(st.sampled_from(["identity", "zstd"]))}
            )
            fuzz.stream(flagged, "proto")
        else:
            code = fuzz.unary(rpc, compressed, "application/proto", {"content-encoding": "gzip"})
            if kind == "plain":
                assert code not in ("invalid_argument", "resource_exhausted"), (
                    f"{rpc}: a valid gzip body answered {code}"
                )
            if kind == "bomb":
                assert code == "resource_exhausted", f"{rpc}: a gzip bomb answered {code}"
    fuzz.finished.add("compressed")


@fuzz_property
def test_mutated_real_bodies(fuzz, real, data):
    """Real bodies (a real CreateTask, requests naming a real handle) with bits flipped, cut, spliced."""
    for rpc, message in real["messages"].items():
        binary = message.SerializeToString()
        fuzz.post(rpc, data.draw(mutated(binary), label=rpc), "proto")
        if rpc == "GetTaskLogs":
            fuzz.stream(data.draw(mutated(envelope(binary)), label="envelope"), "proto")
        else:
            text = json_format.MessageToJson(message).encode()
            fuzz.unary(rpc, data.draw(mutated(text), label=f"{rpc} json"), "application/json")
    fuzz.finished.add("mutated")


@fuzz_property
def test_json_with_wrong_types(fuzz, real, data):
    """Each RPC's proto JSON with values of the wrong type, out of range, or unknown keys."""
    for rpc, message in real["messages"].items():
        fuzz.post(rpc, data.draw(json_with_wrong_types(message), label=rpc), "json")
    fuzz.finished.add("json")


@pytest.mark.timeout(120)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    size=st.sampled_from([100_000, 300_000, 450_000, 1_000_000, 3_000_000]),
    where=st.sampled_from(["input", "prefix", "interface", "custom", "name"]),
)
def test_large_fields(fuzz, size, where):
    """Large values in the fields the service stores or echoes (DynamoDB's item limit is 400 KB)."""
    request = echo_request()
    big = "x" * size
    if where == "input":
        request.inputs.literals[1].value.scalar.primitive.string_value = big
    elif where == "prefix":
        request.output_prefix = big
    elif where == "interface":
        request.template.interface.outputs.variables[0].value.description = big
    elif where == "custom":
        request.template.custom["fail"] = big
    else:
        request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = big
    fuzz.message("CreateTask", request)
    fuzz.finished.add("large")


def test_every_record_is_whole_after_the_fuzzing(fuzz, settings, dynamodb_client):
    """Enough bodies were sent, and no half-written record: each is created with its metadata, and its handle answers GetTask."""
    check_the_run(fuzz, settings, dynamodb_client, tests=TESTS, min_bodies=MIN_BODIES, min_per_rpc=MIN_PER_RPC)
