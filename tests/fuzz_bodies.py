"""Hypothesis strategies for the fuzz tests: request bodies built, mutated and mistyped.

Messages are built from field strategies (literal types and values, templates, task execution
ids, connections), bytes are mutated (bits flipped, cut, spliced), handles are real, mangled or
made up, and proto JSON documents get values of the wrong type. The tests that send them are
``tests/functional/test_fuzz_*.py``; the sending and checking is in ``tests/fuzz_client.py``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import identifier_pb2, interface_pb2, literals_pb2, security_pb2, tasks_pb2, types_pb2
from flyteidl2.task import common_pb2
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from connectors.store import TaskHandle

# -- messages built from field values ---------------------------------------------------------------

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
    return st.builds(
        lambda s, n: Duration(seconds=s, nanos=n if s >= 0 else -n),
        st.integers(-315576000000, 315576000000),
        st.integers(0, 999_999_999),
    )


simple_types = st.integers(0, 9) | st.sampled_from([10, 99])  # open enum: unknown numbers are legal on the wire

literal_types = st.recursive(
    st.builds(types_pb2.LiteralType, simple=simple_types)
    | st.builds(
        types_pb2.LiteralType, blob=st.builds(types_pb2.BlobType, format=small_text, dimensionality=st.integers(0, 2))
    )
    | st.builds(types_pb2.LiteralType, enum_type=st.builds(types_pb2.EnumType, values=st.lists(small_text, max_size=3)))
    | st.builds(
        types_pb2.LiteralType, structured_dataset_type=st.builds(types_pb2.StructuredDatasetType, format=small_text)
    )
    | st.just(types_pb2.LiteralType()),
    lambda inner: (
        st.builds(types_pb2.LiteralType, collection_type=inner)
        | st.builds(types_pb2.LiteralType, map_value_type=inner)
        | st.builds(
            types_pb2.LiteralType, union_type=st.builds(types_pb2.UnionType, variants=st.lists(inner, max_size=3))
        )
    ),
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
    | st.builds(
        literals_pb2.Literal, offloaded_metadata=st.builds(literals_pb2.LiteralOffloadedMetadata, uri=small_text)
    )
    | st.just(literals_pb2.Literal()),
    lambda inner: (
        st.builds(
            literals_pb2.Literal,
            collection=st.builds(literals_pb2.LiteralCollection, literals=st.lists(inner, max_size=3)),
        )
        | st.builds(
            literals_pb2.Literal,
            map=st.builds(literals_pb2.LiteralMap, literals=st.dictionaries(small_text, inner, max_size=3)),
        )
        | st.builds(_union, inner, literal_types)
    ),
    max_leaves=6,
)


def variable_maps() -> st.SearchStrategy[interface_pb2.VariableMap]:
    entry = st.builds(
        interface_pb2.VariableEntry,
        key=names,
        value=st.builds(interface_pb2.Variable, type=literal_types, description=small_text)
        | st.just(interface_pb2.Variable()),
    )
    return st.builds(interface_pb2.VariableMap, variables=st.lists(entry, max_size=3))


def customs() -> st.SearchStrategy[Struct]:
    """template.custom as echo reads it: delay_seconds and fail of every type, plus anything."""
    any_json = (
        st.none()
        | st.booleans()
        | floats.filter(lambda f: not math.isnan(f))
        | st.text(max_size=10)
        | st.lists(st.integers(), max_size=2)
        | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    )
    delay = st.floats(min_value=0, max_value=5) | any_json
    fields = st.fixed_dictionaries(
        {}, optional={"delay_seconds": delay, "fail": st.text(max_size=20) | any_json, "other": any_json}
    )

    def to_struct(value: dict[str, Any]) -> Struct:
        struct = Struct()
        for key, item in value.items():
            struct[key] = item  # inf and -inf are legal number_values on the wire
        return struct

    return fields.map(to_struct)


def connections() -> st.SearchStrategy[security_pb2.Connection]:
    return st.builds(
        security_pb2.Connection,
        task_type=small_text,
        secrets=st.dictionaries(small_text, small_text, max_size=2),
        configs=st.dictionaries(small_text, small_text, max_size=2),
    )


def task_execution_metadata() -> st.SearchStrategy[pb.TaskExecutionMetadata]:
    # A few runs and actions only, so that duplicate task execution ids (and their claims) happen.
    execution = st.builds(
        identifier_pb2.WorkflowExecutionIdentifier,
        project=st.sampled_from(["p", "", "flytesnacks"]),
        domain=st.sampled_from(["d", "development"]),
        name=st.sampled_from(["run-a", "run-b", ""]) | small_text,
        org=st.sampled_from(["", "org"]),
    )
    node = st.builds(
        identifier_pb2.NodeExecutionIdentifier, node_id=st.sampled_from(["a0", "a1", ""]), execution_id=execution
    )
    task_execution_id = st.builds(
        identifier_pb2.TaskExecutionIdentifier,
        node_execution_id=node,
        retry_attempt=st.integers(0, 3) | st.integers(0, 2**32 - 1),
    )
    return st.builds(pb.TaskExecutionMetadata, task_execution_id=task_execution_id, namespace=small_text) | st.just(
        pb.TaskExecutionMetadata()
    )


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
            return interface_pb2.VariableMap(
                variables=[
                    interface_pb2.VariableEntry(key=key, value=interface_pb2.Variable(type=literal_type))
                    for key, literal_type in types.items()
                ]
            )

        template = tasks_pb2.TaskTemplate(
            type="echo",
            interface=interface_pb2.TypedInterface(
                inputs=variable_map(inputs_types), outputs=variable_map(outputs_types)
            ),
            custom=draw(customs()),
        )
        return pb.CreateTaskRequest(
            inputs=common_pb2.Inputs(literals=[common_pb2.NamedLiteral(name=k, value=v) for k, v in values.items()]),
            template=template,
            output_prefix=draw(small_text),
            task_execution_metadata=draw(task_execution_metadata()),
            connection=draw(connections()),
        )

    return build()


def categories() -> st.SearchStrategy[pb.TaskCategory]:
    return st.builds(
        pb.TaskCategory,
        name=st.sampled_from(["echo", "echo", "", "counting"]) | small_text,
        version=st.sampled_from([0, 0, 1]) | int32,
    ) | st.none().map(lambda _: pb.TaskCategory())


# -- real bodies mangled, handles, wrongly typed JSON -------------------------------------------------


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
        st.builds(
            lambda d, a, s: TaskHandle(d, a, s).encode(),
            st.binary(min_size=16, max_size=16),
            st.integers(0, 2**32 - 1),
            st.binary(min_size=16, max_size=16),
        ),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/!", min_size=46, max_size=48
        ).map(lambda s: b"t1" + s.encode()),
    )


def by_handle_requests(rpc: str, real_handles: list[bytes]) -> st.SearchStrategy[Message]:
    handle, category = handles(real_handles), categories()
    if rpc == "GetTask":
        return st.builds(
            pb.GetTaskRequest,
            resource_meta=handle,
            task_category=category,
            output_prefix=small_text,
            connection=connections(),
        )
    if rpc == "DeleteTask":
        return st.builds(pb.DeleteTaskRequest, resource_meta=handle, task_category=category, connection=connections())
    if rpc == "GetTaskMetrics":
        return st.builds(
            pb.GetTaskMetricsRequest,
            resource_meta=handle,
            task_category=category,
            queries=st.lists(small_text, max_size=3),
            start_time=timestamps(),
            end_time=timestamps(),
            step=durations(),
        )
    if rpc == "GetTaskLogs":
        return st.builds(
            pb.GetTaskLogsRequest,
            resource_meta=handle,
            task_category=category,
            lines=st.integers(0, 2**64 - 1),
            token=small_text,
        )
    raise AssertionError(rpc)


def wrong_types(value: Any) -> st.SearchStrategy[Any]:
    """JSON values of another type than ``value`` (and some of the same type, out of range)."""
    anything = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        st.sampled_from(
            ["NaN", "Infinity", "-1", "1e400", "0x10", "", "!!", "AAAA", "t1", "QUEUED", "1970-01-01T00:00:00Z", "5s"]
        ),
    )
    return anything.filter(lambda new: type(new) is not type(value) or new != value)


def json_with_wrong_types(message: Message) -> st.SearchStrategy[bytes]:
    """The message's proto JSON with one to three values replaced by wrongly typed ones (or keys added)."""
    document = json_format.MessageToDict(message)

    def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
        found = [prefix]
        if isinstance(node, dict):
            for key, item in node.items():
                found += paths(item, (*prefix, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                found += paths(item, (*prefix, index))
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
