"""The type-fidelity matrix: Python values and types as a Flyte v2 task declares them, and the SDK.

The flyte SDK (2.12.x) is a test-only oracle: ``sdk_literal`` turns a Python value into the
literal a task sends, ``sdk_value`` reads a literal back. ``ROUND_TRIPS`` is the matrix of
values that must come back equal after a connector received and returned them; the unit tests
(``tests/unit/test_literals_fidelity.py``) run each case through ``connectors.literals``, the
functional ones (``tests/functional/test_type_fidelity.py``) through the running service.
"""

import asyncio
import dataclasses
import datetime
import enum
import typing
from typing import Any, NamedTuple, TypedDict

import pydantic
import pytest
from flyte._interface import literal_to_enum
from flyte.io import DataFrame, Dir, File
from flyte.types import TypeEngine
from flyteidl2.core.interface_pb2 import Variable, VariableEntry, VariableMap
from flyteidl2.core.literals_pb2 import Literal

UTC = datetime.UTC


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
    origin: Point | None
    labels: dict[str, int]
    report: File
    blob: bytes
    retries: int = 3
    note: str | None = None


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
    zip_code: str | None = None


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
    pytest.param(None, int | None, id="optional-int-none"),
    pytest.param(7, int | None, id="optional-int-set"),
    pytest.param("x", str | None, id="optional-str-set"),
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
    pytest.param(["a", None, "c"], list[str | None], id="list-optional-str"),
    pytest.param({"a": 1, "b": -2}, dict[str, int], id="dict-str-int"),
    pytest.param({"k": ["v", "w"], "e": []}, dict[str, list[str]], id="dict-str-list"),
    pytest.param({"outer": {"inner": True}}, dict[str, dict[str, bool]], id="dict-nested"),
    pytest.param({"a": [1, {"b": None}], "c": 1.5, "d": "s", "e": b"raw"}, dict, id="untyped-dict"),
    pytest.param({1: "one", 2: "two"}, dict[int, str], id="dict-int-keys"),
    pytest.param(Point(1.0, -2.5), Point, id="dataclass"),
    pytest.param(JOB, Job, id="dataclass-nested-rich"),
    pytest.param([Point(0.0, 0.0), Point(1.0, 1.0)], list[Point], id="list-dataclass"),
    pytest.param(None, Point | None, id="optional-dataclass-none"),
    pytest.param(Point(3.0, 4.0), Point | None, id="optional-dataclass-set"),
    pytest.param(Dog("rex", True), Cat | Dog, id="union-dataclasses"),
    pytest.param(Address(street="5th Ave"), Address, id="pydantic"),
    pytest.param(CUSTOMER, Customer, id="pydantic-rich"),
    pytest.param({"home": Address(street="x", zip_code="1")}, dict[str, Address], id="dict-pydantic"),
    pytest.param(5, int | str, id="union-int"),
    pytest.param("5", int | str, id="union-str"),
    pytest.param(1.0, int | float, id="union-float-not-int"),
    pytest.param({"a": 1}, list[int] | dict[str, int], id="union-of-containers"),
    pytest.param(Address(street="s"), Address | int, id="union-pydantic"),
    pytest.param(FILE, File, id="file"),
    pytest.param(DIR, Dir, id="dir"),
    pytest.param(FRAME, DataFrame, id="dataframe"),
    pytest.param([FILE, File(path="s3://b/2.txt")], list[File], id="list-file"),
    pytest.param(None, File | None, id="optional-file-none"),
    pytest.param(DIR, Dir | None, id="optional-dir-set"),
    pytest.param((1, "one"), tuple[int, str], id="tuple"),
    pytest.param(Pair(2, "two"), Pair, id="named-tuple"),
    pytest.param(Movie(title="Heat", year=1995), Movie, id="typed-dict"),
]


def assert_same(back: Any, value: Any) -> None:
    """``back`` equals ``value`` as :func:`same` has it (a list item by item)."""
    if isinstance(value, list):
        assert len(back) == len(value) and all(same(a, b) for a, b in zip(value, back, strict=True))
    else:
        assert same(back, value), f"{back!r} != {value!r}"
