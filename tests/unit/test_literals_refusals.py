"""What ``connectors.literals`` refuses, checked against literals the flyte SDK (2.12.x) wrote.

An input whose literal does not match its declared type, a pickle, an offloaded literal, and an
output that does not fit its declared type are each refused with a
:class:`~connectors.literals.LiteralConversionError` that names where, the type and the problem.
"""

from typing import Any

import pytest
from flyte.io import DataFrame, Dir, File
from flyte.types import TypeEngine
from flyteidl2.core.interface_pb2 import TypedInterface
from flyteidl2.core.literals_pb2 import Literal, LiteralOffloadedMetadata
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral

from connectors.literals import DataFrameRef, FileRef, LiteralConversionError, inputs_to_native, native_to_outputs
from tests.literal_cases import DIR, FILE, FRAME, Address, Color, Point, Priority, declared, sdk_literal


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
        (True, bool, int | None, "int | none"),
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
        (1.5, int | str, "output 'o'", "none of the variants"),
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
    with pytest.raises(LiteralConversionError, match=r"output 'o'.*object"):
        native_to_outputs({"o": object()}, None)
