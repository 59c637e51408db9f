"""Primitives and none: int, float, str, bool, datetime, timedelta and None.

What a connector receives, the way the flyte SDK reads the same literal:
int -> ``int``, float -> ``float`` (an integer literal is accepted for a float), str -> ``str``,
bool -> ``bool``, datetime -> a timezone-aware ``datetime`` in UTC, duration -> ``timedelta``,
none -> ``None``. On the way out, an ``int`` fits a float type (not a ``bool``: it is no number
here), a naive ``datetime`` is taken as UTC, a ``date`` as its midnight.
"""

from __future__ import annotations

import datetime
import numbers
from typing import Any

from flyteidl2.core.literals_pb2 import Literal, LiteralCollection, Primitive, Scalar, Void
from flyteidl2.core.types_pb2 import SimpleType

from connectors.literals.simple_types import Simple

__all__ = [
    "PRIMITIVE_SIMPLE_TYPES",
    "from_msgpack_value",
    "literal_of_none",
    "native_to_primitive",
    "primitive_to_native",
    "read_primitive_list",
    "write_primitive_list",
]

PRIMITIVE_SIMPLE_TYPES = frozenset(
    {
        Simple.INTEGER,
        Simple.FLOAT,
        Simple.STRING,
        Simple.BOOLEAN,
        Simple.DATETIME,
        Simple.DURATION,
    }
)

_UTC = datetime.UTC
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def literal_of_none() -> Literal:
    return Literal(scalar=Scalar(none_type=Void()))


def primitive_to_native(primitive: Primitive, simple: SimpleType.ValueType | None) -> Any:
    """The native value of a primitive; ``simple`` is the declared type, None to take it as it is.

    Raises ``TypeError`` (with a short problem description) when the primitive does not fit.
    """
    kind = primitive.WhichOneof("value")
    if simple is None:
        if kind is None:
            raise TypeError("the primitive holds no value")
        return _read_primitive(primitive, kind)
    if simple == Simple.FLOAT and kind == "integer":
        return float(primitive.integer)
    if _PRIMITIVE_FIELD.get(simple) != kind:
        raise TypeError("the literal holds another primitive")
    return _read_primitive(primitive, kind)


def _read_primitive(primitive: Primitive, kind: str) -> Any:
    if kind == "datetime":
        return primitive.datetime.ToDatetime(tzinfo=_UTC)
    if kind == "duration":
        return primitive.duration.ToTimedelta()
    return getattr(primitive, kind)


_PRIMITIVE_FIELD = {
    Simple.INTEGER: "integer",
    Simple.FLOAT: "float_value",
    Simple.STRING: "string_value",
    Simple.BOOLEAN: "boolean",
    Simple.DATETIME: "datetime",
    Simple.DURATION: "duration",
}


def native_to_primitive(value: Any, simple: SimpleType.ValueType | None) -> Literal:
    """The literal of a native primitive; ``simple`` is the declared type, None to infer it.

    Raises ``TypeError`` (with a short problem description) when the value does not fit.
    """
    if simple is None:
        simple = infer_simple_type(value)
        if simple is None:
            raise TypeError(f"a {type(value).__name__} is not a primitive")
    if simple == Simple.INTEGER:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(_wrong(value))
        integer = int(value)
        if not _INT64_MIN <= integer <= _INT64_MAX:
            raise TypeError(f"{value} does not fit in 64 bits")
        return Literal(scalar=Scalar(primitive=Primitive(integer=integer)))
    if simple == Simple.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real)):
            raise TypeError(_wrong(value))
        return Literal(scalar=Scalar(primitive=Primitive(float_value=float(value))))
    if simple == Simple.STRING:
        if not isinstance(value, str):
            raise TypeError(_wrong(value))
        return Literal(scalar=Scalar(primitive=Primitive(string_value=value)))
    if simple == Simple.BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(_wrong(value))
        return Literal(scalar=Scalar(primitive=Primitive(boolean=value)))
    if simple == Simple.DATETIME:
        if isinstance(value, datetime.datetime):
            moment = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
        elif isinstance(value, datetime.date):
            moment = datetime.datetime.combine(value, datetime.time.min, tzinfo=_UTC)
        else:
            raise TypeError(_wrong(value))
        primitive = Primitive()
        primitive.datetime.FromDatetime(moment)
        return Literal(scalar=Scalar(primitive=primitive))
    if simple == Simple.DURATION:
        if not isinstance(value, datetime.timedelta):
            raise TypeError(_wrong(value))
        primitive = Primitive()
        primitive.duration.FromTimedelta(value)
        return Literal(scalar=Scalar(primitive=primitive))
    raise TypeError("not a primitive type")


def infer_simple_type(value: Any) -> SimpleType.ValueType | None:
    """The simple type the flyte SDK gives a Python value's type, or None if it is no primitive."""
    return next((simple for python_type, simple in _INFERRED_SIMPLE_TYPES if isinstance(value, python_type)), None)


# Python types and their simple types, in the order they are tried (a bool is an Integral too).
_INFERRED_SIMPLE_TYPES = (
    (bool, Simple.BOOLEAN),
    (numbers.Integral, Simple.INTEGER),
    (numbers.Real, Simple.FLOAT),
    (str, Simple.STRING),
    (datetime.datetime, Simple.DATETIME),
    (datetime.timedelta, Simple.DURATION),
)


def from_msgpack_value(value: Any, simple: SimpleType.ValueType) -> Any:
    """A primitive the SDK sent as a msgpack binary (a dataclass attribute passed on, ``dc.a``).

    mashumaro writes a datetime as its ISO string and a timedelta as its seconds.
    """
    if simple == Simple.DATETIME and isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError as err:
            raise TypeError(f"{value!r} is not an ISO datetime") from err
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=_UTC)
    if simple == Simple.DURATION and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.timedelta(seconds=value)
    if simple == Simple.FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = {
        Simple.INTEGER: int,
        Simple.FLOAT: float,
        Simple.STRING: str,
        Simple.BOOLEAN: bool,
    }.get(simple)
    if expected is None or type(value) is not expected:
        raise TypeError(f"the msgpack binary holds a {type(value).__name__}")
    return value


def _wrong(value: Any) -> str:
    return f"got a {type(value).__name__}"


# -- fast paths for lists of one primitive type (a list of 1,000 ints is a common input) -------

_LIST_FIELDS = {
    Simple.INTEGER: ("integer", int),
    Simple.FLOAT: ("float_value", float),
    Simple.STRING: ("string_value", str),
    Simple.BOOLEAN: ("boolean", bool),
}


def read_primitive_list(literals, simple: int) -> list | None:
    """The values of literals that all hold the ``simple`` primitive; None if any does not.

    None sends the caller down the general path, which reads or refuses item by item.
    """
    spec = _LIST_FIELDS.get(simple)
    if spec is None:
        return None
    field = spec[0]
    values: list[Any] = []
    append = values.append
    for literal in literals:
        primitive = literal.scalar.primitive
        if primitive.WhichOneof("value") != field:
            return None
        append(getattr(primitive, field))
    return values


def write_primitive_list(values, simple: int, collection: LiteralCollection) -> bool:
    """Fill ``collection`` when every value is exactly the ``simple`` primitive's Python type.

    False (``collection`` untouched) sends the caller down the general path.
    """
    spec = _LIST_FIELDS.get(simple)
    if spec is None:
        return False
    field, python_type = spec
    for value in values:
        if type(value) is not python_type:
            return False
        if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:  # python_type is int
            return False
    add = collection.literals.add
    for value in values:
        setattr(add().scalar.primitive, field, value)
    return True
