"""Property-based fuzzing of every RPC over real HTTP: bad input never answers unknown/internal/5xx.

Hypothesis generates request bodies (messages built from field strategies, random bytes,
bit-flipped and truncated real bodies, JSON with wrong types, mangled stream envelopes, REST
paths and query strings) and sends them to the app served by uvicorn on loopback, over the
Connect protocol (``application/proto``, ``application/json``, and ``application/connect+proto``
/ ``+json`` envelopes for the GetTaskLogs stream) and the REST paths. Every answer must be a
deliberate one: no HTTP 5xx, no Connect code ``unknown`` or ``internal``. Only the built-in echo
connector is registered, and it must never fail on fuzz input: bad input is ``invalid_argument``
(or another deliberate code) before it can become a connector failure.

After the run every record in the table is whole: ``created`` with its connector metadata, its
handle answers GetTask without an internal error, and no ``creating`` claim is left behind.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import time
import urllib.parse
from collections import Counter
from typing import Any, Callable, Iterator

import httpx
import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import identifier_pb2, interface_pb2, literals_pb2, security_pb2, tasks_pb2, types_pb2
from flyteidl2.task import common_pb2
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.builtin import EchoConnector
from connectors.builtin.echo import EchoMetadata
from connectors.registry import ConnectorRegistry
from connectors.store import CREATED, TaskHandle, TaskRecord
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
MIN_BODIES = 2000

SENT: Counter[str] = Counter()  # bodies sent, by RPC
CODES: Counter[str] = Counter()  # answers, by Connect code (or "ok")
FINISHED: set[str] = set()  # fuzz tests that ran to the end in this session

# FUZZ_EXAMPLES=500 fuzzes longer (the default keeps the module well under a minute).
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)


# -- the served app and real bodies ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(settings, dynamodb_client) -> Iterator[ServedApp]:
    registry = ConnectorRegistry([EchoConnector()])
    with ServedApp(create_app(make_service(settings, dynamodb_client, registry))) as server:
        yield server


@pytest.fixture(scope="module")
def http(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def real(http) -> dict[str, Any]:
    """Real handles (a running and a failing echo task) and one valid body per RPC."""
    handles = []
    for custom in ({"delay_seconds": 3600}, {"fail": "planned failure"}, {}):
        response = http.post(RPCS["CreateTask"][0], content=echo_request(custom=custom).SerializeToString(),
                             headers={"content-type": "application/proto"})
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


# -- sending and checking ---------------------------------------------------------------------------


def envelope(data: bytes, flags: int = 0) -> bytes:
    return bytes([flags]) + len(data).to_bytes(4, "big") + data


def _protocol_mandated(response: httpx.Response) -> bool:
    """The one 5xx the Connect protocol prescribes for bad input: an unsupported compression is
    ``unimplemented`` (HTTP 501), whatever the body. Anything else at 5xx is a failure."""
    if response.status_code != 501 or not response.content:
        return False
    body = response.json()
    return body.get("code") == "unimplemented" and "compression" in body.get("message", "")


def check_connect_error(response: httpx.Response, what: str) -> str:
    """The Connect code of an error answer (HTTP errors before the protocol have none)."""
    assert response.status_code < 500 or _protocol_mandated(response), \
        f"{what}: HTTP {response.status_code} {response.content[:300]!r}"
    if not response.content:
        return f"http{response.status_code}"
    body = response.json()
    code = body.get("code", f"http{response.status_code}")
    assert code not in FORBIDDEN_CODES, f"{what}: {code}: {body.get('message')}"
    return code


def post_unary(http: httpx.Client, rpc: str, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> str:
    path, _, response_type = RPCS[rpc]
    what = f"{rpc} {content_type} {body[:120]!r}"
    response = http.post(path, content=body, headers={"content-type": content_type, **(headers or {})})
    SENT[rpc] += 1
    if response.status_code == 200:
        if content_type.endswith("proto"):
            response_type.FromString(response.content)
        else:
            json_format.Parse(response.content, response_type())
        code = "ok"
    else:
        code = check_connect_error(response, what)
    CODES[code] += 1
    return code


def post_stream(http: httpx.Client, body: bytes, codec: str = "proto", headers: dict[str, str] | None = None) -> str:
    """GetTaskLogs as a Connect server stream: the end-of-stream message carries any error."""
    path, _, response_type = RPCS["GetTaskLogs"]
    what = f"GetTaskLogs connect+{codec} {body[:120]!r}"
    response = http.post(path, content=body, headers={"content-type": f"application/connect+{codec}", **(headers or {})})
    SENT["GetTaskLogs"] += 1
    if response.status_code != 200:
        code = check_connect_error(response, what)
        CODES[code] += 1
        return code
    data, code = response.content, "ok"
    while data:
        assert len(data) >= 5, f"{what}: truncated envelope in the answer"
        flags, length = data[0], int.from_bytes(data[1:5], "big")
        payload, data = data[5 : 5 + length], data[5 + length :]
        if flags & 0x02:
            end = json.loads(payload or b"{}")
            if "error" in end:
                code = end["error"].get("code", "unknown")
                assert code not in FORBIDDEN_CODES, f"{what}: stream ended with {code}: {end['error'].get('message')}"
        elif codec == "proto":
            response_type.FromString(payload)
        else:
            json_format.Parse(payload, response_type())
    CODES[code] += 1
    return code


def send_message(http: httpx.Client, rpc: str, message: Message) -> None:
    """A message to its RPC in every encoding the RPC takes."""
    binary = message.SerializeToString()
    try:
        text: bytes | None = json_format.MessageToJson(message).encode()
    except json_format.SerializeToJsonError:
        text = None  # valid on the wire, not in proto JSON (a Timestamp out of range...)
    if rpc == "GetTaskLogs":
        post_stream(http, envelope(binary), "proto")
        if text is not None:
            post_stream(http, envelope(text), "json")
    else:
        post_unary(http, rpc, binary, "application/proto")
        if text is not None:
            post_unary(http, rpc, text, "application/json")


def send_rest(http: httpx.Client, rpc: str, method: str, path: str, body: bytes | None = None,
              params: list[tuple[str, str]] | None = None) -> str:
    response = http.request(method, path, content=body, params=params,
                            headers={"content-type": "application/json"} if body is not None else None)
    SENT[rpc] += 1
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
    CODES[code] += 1
    return code


# -- strategies: messages built from field values ---------------------------------------------------

small_text = st.text(max_size=24)
names = st.sampled_from(["x", "name", "y", "", "o0", "ü", "a.b"]) | small_text
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)


def timestamps() -> st.SearchStrategy[Timestamp]:
    # Timestamp's valid range is years 1..9999; proto binary accepts anything, JSON does not.
    return st.builds(Timestamp, seconds=st.integers(-62135596800, 253402300799), nanos=st.integers(0, 999_999_999))


def durations() -> st.SearchStrategy[Duration]:
    # seconds and nanos share a sign in a valid Duration; proto binary carries any pair.
    return st.builds(lambda s, n: Duration(seconds=s, nanos=n if s >= 0 else -n),
                     st.integers(-315576000000, 315576000000), st.integers(0, 999_999_999))


simple_types = st.integers(0, 9) | st.sampled_from([10, 99])  # open enum: unknown numbers are legal on the wire

literal_types = st.recursive(
    st.builds(types_pb2.LiteralType, simple=simple_types)
    | st.builds(types_pb2.LiteralType, blob=st.builds(types_pb2.BlobType, format=small_text, dimensionality=st.integers(0, 2)))
    | st.builds(types_pb2.LiteralType, enum_type=st.builds(types_pb2.EnumType, values=st.lists(small_text, max_size=3)))
    | st.builds(types_pb2.LiteralType, structured_dataset_type=st.builds(types_pb2.StructuredDatasetType, format=small_text))
    | st.just(types_pb2.LiteralType()),
    lambda inner: st.builds(types_pb2.LiteralType, collection_type=inner)
    | st.builds(types_pb2.LiteralType, map_value_type=inner)
    | st.builds(types_pb2.LiteralType, union_type=st.builds(types_pb2.UnionType, variants=st.lists(inner, max_size=3))),
    max_leaves=4,
)

primitives = st.one_of(
    st.builds(literals_pb2.Primitive, integer=int64),
    st.builds(literals_pb2.Primitive, float_value=floats),
    st.builds(literals_pb2.Primitive, string_value=st.text(max_size=40)),
    st.builds(literals_pb2.Primitive, boolean=st.booleans()),
    st.builds(literals_pb2.Primitive, datetime=timestamps()),
    st.builds(literals_pb2.Primitive, duration=durations()),
    st.just(literals_pb2.Primitive()),
)


def struct_values() -> st.SearchStrategy[Struct]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=5,
    )

    def to_struct(value: dict[str, Any]) -> Struct:
        struct = Struct()
        struct.update(value)
        return struct

    return st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(to_struct)


scalars = st.one_of(
    st.builds(literals_pb2.Scalar, primitive=primitives),
    st.builds(literals_pb2.Scalar, none_type=st.just(literals_pb2.Void())),
    st.builds(literals_pb2.Scalar, binary=st.builds(literals_pb2.Binary, value=st.binary(max_size=20), tag=small_text)),
    st.builds(literals_pb2.Scalar, blob=st.builds(literals_pb2.Blob, uri=small_text)),
    st.builds(literals_pb2.Scalar, error=st.builds(types_pb2.Error, failed_node_id=small_text, message=small_text)),
    st.builds(literals_pb2.Scalar, generic=struct_values()),
    st.builds(literals_pb2.Scalar, structured_dataset=st.builds(literals_pb2.StructuredDataset, uri=small_text)),
    st.just(literals_pb2.Scalar()),
)


def _union(value: literals_pb2.Literal, literal_type: types_pb2.LiteralType) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(union=literals_pb2.Union(value=value, type=literal_type)))


literal_values = st.recursive(
    st.builds(literals_pb2.Literal, scalar=scalars)
    | st.builds(literals_pb2.Literal, offloaded_metadata=st.builds(literals_pb2.LiteralOffloadedMetadata, uri=small_text))
    | st.just(literals_pb2.Literal()),
    lambda inner: st.builds(literals_pb2.Literal, collection=st.builds(literals_pb2.LiteralCollection, literals=st.lists(inner, max_size=3)))
    | st.builds(literals_pb2.Literal, map=st.builds(literals_pb2.LiteralMap, literals=st.dictionaries(small_text, inner, max_size=3)))
    | st.builds(_union, inner, literal_types),
    max_leaves=6,
)


def variable_maps() -> st.SearchStrategy[interface_pb2.VariableMap]:
    entry = st.builds(
        interface_pb2.VariableEntry, key=names,
        value=st.builds(interface_pb2.Variable, type=literal_types, description=small_text) | st.just(interface_pb2.Variable()),
    )
    return st.builds(interface_pb2.VariableMap, variables=st.lists(entry, max_size=3))


def customs() -> st.SearchStrategy[Struct]:
    """template.custom as echo reads it: delay_seconds and fail of every type, plus anything."""
    any_json = st.none() | st.booleans() | floats.filter(lambda f: not math.isnan(f)) | st.text(max_size=10) \
        | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    delay = st.floats(min_value=0, max_value=5) | any_json
    fields = st.fixed_dictionaries({}, optional={"delay_seconds": delay, "fail": st.text(max_size=20) | any_json,
                                                  "other": any_json})

    def to_struct(value: dict[str, Any]) -> Struct:
        struct = Struct()
        for key, item in value.items():
            struct[key] = item  # inf and -inf are legal number_values on the wire
        return struct

    return fields.map(to_struct)


def connections() -> st.SearchStrategy[security_pb2.Connection]:
    return st.builds(security_pb2.Connection, task_type=small_text,
                     secrets=st.dictionaries(small_text, small_text, max_size=2),
                     configs=st.dictionaries(small_text, small_text, max_size=2))


def task_execution_metadata() -> st.SearchStrategy[pb.TaskExecutionMetadata]:
    # A few runs and actions only, so that duplicate task execution ids (and their claims) happen.
    execution = st.builds(identifier_pb2.WorkflowExecutionIdentifier, project=st.sampled_from(["p", "", "flytesnacks"]),
                          domain=st.sampled_from(["d", "development"]), name=st.sampled_from(["run-a", "run-b", ""]) | small_text,
                          org=st.sampled_from(["", "org"]))
    node = st.builds(identifier_pb2.NodeExecutionIdentifier, node_id=st.sampled_from(["a0", "a1", ""]), execution_id=execution)
    task_execution_id = st.builds(identifier_pb2.TaskExecutionIdentifier, node_execution_id=node,
                                  retry_attempt=st.integers(0, 3) | st.integers(0, 2**32 - 1))
    return st.builds(pb.TaskExecutionMetadata, task_execution_id=task_execution_id, namespace=small_text) \
        | st.just(pb.TaskExecutionMetadata())


def templates() -> st.SearchStrategy[tasks_pb2.TaskTemplate]:
    return st.builds(
        tasks_pb2.TaskTemplate,
        type=st.sampled_from(["echo", "echo", "echo", "", "Echo", "echo "]) | small_text,
        task_type_version=st.sampled_from([0, 0, 0, 1, -1]) | int32,
        interface=st.builds(interface_pb2.TypedInterface, inputs=variable_maps(), outputs=variable_maps()),
        custom=customs(),
    )


def create_requests() -> st.SearchStrategy[pb.CreateTaskRequest]:
    named = st.builds(common_pb2.NamedLiteral, name=names, value=literal_values)
    return st.builds(
        pb.CreateTaskRequest,
        inputs=st.builds(common_pb2.Inputs, literals=st.lists(named, max_size=4)),
        template=templates() | st.none(),
        output_prefix=small_text,
        task_execution_metadata=task_execution_metadata(),
        connection=connections(),
    )


def echo_create_requests() -> st.SearchStrategy[pb.CreateTaskRequest]:
    """Echo tasks whose inputs and outputs have the same names: echo gets past its own checks."""

    @st.composite
    def build(draw: st.DrawFn) -> pb.CreateTaskRequest:
        keys = draw(st.lists(names, max_size=3, unique=True))
        inputs_types = {key: draw(literal_types) for key in keys}
        same = draw(st.booleans())
        outputs_types = inputs_types if same else {key: draw(literal_types) for key in keys}
        values = {key: draw(literal_values) for key in keys}

        def variable_map(types: dict[str, types_pb2.LiteralType]) -> interface_pb2.VariableMap:
            return interface_pb2.VariableMap(variables=[
                interface_pb2.VariableEntry(key=key, value=interface_pb2.Variable(type=literal_type))
                for key, literal_type in types.items()])

        template = tasks_pb2.TaskTemplate(
            type="echo", interface=interface_pb2.TypedInterface(inputs=variable_map(inputs_types),
                                                                  outputs=variable_map(outputs_types)),
            custom=draw(customs()))
        return pb.CreateTaskRequest(
            inputs=common_pb2.Inputs(literals=[common_pb2.NamedLiteral(name=k, value=v) for k, v in values.items()]),
            template=template, output_prefix=draw(small_text),
            task_execution_metadata=draw(task_execution_metadata()), connection=draw(connections()))

    return build()


def categories() -> st.SearchStrategy[pb.TaskCategory]:
    return st.builds(pb.TaskCategory, name=st.sampled_from(["echo", "echo", "", "counting"]) | small_text,
                     version=st.sampled_from([0, 0, 1]) | int32) | st.none().map(lambda _: pb.TaskCategory())


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bit flips, truncations, insertions, deletions or duplications."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "duplicate", "set"]))
            at = draw(st.integers(0, max(len(out) - 1, 0)))
            if operation == "flip" and out:
                out[at] ^= 1 << draw(st.integers(0, 7))
            elif operation == "truncate":
                del out[at:]
            elif operation == "insert":
                out[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif operation == "delete":
                del out[at : at + draw(st.integers(1, 8))]
            elif operation == "duplicate":
                out[at:at] = out[at : at + draw(st.integers(1, 16))]
            elif operation == "set" and out:
                out[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x12, 0x1A]))
        return bytes(out)

    return build()


def handles(real_handles: list[bytes]) -> st.SearchStrategy[bytes]:
    good = st.sampled_from(real_handles)
    return st.one_of(
        good,
        good.flatmap(mutated),
        st.binary(max_size=60),
        st.builds(lambda d, a, s: TaskHandle(d, a, s).encode(), st.binary(min_size=16, max_size=16),
                  st.integers(0, 2**32 - 1), st.binary(min_size=16, max_size=16)),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/!", min_size=46,
                max_size=48).map(lambda s: b"t1" + s.encode()),
    )


def by_handle_requests(rpc: str, real_handles: list[bytes]) -> st.SearchStrategy[Message]:
    handle, category = handles(real_handles), categories()
    if rpc == "GetTask":
        return st.builds(pb.GetTaskRequest, resource_meta=handle, task_category=category, output_prefix=small_text,
                         connection=connections())
    if rpc == "DeleteTask":
        return st.builds(pb.DeleteTaskRequest, resource_meta=handle, task_category=category, connection=connections())
    if rpc == "GetTaskMetrics":
        return st.builds(pb.GetTaskMetricsRequest, resource_meta=handle, task_category=category,
                         queries=st.lists(small_text, max_size=3), start_time=timestamps(), end_time=timestamps(),
                         step=durations())
    if rpc == "GetTaskLogs":
        return st.builds(pb.GetTaskLogsRequest, resource_meta=handle, task_category=category,
                         lines=st.integers(0, 2**64 - 1), token=small_text)
    raise AssertionError(rpc)


def wrong_types(value: Any) -> st.SearchStrategy[Any]:
    """JSON values of another type than ``value`` (and some of the same type, out of range)."""
    anything = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        st.sampled_from(["NaN", "Infinity", "-1", "1e400", "0x10", "", "!!", "AAAA", "t1", "QUEUED", "1970-01-01T00:00:00Z", "5s"]),
    )
    return anything.filter(lambda new: type(new) is not type(value) or new != value)


def json_with_wrong_types(message: Message) -> st.SearchStrategy[bytes]:
    """The message's proto JSON with one to three values replaced by wrongly typed ones (or keys added)."""
    document = json_format.MessageToDict(message)

    def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
        found = [prefix]
        if isinstance(node, dict):
            for key, item in node.items():
                found += paths(item, prefix + (key,))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                found += paths(item, prefix + (index,))
        return found

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        doc: Any = json.loads(json.dumps(document))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths(doc)))  # the paths of the document as changed so far
            parent, node = None, doc
            for part in path:
                parent, node = node, node[part]
            if isinstance(node, dict) and draw(st.booleans()):
                key = draw(st.sampled_from(["unknownField", "@type", "resourceMeta", "template", "lines"]) | small_text)
                node[key] = draw(wrong_types(None))
                continue
            new = draw(wrong_types(node))
            if parent is None:
                doc = new
                break
            parent[path[-1]] = new
        return json.dumps(doc).encode()

    return build()


# -- the properties ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_messages_built_from_field_values(http, real, data):
    """Well-formed messages with fuzzed field values, to every RPC, as proto and as JSON."""
    send_message(http, "CreateTask", data.draw(create_requests(), label="create"))
    send_message(http, "CreateTask", data.draw(echo_create_requests(), label="echo create"))
    for rpc in ("GetTask", "DeleteTask", "GetTaskMetrics", "GetTaskLogs"):
        send_message(http, rpc, data.draw(by_handle_requests(rpc, real["handles"]), label=rpc))
    send_message(http, "GetConnector", pb.GetConnectorRequest(name=data.draw(st.sampled_from(["Echo Connector", ""]) | small_text)))
    send_message(http, "ListConnectors", pb.ListConnectorsRequest())
    FINISHED.add("messages")


@pytest.mark.timeout(120)
@FUZZ
@given(body=st.binary(max_size=300), text=st.text(max_size=120),
       encoding=st.sampled_from([None, None, None, "identity", "gzip", "br", "zstd", "snappy", ""]))
def test_random_bytes_to_every_rpc(http, body, text, encoding):
    """Random bytes as proto, random text as JSON, random envelopes as streams; some claim a compression."""
    headers = {"content-encoding": encoding} if encoding is not None else None
    for rpc in UNARY:
        post_unary(http, rpc, body, "application/proto", headers)
        post_unary(http, rpc, text.encode(), "application/json", headers)
    stream_headers = {"connect-content-encoding": encoding} if encoding is not None else None
    post_stream(http, body, "proto", stream_headers)
    post_stream(http, envelope(body), "proto", stream_headers)
    post_stream(http, envelope(text.encode()), "json", stream_headers)
    FINISHED.add("random")


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_compressed_bodies(http, real, data, settings):
    """gzip bodies: real messages compressed (then mutated or not), and bodies that inflate past the limit."""
    for rpc, message in real["messages"].items():
        binary = message.SerializeToString()
        kind = data.draw(st.sampled_from(["plain", "mutated", "bomb"]), label=f"{rpc} kind")
        if kind == "bomb":
            compressed = gzip.compress(b"\0" * (settings.max_request_bytes + data.draw(st.integers(1, 1000))), compresslevel=1)
        else:
            compressed = gzip.compress(binary)
            if kind == "mutated":
                compressed = data.draw(mutated(compressed), label=rpc)
        if rpc == "GetTaskLogs":
            flagged = envelope(compressed, flags=1)
            post_stream(http, flagged, "proto", {"connect-content-encoding": "gzip"})
            post_stream(http, flagged, "proto", {"connect-content-encoding": data.draw(st.sampled_from(["identity", "zstd"]))})
            post_stream(http, flagged, "proto")
        else:
            code = post_unary(http, rpc, compressed, "application/proto", {"content-encoding": "gzip"})
            if kind == "plain":
                assert code not in ("invalid_argument", "resource_exhausted"), f"{rpc}: a valid gzip body answered {code}"
            if kind == "bomb":
                assert code == "resource_exhausted", f"{rpc}: a gzip bomb answered {code}"
    FINISHED.add("compressed")


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_mutated_real_bodies(http, real, data):
    """Real bodies (a real CreateTask, requests naming a real handle) with bits flipped, cut, spliced."""
    for rpc, message in real["messages"].items():
        binary = message.SerializeToString()
        if rpc == "GetTaskLogs":
            body = data.draw(mutated(binary), label=rpc)
            post_stream(http, envelope(body), "proto")
            post_stream(http, data.draw(mutated(envelope(binary)), label="envelope"), "proto")
        else:
            post_unary(http, rpc, data.draw(mutated(binary), label=rpc), "application/proto")
            text = json_format.MessageToJson(message).encode()
            post_unary(http, rpc, data.draw(mutated(text), label=f"{rpc} json"), "application/json")
    FINISHED.add("mutated")


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_json_with_wrong_types(http, real, data):
    """Each RPC's proto JSON with values of the wrong type, out of range, or unknown keys."""
    for rpc, message in real["messages"].items():
        body = data.draw(json_with_wrong_types(message), label=rpc)
        if rpc == "GetTaskLogs":
            post_stream(http, envelope(body), "json")
        else:
            post_unary(http, rpc, body, "application/json")
    FINISHED.add("json")


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_stream_envelopes(http, real, data):
    """GetTaskLogs envelopes with wrong flags, wrong lengths, several messages, trailing junk."""
    binary = real["messages"]["GetTaskLogs"].SerializeToString()
    flags = data.draw(st.sampled_from([0, 1, 2, 3, 0x80, 0xFF]) | st.integers(0, 255), label="flags")
    declared = data.draw(st.sampled_from([len(binary), len(binary) + 1, max(len(binary) - 1, 0), 0, 2**31, 2**32 - 1])
                         | st.integers(0, 2**32 - 1), label="length")
    body = bytes([flags]) + declared.to_bytes(4, "big") + binary
    body += data.draw(st.sampled_from([b"", envelope(binary), envelope(b""), b"\x00\x00"]) | st.binary(max_size=10), label="tail")
    post_stream(http, body, data.draw(st.sampled_from(["proto", "json"]), label="codec"))
    FINISHED.add("envelopes")


def _rest_segment() -> st.SearchStrategy[str]:
    return st.sampled_from(["echo", "0", "1", "-1", "x", "%00", "..", "%2F", "9" * 30]) | st.text(max_size=12)


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.data())
def test_rest_paths_queries_and_bodies(http, real, data):
    """The REST paths with fuzzed path segments, query strings and CreateTask JSON bodies."""
    handle = data.draw(handles(real["handles"]), label="handle")
    meta = data.draw(st.sampled_from([base64.urlsafe_b64encode(handle).decode().rstrip("="), base64.b64encode(handle).decode()])
                     | _rest_segment(), label="meta")
    name = data.draw(st.sampled_from(["echo", "echo", "counting"]) | _rest_segment(), label="name")
    version = data.draw(st.sampled_from(["0", "0", "1"]) | _rest_segment(), label="version")
    quote = lambda segment: urllib.parse.quote(segment, safe="")  # noqa: E731
    keys = st.sampled_from(["lines", "token", "queries", "output_prefix", "task_category.name", "resource_meta",
                            "step", "start_time", "connection.secrets", "nope", "connection"]) | st.text(max_size=8)
    params = data.draw(st.lists(st.tuples(keys, st.text(max_size=12)), max_size=3), label="params")
    routes = [
        ("GetTask", "GET", f"/api/v1/connector/task/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("DeleteTask", "DELETE", f"/api/v1/connector/task_executions/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("GetTaskMetrics", "GET", f"/api/v1/connector/task/metrics/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("GetTaskLogs", "GET", f"/api/v1/connector/task/logs/{quote(name)}/{quote(version)}/{quote(meta)}"),
        ("GetConnector", "GET", f"/api/v1/connector/{quote(data.draw(st.sampled_from(['Echo Connector']) | _rest_segment()))}"),
        ("ListConnectors", "GET", "/api/v1/connectors"),
    ]
    for rpc, method, path in routes:
        send_rest(http, rpc, method, path, params=params)
    create = data.draw(st.one_of(
        create_requests().map(lambda m: json_format.MessageToJson(m).encode()),
        json_with_wrong_types(real["messages"]["CreateTask"]),
        mutated(json_format.MessageToJson(real["messages"]["CreateTask"]).encode()),
        st.binary(max_size=100),
    ), label="create body")
    send_rest(http, "CreateTask", "POST", "/api/v1/connector/task", body=create)
    FINISHED.add("rest")


@pytest.mark.timeout(120)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.sampled_from([100_000, 300_000, 450_000, 1_000_000, 3_000_000]), where=st.sampled_from(["input", "prefix", "interface", "custom", "name"]))
def test_large_fields(http, size, where):
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
    send_message(http, "CreateTask", request)
    FINISHED.add("large")


def test_every_record_is_whole_after_the_fuzzing(http, settings, dynamodb_client):
    """No half-written record: each is created with its metadata, and its handle answers GetTask."""
    if not FINISHED:
        pytest.skip("no fuzz test ran in this session")
    total = sum(SENT.values())
    print(f"\nfuzz: {total} bodies sent: {dict(SENT)}; answers: {dict(CODES)}")
    if FINISHED >= {"messages", "random", "mutated", "json", "envelopes", "rest", "large", "compressed"}:
        assert total >= MIN_BODIES, f"only {total} bodies were sent"
        assert all(SENT[rpc] >= 100 for rpc in RPCS), dict(SENT)
    items = scan_table(dynamodb_client, settings.tasks_table)
    assert items, "the fuzzing created no task at all: the generators are too weak"
    now = time.time()
    for item in items:
        record = TaskRecord.from_item(item)
        where = f"{record.action_id}/{record.attempt}"
        assert record.state == CREATED, f"{where} left in state {record.state} (claim expires in {record.claim_expires_at - now:.0f} s)"
        assert record.resource_meta, f"{where} is created without resource_meta"
        assert record.claim_expires_at is None, f"{where} still carries a claim"
        assert record.category == ("echo", 0), f"{where} is of category {record.category}"
        EchoMetadata.decode(record.resource_meta)
        handle = record.handle.encode()
        assert TaskHandle.decode(handle) == record.handle
        code = post_unary(http, "GetTask", pb.GetTaskRequest(resource_meta=handle, task_category=ECHO).SerializeToString(),
                          "application/proto")
        assert code == "ok", f"{where}: GetTask answered {code}"
