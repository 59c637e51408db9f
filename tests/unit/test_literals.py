"""Unit tests for connectors.literals: primitives, None, lists and maps, both directions."""

from __future__ import annotations

import datetime

import pytest
from flyteidl2.core.interface_pb2 import TypedInterface, Variable, VariableEntry, VariableMap
from flyteidl2.core.literals_pb2 import Literal, LiteralCollection, LiteralMap, Primitive, Scalar, Void
from flyteidl2.core.types_pb2 import LiteralType, SimpleType
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral

from connectors.literals import DirRef, FileRef, LiteralConversionError, inputs_to_native, native_to_outputs

INT = LiteralType(simple=SimpleType.INTEGER)
FLOAT = LiteralType(simple=SimpleType.FLOAT)
STR = LiteralType(simple=SimpleType.STRING)
BOOL = LiteralType(simple=SimpleType.BOOLEAN)
NONE = LiteralType(simple=SimpleType.NONE)
DATETIME = LiteralType(simple=SimpleType.DATETIME)
DURATION = LiteralType(simple=SimpleType.DURATION)


def list_of(item: LiteralType) -> LiteralType:
    return LiteralType(collection_type=item)


def map_of(value: LiteralType) -> LiteralType:
    return LiteralType(map_value_type=value)


def variables(**types: LiteralType) -> VariableMap:
    return VariableMap(variables=[VariableEntry(key=name, value=Variable(type=t)) for name, t in types.items()])


def interface(**types: LiteralType) -> TypedInterface:
    return TypedInterface(inputs=variables(**types))


def inputs(**literals: Literal) -> Inputs:
    return Inputs(literals=[NamedLiteral(name=name, value=lit) for name, lit in literals.items()])


def prim(**kwargs) -> Literal:
    return Literal(scalar=Scalar(primitive=Primitive(**kwargs)))


def none() -> Literal:
    return Literal(scalar=Scalar(none_type=Void()))


def round_trip(value, literal_type: LiteralType):
    """native -> outputs -> (the same literals read as inputs) -> native."""
    outputs = native_to_outputs({"v": value}, variables(v=literal_type))
    back = inputs_to_native(Inputs(literals=list(outputs.literals)), interface(v=literal_type))
    return outputs.literals[0].value, back["v"]


@pytest.mark.parametrize(
    ("value", "literal_type"),
    [
        (0, INT),
        (-(2**63), INT),
        (2**63 - 1, INT),
        (1.5, FLOAT),
        (float("inf"), FLOAT),
        ("", STR),
        ("héllo\n", STR),
        (True, BOOL),
        (False, BOOL),
        (None, NONE),
        ([], list_of(INT)),
        ([1, 2, 3], list_of(INT)),
        ([[1.0], [], [2.5, 3.0]], list_of(list_of(FLOAT))),
        ({}, map_of(STR)),
        ({"a": 1, "b": 2}, map_of(INT)),
        ({"a": [True], "b": []}, map_of(list_of(BOOL))),
        ([{"x": {"y": "z"}}], list_of(map_of(map_of(STR)))),
        (datetime.datetime(2024, 2, 29, 12, 30, 1, 123456, tzinfo=datetime.UTC), DATETIME),
        (datetime.timedelta(days=2, microseconds=7), DURATION),
    ],
)
def test_declared_values_round_trip(value, literal_type):
    _, back = round_trip(value, literal_type)
    assert back == value
    assert type(back) is type(value)


def test_literals_have_the_shape_the_sdk_writes():
    literal, _ = round_trip([1, 2], list_of(INT))
    assert literal == Literal(collection=LiteralCollection(literals=[prim(integer=1), prim(integer=2)]))
    literal, _ = round_trip({"k": "v"}, map_of(STR))
    assert literal == Literal(map=LiteralMap(literals={"k": prim(string_value="v")}))
    literal, _ = round_trip(None, NONE)
    assert literal == none()


def test_an_int_fits_a_float_both_ways():
    outputs = native_to_outputs({"f": 3}, variables(f=FLOAT))
    assert outputs.literals[0].value == prim(float_value=3.0)
    native = inputs_to_native(inputs(f=prim(integer=3)), interface(f=FLOAT))
    assert native == {"f": 3.0} and type(native["f"]) is float


def test_naive_datetime_is_taken_as_utc():
    naive = datetime.datetime(2024, 1, 1, 8, 0, 0)
    _, back = round_trip(naive, DATETIME)
    assert back == naive.replace(tzinfo=datetime.UTC)


def test_aware_datetime_is_read_back_in_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2024, 1, 1, 8, 0, 0, tzinfo=plus_two)
    _, back = round_trip(moment, DATETIME)
    assert back == moment and back.tzinfo == datetime.UTC


def test_undeclared_inputs_are_read_as_what_they_hold():
    native = inputs_to_native(
        inputs(
            n=prim(integer=4),
            s=prim(string_value="x"),
            b=prim(boolean=False),
            f=prim(float_value=0.25),
            z=none(),
            xs=Literal(collection=LiteralCollection(literals=[prim(integer=1), prim(string_value="two")])),
            m=Literal(map=LiteralMap(literals={"a": none()})),
        ),
        TypedInterface(),
    )
    assert native == {"n": 4, "s": "x", "b": False, "f": 0.25, "z": None, "xs": [1, "two"], "m": {"a": None}}


def test_undeclared_outputs_are_inferred_and_follow_the_declared_ones():
    outputs = native_to_outputs({"extra": [1, "a", None], "o": 1.0, "flag": True}, variables(o=FLOAT))
    assert [named.name for named in outputs.literals] == ["o", "extra", "flag"]
    by_name = {named.name: named.value for named in outputs.literals}
    assert by_name["extra"] == Literal(
        collection=LiteralCollection(literals=[prim(integer=1), prim(string_value="a"), none()])
    )
    assert by_name["flag"] == prim(boolean=True)


def test_outputs_keep_the_declared_order():
    outputs = native_to_outputs({"b": 2, "a": 1, "c": 3}, variables(c=INT, a=INT, b=INT))
    assert [named.name for named in outputs.literals] == ["c", "a", "b"]


def test_no_declared_variables_at_all():
    outputs = native_to_outputs({"x": {"k": [2]}}, None)
    assert outputs.literals[0].value == Literal(
        map=LiteralMap(literals={"k": Literal(collection=LiteralCollection(literals=[prim(integer=2)]))})
    )


@pytest.mark.parametrize(
    ("literal", "literal_type", "type_name"),
    [
        (prim(string_value="1"), INT, "int"),
        (prim(float_value=1.0), INT, "int"),
        (prim(integer=1), BOOL, "bool"),
        (none(), STR, "str"),
        (prim(integer=1), NONE, "none"),
        (prim(integer=1), list_of(INT), "list[int]"),
        (Literal(collection=LiteralCollection(literals=[prim(integer=1)])), map_of(INT), "dict[str, int]"),
    ],
)
def test_mismatched_input_is_refused_naming_input_and_type(literal, literal_type, type_name):
    with pytest.raises(LiteralConversionError) as caught:
        inputs_to_native(inputs(x=literal), interface(x=literal_type))
    assert caught.value.where == "input 'x'"
    assert caught.value.type_name == type_name
    assert "input 'x'" in str(caught.value) and type_name in str(caught.value)


def test_a_mismatch_deep_inside_names_the_position():
    bad = Literal(
        map=LiteralMap(
            literals={"k": Literal(collection=LiteralCollection(literals=[prim(integer=1), prim(string_value="no")]))}
        )
    )
    with pytest.raises(LiteralConversionError) as caught:
        inputs_to_native(inputs(x=bad), interface(x=map_of(list_of(INT))))
    assert caught.value.where == "input 'x'['k'][1]"
    assert caught.value.type_name == "int"


@pytest.mark.parametrize(
    ("value", "literal_type", "type_name"),
    [
        ("1", INT, "int"),
        (True, INT, "int"),
        (1.5, INT, "int"),
        (True, FLOAT, "float"),
        (1, STR, "str"),
        (1, BOOL, "bool"),
        (0, NONE, "none"),
        ("abc", list_of(STR), "list[str]"),
        ({"a": 1}, list_of(STR), "list[str]"),
        ([1], map_of(INT), "dict[str, int]"),
        ({1: 1}, map_of(INT), "dict[str, int]"),
        (datetime.date(2024, 1, 1).isoformat(), DATETIME, "datetime"),
        (5, DURATION, "timedelta"),
        (2**63, INT, "int"),
    ],
)
def test_unfitting_output_is_refused_naming_output_and_type(value, literal_type, type_name):
    with pytest.raises(LiteralConversionError) as caught:
        native_to_outputs({"out": value}, variables(out=literal_type))
    assert caught.value.where == "output 'out'"
    assert caught.value.type_name == type_name


def test_an_uninferable_output_is_refused():
    with pytest.raises(LiteralConversionError) as caught:
        native_to_outputs({"o": object()}, None)
    assert caught.value.where == "output 'o'"
    assert "object" in caught.value.problem
    assert isinstance(caught.value, ValueError)


def test_the_runtime_does_not_import_the_flyte_sdk():
    import subprocess
    import sys

    probe = (
        "import sys, connectors.literals; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('flyte', 'pydantic', 'mashumaro', 'fsspec')); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_undeclared_dict_too_big_for_msgpack_is_refused():
    with pytest.raises(LiteralConversionError) as caught:
        native_to_outputs({"o": {1: 2**70}}, None)
    assert caught.value.where == "output 'o'" and "msgpack" in caught.value.problem


def test_file_and_dir_refs_are_distinct_types_with_the_same_fields():
    file, directory = FileRef("s3://b/d/", "csv", "h"), DirRef("s3://b/d/", "csv", "h")
    assert file != directory and not isinstance(file, DirRef) and not isinstance(directory, FileRef)
    assert (file.path, file.name) == (directory.path, directory.name) == ("s3://b/d/", "d")
    assert repr(directory) == "DirRef(uri='s3://b/d/', format='csv', hash='h')"
