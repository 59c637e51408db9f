"""Type fidelity against the flyte SDK (2.12.x, a test-only oracle).

For each case of the matrix (``tests/literal_cases.py``) the SDK turns a Python value into a
literal exactly as a Flyte v2 task sends it; ``inputs_to_native`` gives the connector its native
value; ``native_to_outputs`` writes that value back under the same declared type; and the SDK
reads the result back into a value that must equal the original. Then the reverse, for outputs a
connector builds itself. The cases that must be refused are in ``test_literals_refusals.py``.
"""

import datetime
import json
from typing import Any

import msgpack
import pytest
from flyte.io import DataFrame, Dir, File
from flyte.types import TypeEngine
from flyteidl2.core.interface_pb2 import TypedInterface
from flyteidl2.core.literals_pb2 import Literal
from flyteidl2.core.types_pb2 import LiteralType, SimpleType, StructuredDatasetType
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral
from google.protobuf.struct_pb2 import Struct

from connectors.literals import (
    DataFrameRef,
    DirRef,
    FileRef,
    from_json_safe,
    inputs_to_native,
    native_to_outputs,
    to_json_safe,
)
from tests.literal_cases import (
    CUSTOMER,
    DIR,
    FILE,
    FRAME,
    JOB,
    ROUND_TRIPS,
    UTC,
    Address,
    Color,
    Customer,
    Job,
    Letter,
    Pair,
    Point,
    Priority,
    assert_same,
    declared,
    sdk_literal,
    sdk_value,
)


def through_connector(value: Any, python_type: Any) -> tuple[Any, Any]:
    """SDK literal -> native (what the connector sees) -> outputs -> SDK value."""
    literal, literal_type = sdk_literal(value, python_type)
    native = inputs_to_native(
        Inputs(literals=[NamedLiteral(name="x", value=literal)]), TypedInterface(inputs=declared("x", literal_type))
    )["x"]
    # The echo connector keeps the value in its JSON ResourceMeta between create and get.
    native = from_json_safe(to_json_safe(native))
    outputs = native_to_outputs({"o": native}, declared("o", literal_type))
    assert [named.name for named in outputs.literals] == ["o"]
    return native, sdk_value(outputs.literals[0].value, python_type)


# -- the matrix -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "python_type"), ROUND_TRIPS)
def test_sdk_value_round_trips_through_a_connector(value, python_type):
    _, back = through_connector(value, python_type)
    assert_same(back, value)


def test_the_matrix_is_at_least_forty_cases():
    assert len(ROUND_TRIPS) >= 40


# -- what the connector sees ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "python_type", "expected"),
    [
        (Color.GREEN, Color, "GREEN"),
        (Priority.HIGH, Priority, "HIGH"),
        ("c", Letter, "c"),
        (datetime.date(2024, 1, 2), datetime.date, datetime.datetime(2024, 1, 2, tzinfo=UTC)),
        (7, int | None, 7),
        (Point(1.0, 2.0), Point, {"x": 1.0, "y": 2.0}),
        (Pair(1, "a"), Pair, {"left": 1, "right": "a"}),
        ((1, "a"), tuple[int, str], {"item_0": 1, "item_1": "a"}),
        (FILE, File, FileRef(uri="s3://bucket/reports/q1.csv", format="csv", hash="sha256:abc")),
        (DIR, Dir, DirRef(uri="s3://bucket/images/")),
        (FRAME, DataFrame, DataFrameRef(uri="s3://bucket/frames/orders.parquet", format="parquet")),
    ],
)
def test_the_connector_receives_plain_values(value, python_type, expected):
    native, _ = through_connector(value, python_type)
    assert native == expected and type(native) is type(expected)


def test_a_dataclass_arrives_as_the_dict_the_sdk_encoded():
    native, _ = through_connector(JOB, Job)
    assert native["started"] == "2024-05-01T02:30:00.250000+00:00"
    assert native["budget"] == 5400.000005
    assert native["color"] == "green"  # mashumaro writes an enum's value inside a dataclass...
    assert native["report"] == {"path": FILE.path, "name": "q1.csv", "format": "csv", "hash": "sha256:abc"}
    assert native["blob"] == b"\x00\xffbinary"
    customer, _ = through_connector(CUSTOMER, Customer)
    assert customer["tier"] == "RED"  # ...and flyte writes its name inside a pydantic model
    assert customer["patience"] == "P1DT30.5S"
    assert customer["orders"] == {"uri": FRAME.uri, "format": "parquet"}


def test_undeclared_inputs_are_read_from_the_literal_itself():
    literals = {
        "n": sdk_literal(5, int)[0],
        "maybe": sdk_literal(5, int | None)[0],
        "point": sdk_literal(Point(1.0, 2.0), Point)[0],
        "file": sdk_literal(FILE, File)[0],
        "frame": sdk_literal(FRAME, DataFrame)[0],
        "when": sdk_literal(datetime.datetime(2024, 1, 1, tzinfo=UTC), datetime.datetime)[0],
    }
    native = inputs_to_native(
        Inputs(literals=[NamedLiteral(name=k, value=v) for k, v in literals.items()]), TypedInterface()
    )
    assert native == {
        "n": 5,
        "maybe": 5,
        "point": {"x": 1.0, "y": 2.0},
        "file": FileRef(uri=FILE.path, format="csv", hash="sha256:abc"),
        "frame": DataFrameRef(uri=FRAME.uri, format="parquet"),
        "when": datetime.datetime(2024, 1, 1, tzinfo=UTC),
    }


# -- outputs a connector builds itself -----------------------------------------------------------------


def connector_output(value: Any, python_type: Any) -> Any:
    outputs = native_to_outputs({"o": value}, declared("o", TypeEngine.to_literal_type(python_type)))
    return sdk_value(outputs.literals[0].value, python_type)


def test_a_dataframe_ref_becomes_an_sdk_dataframe():
    frame = connector_output(DataFrameRef(uri="s3://out/result.parquet", format="parquet"), DataFrame)
    assert isinstance(frame, DataFrame)
    assert (frame.uri, frame.format, frame.hash) == ("s3://out/result.parquet", "parquet", None)


def test_a_dataframe_ref_keeps_the_declared_columns():
    # Annotated[DataFrame, OrderedDict(id=int)] declares this (the SDK needs numpy to build it).
    frame_type = LiteralType(
        structured_dataset_type=StructuredDatasetType(
            columns=[
                StructuredDatasetType.DatasetColumn(name="id", literal_type=LiteralType(simple=SimpleType.INTEGER))
            ]
        )
    )
    outputs = native_to_outputs({"o": DataFrameRef(uri="s3://out/r", format="csv")}, declared("o", frame_type))
    dataset_type = outputs.literals[0].value.scalar.structured_dataset.metadata.structured_dataset_type
    assert [column.name for column in dataset_type.columns] == ["id"] and dataset_type.format == "csv"
    frame = sdk_value(outputs.literals[0].value, DataFrame)
    assert (frame.uri, frame.format) == ("s3://out/r", "csv")


def test_file_and_dir_refs_become_sdk_files_and_dirs():
    file = connector_output(FileRef(uri="s3://out/model.bin", format="bin", hash="h1"), File)
    assert file == File(path="s3://out/model.bin", name="model.bin", format="bin", hash="h1")
    directory = connector_output(DirRef(uri="s3://out/shards/"), Dir)
    assert directory == Dir(path="s3://out/shards/")


def test_a_dict_with_native_leaves_becomes_the_declared_dataclass():
    built = {
        "name": "n",
        "started": datetime.datetime(2024, 5, 1, tzinfo=UTC),
        "budget": datetime.timedelta(seconds=30),
        "color": Color.RED,
        "points": [Point(1, 2), {"x": 3, "y": 4}],  # ints where floats are due, a dataclass instance
        "origin": None,
        "labels": {},
        "report": FileRef(uri="s3://out/r.csv", format="csv"),
        "blob": b"",
    }
    job = connector_output(built, Job)
    assert job == Job(
        name="n",
        started=datetime.datetime(2024, 5, 1, tzinfo=UTC),
        budget=datetime.timedelta(seconds=30),
        color=Color.RED,
        points=[Point(1.0, 2.0), Point(3.0, 4.0)],
        origin=None,
        labels={},
        report=File(path="s3://out/r.csv", format="csv"),
        blob=b"",
    )
    assert isinstance(job.points[0].x, float)


def test_a_dict_with_native_leaves_becomes_the_declared_pydantic_model():
    built = {
        "id": 1,
        "since": datetime.date(2021, 3, 4),
        "tier": Color.GREEN,
        "patience": datetime.timedelta(minutes=-5),
        "addresses": [Address(street="a")],
        "avatar": FileRef(uri="s3://out/a.png"),
        "orders": DataFrameRef(uri="s3://out/o", format="parquet"),
    }
    customer = connector_output(built, Customer)
    assert customer.tier is Color.GREEN and customer.patience == datetime.timedelta(minutes=-5)
    assert customer.since == datetime.date(2021, 3, 4) and customer.addresses == [Address(street="a")]
    assert customer.avatar == File(path="s3://out/a.png") and customer.orders.uri == "s3://out/o"


def test_connector_built_scalars_take_the_declared_shape():
    assert connector_output(Color.RED, Color) is Color.RED
    assert connector_output("LOW", Priority) is Priority.LOW
    assert connector_output(2, float) == 2.0
    assert connector_output((4, "four"), tuple[int, str]) == (4, "four")
    assert connector_output(Pair(1, "x"), Pair) == Pair(1, "x")
    naive = datetime.datetime(2024, 1, 1, 12, 0)
    assert connector_output(naive, datetime.datetime) == naive.replace(tzinfo=UTC)
    assert connector_output(3, float | None) == 3.0


def test_a_protobuf_struct_round_trips_as_a_dict():
    struct = Struct()
    struct.update({"a": 1.0, "b": ["x", True, None], "c": {"d": "e"}})
    native, back = through_connector(struct, Struct)
    assert native == {"a": 1.0, "b": ["x", True, None], "c": {"d": "e"}}
    assert back == struct


def test_a_value_the_sdk_passed_on_as_msgpack_is_read():
    """``dc.x`` handed to another task arrives as msgpack, not as a primitive literal."""
    as_msgpack = Literal()
    as_msgpack.scalar.binary.value = msgpack.packb(4)
    as_msgpack.scalar.binary.tag = "msgpack"
    assert sdk_value(as_msgpack, int) == 4
    native = inputs_to_native(
        Inputs(literals=[NamedLiteral(name="x", value=as_msgpack)]),
        TypedInterface(inputs=declared("x", TypeEngine.to_literal_type(int))),
    )
    assert native == {"x": 4}


def test_json_safe_round_trips_every_native_type():
    values = {
        "when": datetime.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        "day": datetime.date(2024, 1, 1),
        "span": datetime.timedelta(days=-1, microseconds=3),
        "raw": b"\x00\x01",
        "refs": [FileRef("s3://f", "csv", "h"), DirRef("s3://d/"), DataFrameRef("s3://t", "parquet")],
        "odd": {1: "int key", "$type": "looks like a tag"},
        "nan": float("nan"),
        "pair": (1, "a"),
        "plain": {"a": [None, True, 1, 1.5, "s"]},
    }
    back = from_json_safe(json.loads(json.dumps(to_json_safe(values), allow_nan=False)))
    nan = back.pop("nan")
    expected = dict(values)
    expected.pop("nan")
    assert nan != nan and back == expected
    assert type(back["pair"]) is tuple and type(back["day"]) is datetime.date
    with pytest.raises(TypeError):
        to_json_safe(object())
