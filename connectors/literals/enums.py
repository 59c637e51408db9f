"""Enums: a string literal with an EnumType listing the allowed strings.

The flyte SDK writes an ``enum.Enum`` member by its *name* (``Color.RED`` -> ``"RED"``, whatever
the member's value) and a ``typing.Literal["a", "b"]`` by the string itself. A connector
receives that string; it may return either the string or an ``enum.Enum`` member.
"""

from __future__ import annotations

import enum
from typing import Any

from flyteidl2.core.literals_pb2 import Literal, Primitive, Scalar
from flyteidl2.core.types_pb2 import EnumType

__all__ = ["enum_literal", "enum_to_native"]


def enum_to_native(literal: Literal, enum_type: EnumType) -> str:
    """The string of an enum literal. Raises ``TypeError`` unless it is one of the allowed values."""
    if not (literal.HasField("scalar") and literal.scalar.primitive.WhichOneof("value") == "string_value"):
        raise TypeError("the literal is no string")
    value = literal.scalar.primitive.string_value
    if value not in enum_type.values:
        raise TypeError(f"{value!r} is not one of {list(enum_type.values)}")
    return value


def enum_literal(value: Any, enum_type: EnumType) -> Literal:
    """The literal of a string or ``enum.Enum`` member. Raises ``TypeError`` unless it is allowed."""
    allowed = enum_type.values
    if isinstance(value, enum.Enum):
        if value.name in allowed:
            text = value.name
        elif isinstance(value.value, str) and value.value in allowed:
            text = value.value
        else:
            raise TypeError(f"{value!r} is not one of {list(allowed)}")
    elif isinstance(value, str):
        if value not in allowed:
            raise TypeError(f"{value!r} is not one of {list(allowed)}")
        text = value
    else:
        raise TypeError(f"got a {type(value).__name__}, not a str or an enum member")
    return Literal(scalar=Scalar(primitive=Primitive(string_value=str(text))))
