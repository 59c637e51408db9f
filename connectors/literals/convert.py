"""One literal to one native value and back, guided by a literal type (or inferring one).

The dispatch on the kind of literal type lives here, with the containers (lists and maps) that
recurse through it; each leaf kind has a module of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl2.core.literals_pb2 import Literal, LiteralCollection, LiteralMap
from flyteidl2.core.types_pb2 import LiteralType, SimpleType

from connectors.literals import scalars
from connectors.literals.errors import LiteralConversionError
from connectors.literals.type_names import describe_literal, describe_type

__all__ = ["literal_to_native", "native_to_literal"]


def literal_to_native(literal: Literal, literal_type: LiteralType | None, where: str) -> Any:
    """The native value of ``literal``, checked against ``literal_type`` (None: take it as it is)."""
    if literal.HasField("offloaded_metadata"):
        raise LiteralConversionError(
            where, describe_type(literal_type), "the literal is offloaded to blob storage; not supported"
        )
    if literal_type is None:
        return _infer_native(literal, where)
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return _simple_to_native(literal, literal_type, where)
    if kind == "collection_type":
        if not literal.HasField("collection"):
            raise _mismatch(literal, literal_type, where)
        item_type = literal_type.collection_type
        return [
            literal_to_native(item, item_type, f"{where}[{index}]")
            for index, item in enumerate(literal.collection.literals)
        ]
    if kind == "map_value_type":
        if not literal.HasField("map"):
            raise _mismatch(literal, literal_type, where)
        value_type = literal_type.map_value_type
        return {
            key: literal_to_native(item, value_type, f"{where}[{key!r}]")
            for key, item in literal.map.literals.items()
        }
    raise LiteralConversionError(where, describe_type(literal_type), "this type is not supported")


def native_to_literal(value: Any, literal_type: LiteralType | None, where: str) -> Literal:
    """The literal of ``value``, checked against ``literal_type`` (None: infer the type)."""
    if literal_type is None:
        return _infer_literal(value, where)
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return _simple_to_literal(value, literal_type, where)
    if kind == "collection_type":
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise _not_fitting(value, literal_type, where)
        item_type = literal_type.collection_type
        return Literal(
            collection=LiteralCollection(
                literals=[
                    native_to_literal(item, item_type, f"{where}[{index}]") for index, item in enumerate(value)
                ]
            )
        )
    if kind == "map_value_type":
        if not isinstance(value, Mapping):
            raise _not_fitting(value, literal_type, where)
        value_type = literal_type.map_value_type
        return Literal(map=_literal_map(value, lambda item, at: native_to_literal(item, value_type, at), where, literal_type))
    raise LiteralConversionError(where, describe_type(literal_type), "this type is not supported")


# -- simple types -----------------------------------------------------------------------------


def _simple_to_native(literal: Literal, literal_type: LiteralType, where: str) -> Any:
    simple = literal_type.simple
    scalar = literal.scalar if literal.HasField("scalar") else None
    if simple == SimpleType.NONE:
        if scalar is None or not scalar.HasField("none_type"):
            raise _mismatch(literal, literal_type, where)
        return None
    if simple in scalars.PRIMITIVE_SIMPLE_TYPES:
        if scalar is None or not scalar.HasField("primitive"):
            raise _mismatch(literal, literal_type, where)
        try:
            return scalars.primitive_to_native(scalar.primitive, simple)
        except TypeError:
            raise _mismatch(literal, literal_type, where) from None
    raise LiteralConversionError(where, describe_type(literal_type), "this type is not supported")


def _simple_to_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    simple = literal_type.simple
    if simple == SimpleType.NONE:
        if value is not None:
            raise _not_fitting(value, literal_type, where)
        return scalars.literal_of_none()
    if simple in scalars.PRIMITIVE_SIMPLE_TYPES:
        try:
            return scalars.native_to_primitive(value, simple)
        except TypeError:
            raise _not_fitting(value, literal_type, where) from None
    raise LiteralConversionError(where, describe_type(literal_type), "this type is not supported")


# -- inference --------------------------------------------------------------------------------


def _infer_native(literal: Literal, where: str) -> Any:
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return [_infer_native(item, f"{where}[{index}]") for index, item in enumerate(literal.collection.literals)]
    if kind == "map":
        return {key: _infer_native(item, f"{where}[{key!r}]") for key, item in literal.map.literals.items()}
    if kind == "scalar":
        scalar = literal.scalar
        scalar_kind = scalar.WhichOneof("value")
        if scalar_kind == "none_type":
            return None
        if scalar_kind == "primitive":
            try:
                return scalars.primitive_to_native(scalar.primitive, None)
            except TypeError as err:
                raise LiteralConversionError(where, "inferred", str(err)) from None
    raise LiteralConversionError(where, "inferred", f"cannot read {describe_literal(literal)} without a declared type")


def _infer_literal(value: Any, where: str) -> Literal:
    if value is None:
        return scalars.literal_of_none()
    if scalars.infer_simple_type(value) is not None:
        return scalars.native_to_primitive(value, None)
    if isinstance(value, Mapping):
        return Literal(map=_literal_map(value, _infer_literal, where, None))
    if isinstance(value, (list, tuple)):
        return Literal(
            collection=LiteralCollection(
                literals=[_infer_literal(item, f"{where}[{index}]") for index, item in enumerate(value)]
            )
        )
    raise LiteralConversionError(where, "inferred", f"cannot infer a Flyte type for a {type(value).__name__}")


# -- helpers ----------------------------------------------------------------------------------


def _literal_map(value: Mapping, convert, where: str, literal_type: LiteralType | None) -> LiteralMap:
    literals = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise LiteralConversionError(
                where, describe_type(literal_type), f"map keys must be str, got a {type(key).__name__} key"
            )
        literals[key] = convert(item, f"{where}[{key!r}]")
    return LiteralMap(literals=literals)


def _mismatch(literal: Literal, literal_type: LiteralType, where: str) -> LiteralConversionError:
    return LiteralConversionError(
        where, describe_type(literal_type), f"got {describe_literal(literal)}, which does not match the declared type"
    )


def _not_fitting(value: Any, literal_type: LiteralType, where: str) -> LiteralConversionError:
    return LiteralConversionError(
        where, describe_type(literal_type), f"got a {type(value).__name__}, which does not fit the declared type"
    )
