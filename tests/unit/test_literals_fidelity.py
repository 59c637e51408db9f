"""Type fidelity against the flyte SDK (2.12.x, a test-only oracle).

For each case the SDK turns a Python value into a literal exactly as a Flyte v2 task sends it;
``inputs_to_native`` gives the connector its native value; ``native_to_outputs`` writes that
value back under the same declared type; and the SDK reads the result back into a value that
must equal the original. Then the reverse, for outputs a connector builds itself, and the cases
that must be refused.
"""

import asyncio
import dataclasses
import datetime
import enum
import typing
from typing import Any, NamedTuple, Optional, TypedDict, Union

import msgpack
import pydantic
import pytest
from flyteidl2.core.interface_pb2 import TypedInterface, Variable, VariableEntry, VariableMap
from flyteidl2.core.literals_pb2 import Literal, LiteralOffloadedMetadata
from flyteidl2.core.types_pb2 import LiteralType, SimpleType, StructuredDatasetType
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral
from google.protobuf.struct_pb2 import Struct

from flyte._interface import literal_to_enum
from flyte.io import DataFrame, Dir, File
from flyte.types import TypeEngine

from connectors.literals import (
    DataFrameRef,
    DirRef,
    FileRef,
    LiteralConversionError,
    from_json_safe,
    inputs_to_native,
    native_to_outputs,
    to_json_safe,
)

UTC = datetime.timezone.utc


# -- the user's types ------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Job:
    name: str
    started: datetime.datetime
    budget: datetime.timedelta
    color: Color
    points: list[Point]
    origin: Optional[Point]
    labels: dict[str, int]
    report: File
    blob: bytes
    retries: int = 3
    note: Optional[str] = None


@dataclasses.dataclass
class Cat:
    name: str
    lives: int


@dataclasses.dataclass
class Dog:
    name: str
    good: bool


class Address(pydantic.BaseModel):
    street: str
    zip_code: Optional[str] = None


class Customer(pydantic.BaseModel):
    id: int
    since: datetime.date
    tier: Color
    patience: datetime.timedelta
    addresses: list[Address]
    avatar: File
    orders: DataFrame
    meta: dict[str, Any] = {}


class Pair(NamedTuple):
    left: int
    right: str


class Movie(TypedDict):
    title: str
    year: int


Letter = literal_to_enum(typing.Literal["a", "b", "c"])  # what flyte makes of a Literal[...] input

FILE = File(path="s3://bucket/reports/q1.csv", format="csv", hash="sha256:abc")
DIR = Dir(path="s3://bucket/images/")
FRAME = DataFrame(uri="s3://bucket/frames/orders.parquet", format="parquet")
JOB = Job(
    name="nightly",
    started=datetime.datetime(2024, 5, 1, 2, 30, 0, 250000, tzinfo=UTC),
    budget=datetime.timedelta(minutes=90, microseconds=5),
    color=Color.GREEN,
    points=[Point(0.0, 1.5), Point(-2.0, 3.25)],
    origin=None,
    labels={"a": 1, "b": 2},
    report=FILE,
    blob=b"\x00\xffbinary",
)
CUSTOMER = Customer(
    id=7,
    since=datetime.date(2020, 2, 29),
    tier=Color.RED,
    patience=datetime.timedelta(days=1, seconds=30, microseconds=500000),
    addresses=[Address(street="1 Main St"), Address(street="2 Side Rd", zip_code="02139")],
    avatar=File(path="s3://bucket/avatar.png"),
    orders=FRAME,
    meta={"nested": [1, "two", None], "ok": True},
)


# -- running the SDK ---------------------------------------------------------------------------------


def run(coroutine):
    return asyncio.run(coroutine)


def sdk_literal(value: Any, python_type: Any) -> tuple[Literal, Any]:
    literal_type = TypeEngine.to_literal_type(python_type)
    return run(TypeEngine.to_literal(value, python_type, literal_type)), literal_type


def sdk_value(literal: Literal, python_type: Any) -> Any:
    return run(TypeEngine.to_python_value(literal, python_type))


def declared(name: str, literal_type) -> VariableMap:
    return VariableMap(variables=[VariableEntry(key=name, value=Variable(type=literal_type))])


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


def same(left: Any, right: Any) -> bool:
    """Equality, but a DataFrame by its uri, format and hash (the SDK keeps private state on it)."""
    if isinstance(left, DataFrame) and isinstance(right, DataFrame):
        return (left.uri, left.format, left.hash) == (right.uri, right.format, right.hash)
    if isinstance(left, pydantic.BaseModel) and type(left) is type(right):
        return all(same(getattr(left, name), getattr(right, name)) for name in type(left).model_fields)
    return left == right and type(left) is type(right)


# -- the matrix -----------------------------------------------------------------------------------------

ROUND_TRIPS = [
    pytest.param(0, int, id="int-zero"),
    pytest.param(-(2**62), int, id="int-large-negative"),
    pytest.param(3.25, float, id="float"),
    pytest.param(float("-inf"), float, id="float-infinite"),
    pytest.param("héllo, wörld ✓", str, id="str-unicode"),
    pytest.param("", str, id="str-empty"),
    pytest.param(True, bool, id="bool-true"),
    pytest.param(False, bool, id="bool-false"),
    pytest.param(None, type(None), id="none"),
    pytest.param(None, Optional[int], id="optional-int-none"),
    pytest.param(7, Optional[int], id="optional-int-set"),
    pytest.param("x", Optional[str], id="optional-str-set"),
    pytest.param(datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC), datetime.datetime, id="datetime"),
    pytest.param(
        datetime.datetime(2024, 1, 1, 8, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.datetime,
        id="datetime-other-zone",
    ),
    pytest.param(datetime.date(1999, 12, 31), datetime.date, id="date"),
    pytest.param(datetime.timedelta(days=3, seconds=7, microseconds=11), datetime.timedelta, id="timedelta"),
    pytest.param(-datetime.timedelta(seconds=1.5), datetime.timedelta, id="timedelta-negative"),
    pytest.param(Color.GREEN, Color, id="enum-str-valued"),
    pytest.param(Priority.HIGH, Priority, id="enum-int-valued"),
    pytest.param("b", Letter, id="typing-literal"),
    pytest.param([1, 2, 3], list[int], id="list-int"),
    pytest.param([], list[int], id="list-empty"),
    pytest.param([[1.0], [], [2.5, -3.0]], list[list[float]], id="list-list-float"),
    pytest.param(["a", None, "c"], list[Optional[str]], id="list-optional-str"),
    pytest.param({"a": 1, "b": -2}, dict[str, int], id="dict-str-int"),
    pytest.param({"k": ["v", "w"], "e": []}, dict[str, list[str]], id="dict-str-list"),
    pytest.param({"outer": {"inner": True}}, dict[str, dict[str, bool]], id="dict-nested"),
    pytest.param({"a": [1, {"b": None}], "c": 1.5, "d": "s", "e": b"raw"}, dict, id="untyped-dict"),
    pytest.param({1: "one", 2: "two"}, dict[int, str], id="dict-int-keys"),
    pytest.param(Point(1.0, -2.5), Point, id="dataclass"),
    pytest.param(JOB, Job, id="dataclass-nested-rich"),
    pytest.param([Point(0.0, 0.0), Point(1.0, 1.0)], list[Point], id="list-dataclass"),
    pytest.param(None, Optional[Point], id="optional-dataclass-none"),
    pytest.param(Point(3.0, 4.0), Optional[Point], id="optional-dataclass-set"),
    pytest.param(Dog("rex", True), Union[Cat, Dog], id="union-dataclasses"),
    pytest.param(Address(street="5th Ave"), Address, id="pydantic"),
    pytest.param(CUSTOMER, Customer, id="pydantic-rich"),
    pytest.param({"home": Address(street="x", zip_code="1")}, dict[str, Address], id="dict-pydantic"),
    pytest.param(5, Union[int, str], id="union-int"),
    pytest.param("5", Union[int, str], id="union-str"),
    pytest.param(1.0, Union[int, float], id="union-float-not-int"),
    pytest.param({"a": 1}, Union[list[int], dict[str, int]], id="union-of-containers"),
    pytest.param(Address(street="s"), Union[Address, int], id="union-pydantic"),
    pytest.param(FILE, File, id="file"),
    pytest.param(DIR, Dir, id="dir"),
    pytest.param(FRAME, DataFrame, id="dataframe"),
    pytest.param([FILE, File(path="s3://b/2.txt")], list[File], id="list-file"),
    pytest.param(None, Optional[File], id="optional-file-none"),
    pytest.param(DIR, Optional[Dir], id="optional-dir-set"),
    pytest.param((1, "one"), tuple[int, str], id="tuple"),
    pytest.param(Pair(2, "two"), Pair, id="named-tuple"),
    pytest.param(Movie(title="Heat", year=1995), Movie, id="typed-dict"),
]


@pytest.mark.parametrize(("value", "python_type"), ROUND_TRIPS)
def test_sdk_value_round_trips_through_a_connector(value, python_type):
    _, back = through_connector(value, python_type)
    if isinstance(value, list):
        assert len(back) == len(value) and all(same(a, b) for a, b in zip(value, back))
    else:
        assert same(back, value), f"{back!r} != {value!r}"


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
        (7, Optional[int], 7),
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
        "maybe": sdk_literal(5, Optional[int])[0],
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
            columns=[StructuredDatasetType.DatasetColumn(name="id", literal_type=LiteralType(simple=SimpleType.INTEGER))]
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
    assert connector_output(3, Optional[float]) == 3.0


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
    import json

    back = from_json_safe(json.loads(json.dumps(to_json_safe(values), allow_nan=False)))
    nan = back.pop("nan")
    expected = dict(values)
    expected.pop("nan")
    assert nan != nan and back == expected
    assert type(back["pair"]) is tuple and type(back["day"]) is datetime.date
    with pytest.raises(TypeError):
        to_json_safe(object())


# -- refusals ---------------------------------------------------------------------------------------------


def refused_input(literal: Literal, declared_type: Any) -> LiteralConversionError:
    with pytest.raises(LiteralConversionError) as caught:
        inputs_to_native(
            Inputs(literals=[NamedLiteral(name="x", value=literal)]),
            TypedInterface(inputs=declared("x", TypeEngine.to_literal_type(declared_type))),
        )
    assert caught.value.where.startswith("input 'x'")
    assert caught.value.where in str(caught.value) and caught.value.type_name in str(caught.value)
    return caught.value


def refused_output(value: Any, declared_type: Any) -> LiteralConversionError:
    with pytest.raises(LiteralConversionError) as caught:
        native_to_outputs({"o": value}, declared("o", TypeEngine.to_literal_type(declared_type)))
    assert caught.value.where.startswith("output 'o'")
    assert caught.value.where in str(caught.value) and caught.value.type_name in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("value", "written_as", "declared_as", "type_name"),
    [
        (5, int, str, "str"),
        ("5", str, int, "int"),
        (FILE, File, Dir, "directory"),
        (DIR, Dir, File, "file"),
        (FRAME, DataFrame, File, "file"),
        (Color.RED, Color, Priority, "enum{LOW,HIGH}"),
        ([1], list[int], dict[str, int], "dict[str, int]"),
        (Point(1.0, 2.0), Point, list[int], "list[int]"),
        (True, bool, Optional[int], "int | none"),
    ],
)
def test_an_input_that_does_not_match_its_declared_type_is_refused(value, written_as, declared_as, type_name):
    literal, _ = sdk_literal(value, written_as)
    assert refused_input(literal, declared_as).type_name == type_name


def test_a_pickled_input_is_refused():
    literal, _ = sdk_literal(b"bytes are pickled by flyte", bytes)
    error = refused_input(literal, bytes)
    assert "pickle" in error.problem and error.type_name == "pickle of <class 'bytes'>"


def test_an_offloaded_input_is_refused():
    literal = Literal(offloaded_metadata=LiteralOffloadedMetadata(uri="s3://big/literal.pb"))
    assert "offloaded" in refused_input(literal, int).problem


@pytest.mark.parametrize(
    ("value", "declared_as", "where", "words"),
    [
        ({"x": 1.0}, Point, "output 'o'", "'y'"),
        ({"x": 1.0, "y": 2.0, "z": 3.0}, Point, "output 'o'", "'z'"),
        ({"x": "one", "y": 2.0}, Point, "output 'o'.x", "number"),
        ([{"x": 1.0, "y": None}], list[Point], "output 'o'[0].y", "number"),
        ({"street": 5}, Address, "output 'o'.street", "string"),
        ("PURPLE", Color, "output 'o'", "PURPLE"),
        (FileRef(uri="s3://x"), DataFrame, "output 'o'", "DataFrameRef"),
        (DataFrameRef(uri="s3://x"), File, "output 'o'", "FileRef"),
        (FileRef(uri="s3://x"), Dir, "output 'o'", "DirRef"),
        (1.5, Union[int, str], "output 'o'", "none of the variants"),
        ("1", int, "output 'o'", "str"),
        (True, int, "output 'o'", "bool"),
        ([1, "2"], list[int], "output 'o'[1]", "str"),
        ({"a": 1}, dict[str, str], "output 'o'['a']", "int"),
        ([1, 2], dict, "output 'o'", "list"),
        (b"x", bytes, "output 'o'", "pickle"),
        (object(), str, "output 'o'", "object"),
        ({"big": 2**70}, dict, "output 'o'", "msgpack"),
    ],
)
def test_an_output_that_does_not_fit_its_declared_type_is_refused(value, declared_as, where, words):
    error = refused_output(value, declared_as)
    assert error.where == where
    assert words in error.problem


def test_an_undeclared_output_of_an_unknown_type_is_refused():
    with pytest.raises(LiteralConversionError, match="output 'o'.*object"):
        native_to_outputs({"o": object()}, None)
