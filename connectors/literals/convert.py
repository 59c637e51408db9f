"""One literal to one native value and back, guided by a literal type (or inferring one).

The dispatch on the kind of literal type lives here, with the containers (lists, maps and
unions) that recurse through it; each leaf kind has a module of its own.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Mapping
from typing import Any

from flyteidl2.core.literals_pb2 import Literal, LiteralCollection, LiteralMap
from flyteidl2.core.types_pb2 import EnumType, LiteralType

from connectors.literals import enums, references, scalars, structs, unions
from connectors.literals.errors import LiteralConversionError
from connectors.literals.references import DataFrameRef, DirRef, FileRef
from connectors.literals.simple_types import Simple
from connectors.literals.struct_schema import DATACLASS, PYDANTIC, SchemaMismatch, plain_data
from connectors.literals.type_names import describe_literal, describe_type

__all__ = ["literal_to_native", "native_to_literal"]


def literal_to_native(literal: Literal, literal_type: LiteralType | None, where: str) -> Any:
    """The native value of ``literal``, checked against ``literal_type`` (None: take it as it is)."""
    if literal.HasField("offloaded_metadata"):
        raise _refused(where, literal_type, "the literal is offloaded to blob storage, which is not supported")
    if literal_type is None:
        return _infer_native(literal, where)
    return _by_kind(_TO_NATIVE, literal, literal_type, where, "it does not match the declared type")


def native_to_literal(value: Any, literal_type: LiteralType | None, where: str) -> Literal:
    """The literal of ``value``, checked against ``literal_type`` (None: infer the type)."""
    value = references.flyte_io_to_ref(value)
    if literal_type is None:
        return _infer_literal(value, where)
    return _by_kind(_TO_LITERAL, value, literal_type, where, "it does not fit the declared type")


def _by_kind(
    converters: Mapping[str, Callable[[Any, LiteralType, str], Any]],
    subject: Any,
    literal_type: LiteralType,
    where: str,
    misfit: str,
) -> Any:
    """``subject`` converted by the converter for the kind of ``literal_type``. A ``TypeError``
    (``misfit`` says which way) or a struct's schema mismatch is refused, saying where."""
    convert = converters.get(literal_type.WhichOneof("type"))
    if convert is None:
        raise _refused(where, literal_type, "this type is not supported")
    try:
        return convert(subject, literal_type, where)
    except SchemaMismatch as mismatch:
        raise LiteralConversionError(f"{where}{mismatch.at}", describe_type(literal_type), mismatch.problem) from None
    except TypeError as err:
        raise _refused(where, literal_type, f"{err}; {misfit}") from None


# -- lists and maps ------------------------------------------------------------------------------


def _collection_to_native(literal: Literal, literal_type: LiteralType, where: str) -> list:
    if not literal.HasField("collection"):
        return _msgpack_passed_on(literal, list)
    item_type = literal_type.collection_type
    if item_type.WhichOneof("type") == "simple":
        fast = scalars.read_primitive_list(literal.collection.literals, item_type.simple)
        if fast is not None:
            return fast
    return [
        literal_to_native(item, item_type, f"{where}[{index}]")
        for index, item in enumerate(literal.collection.literals)
    ]


def _collection_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(f"got a {type(value).__name__}, not a list")
    item_type = literal_type.collection_type
    if item_type.WhichOneof("type") == "simple":
        collection = LiteralCollection()
        if scalars.write_primitive_list(value, item_type.simple, collection):
            return Literal(collection=collection)
    return Literal(
        collection=LiteralCollection(
            literals=[native_to_literal(item, item_type, f"{where}[{index}]") for index, item in enumerate(value)]
        )
    )


def _map_to_native(literal: Literal, literal_type: LiteralType, where: str) -> dict:
    if not literal.HasField("map"):
        return _msgpack_passed_on(literal, dict)
    value_type = literal_type.map_value_type
    return {key: literal_to_native(item, value_type, f"{where}[{key!r}]") for key, item in literal.map.literals.items()}


def _map_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    if not isinstance(value, Mapping):
        raise TypeError(f"got a {type(value).__name__}, not a dict")
    value_type = literal_type.map_value_type
    return Literal(map=_literal_map(value, lambda item, at: native_to_literal(item, value_type, at), where))


# -- simple types: primitives, none, structs ---------------------------------------------------


def _simple_to_native(literal: Literal, literal_type: LiteralType, where: str) -> Any:
    simple = literal_type.simple
    scalar_kind = _scalar_kind(literal)
    if simple == Simple.NONE:
        if scalar_kind != "none_type":
            raise TypeError(f"got {describe_literal(literal)}")
        return None
    if simple in scalars.PRIMITIVE_SIMPLE_TYPES:
        if scalar_kind == "binary":
            return scalars.from_msgpack_value(structs.msgpack_to_native(literal.scalar.binary), simple)
        if scalar_kind != "primitive":
            raise TypeError(f"got {describe_literal(literal)}")
        try:
            return scalars.primitive_to_native(literal.scalar.primitive, simple)
        except TypeError:
            raise TypeError(f"got {describe_literal(literal)}") from None
    if simple == Simple.STRUCT:
        return structs.struct_to_native(literal, literal_type)
    raise _refused(where, literal_type, "this type is not supported")


def _simple_to_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    simple = literal_type.simple
    if simple == Simple.NONE:
        if value is not None:
            raise TypeError(f"got a {type(value).__name__}, not None")
        return scalars.literal_of_none()
    if simple in scalars.PRIMITIVE_SIMPLE_TYPES:
        return scalars.native_to_primitive(value, simple)
    if simple == Simple.STRUCT:
        return structs.struct_literal(value, literal_type)
    raise _refused(where, literal_type, "this type is not supported")


# -- unions, blobs, enums, dataframes ------------------------------------------------------------


def _union_to_native(literal: Literal, literal_type: LiteralType, where: str) -> Any:
    if unions.is_pickle_type(literal_type):
        raise _refused(where, literal_type, _PICKLE_PROBLEM)
    variants = list(literal_type.union_type.variants)
    if _scalar_kind(literal) == "union":
        variant = unions.stored_variant(literal.scalar.union.type, variants)
        if variant is not None:
            return literal_to_native(literal.scalar.union.value, variant, where)
        literal = literal.scalar.union.value
    for variant in variants:  # no (matching) stored type: the first variant the value reads as
        try:
            return literal_to_native(literal, variant, where)
        except LiteralConversionError:
            continue
    raise TypeError(f"got {describe_literal(literal)}, which is none of the variants")


def _union_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    if unions.is_pickle_type(literal_type):
        raise _refused(where, literal_type, _PICKLE_PROBLEM)
    variants = list(literal_type.union_type.variants)
    fitting = unions.first_fitting_variant(
        value, variants, lambda item, variant: native_to_literal(item, variant, where)
    )
    if fitting is None:
        raise TypeError(f"got a {type(value).__name__}, which fits none of the variants")
    return unions.union_literal(*fitting)


def _blob_to_native(literal: Literal, literal_type: LiteralType, where: str) -> FileRef | DirRef:
    if literal_type.blob.format == references.PICKLE_FORMAT:
        raise TypeError(_PICKLE_PROBLEM)
    scalar_kind = _scalar_kind(literal)
    if scalar_kind == "binary":  # a File or Dir field of a dataclass, passed on by itself
        data = _msgpack_passed_on(literal, dict)
        if not isinstance(data.get("path"), str):
            raise TypeError("the msgpack binary holds no path")
        ref_class = references.ref_class(literal_type.blob.dimensionality)
        return ref_class(uri=data["path"], format=data.get("format") or "", hash=data.get("hash"))
    if scalar_kind != "blob":
        raise TypeError(f"got {describe_literal(literal)}")
    return references.blob_to_ref(literal, literal_type.blob.dimensionality)


def _blob_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    if literal_type.blob.format == references.PICKLE_FORMAT:
        raise TypeError(_PICKLE_PROBLEM)
    wanted = references.ref_class(literal_type.blob.dimensionality)
    if not isinstance(value, wanted):
        raise TypeError(f"got a {type(value).__name__}, not a {wanted.__name__}")
    return references.blob_literal(value)


def _enum_to_native(literal: Literal, literal_type: LiteralType, where: str) -> str:
    if _is_binary(literal):
        return _msgpack_passed_on(literal, str)
    return enums.enum_to_native(literal, literal_type.enum_type)


def _enum_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    return enums.enum_literal(value, literal_type.enum_type)


def _dataframe_to_native(literal: Literal, literal_type: LiteralType, where: str) -> DataFrameRef:
    if _scalar_kind(literal) != "structured_dataset":
        raise TypeError(f"got {describe_literal(literal)}")
    return references.dataframe_to_ref(literal)


def _dataframe_literal(value: Any, literal_type: LiteralType, where: str) -> Literal:
    if not isinstance(value, DataFrameRef):
        raise TypeError(f"got a {type(value).__name__}, not a DataFrameRef")
    return references.dataframe_literal(value, literal_type.structured_dataset_type)


_PICKLE_PROBLEM = "the flyte SDK pickles this Python type, and a pickle cannot be read here; use a type flyte knows"

# The converters by the kind of literal type (its "type" oneof); any other kind is not supported.
_TO_NATIVE = {
    "simple": _simple_to_native,
    "collection_type": _collection_to_native,
    "map_value_type": _map_to_native,
    "union_type": _union_to_native,
    "enum_type": _enum_to_native,
    "blob": _blob_to_native,
    "structured_dataset_type": _dataframe_to_native,
}
_TO_LITERAL = {
    "simple": _simple_to_literal,
    "collection_type": _collection_literal,
    "map_value_type": _map_literal,
    "union_type": _union_literal,
    "enum_type": _enum_literal,
    "blob": _blob_literal,
    "structured_dataset_type": _dataframe_literal,
}


# -- inference ------------------------------------------------------------------------------------


def _infer_native(literal: Literal, where: str) -> Any:
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return [_infer_native(item, f"{where}[{index}]") for index, item in enumerate(literal.collection.literals)]
    if kind == "map":
        return {key: _infer_native(item, f"{where}[{key!r}]") for key, item in literal.map.literals.items()}
    if kind == "offloaded_metadata":
        raise _refused(where, None, "the literal is offloaded to blob storage, which is not supported")
    scalar_kind = _scalar_kind(literal)
    try:
        if scalar_kind == "none_type":
            return None
        if scalar_kind == "primitive":
            return scalars.primitive_to_native(literal.scalar.primitive, None)
        if scalar_kind in ("binary", "generic"):
            return structs.struct_to_native(literal, None)
        if scalar_kind == "blob":
            return references.blob_to_ref(literal, None)
        if scalar_kind == "structured_dataset":
            return references.dataframe_to_ref(literal)
        if scalar_kind == "union":
            return literal_to_native(literal.scalar.union.value, literal.scalar.union.type, where)
    except TypeError as err:
        raise _refused(where, None, str(err)) from None
    raise _refused(where, None, f"{describe_literal(literal)} cannot be read")


def _infer_literal(value: Any, where: str) -> Literal:
    value = references.flyte_io_to_ref(value)
    if value is None:
        return scalars.literal_of_none()
    if isinstance(value, enum.Enum):
        return enums.enum_literal(value, _enum_type_of(value))
    if scalars.infer_simple_type(value) is not None:
        return scalars.native_to_primitive(value, None)
    if isinstance(value, datetime.date):
        return scalars.native_to_primitive(value, Simple.DATETIME)
    if isinstance(value, (FileRef, DirRef)):
        return references.blob_literal(value)
    if isinstance(value, DataFrameRef):
        return references.dataframe_literal(value, None)
    if isinstance(value, Mapping):
        if all(isinstance(key, str) for key in value):
            return Literal(map=_literal_map(value, _infer_literal, where))
        return _plain_msgpack(value, DATACLASS, where)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return Literal(
            collection=LiteralCollection(
                literals=[_infer_literal(item, f"{where}[{index}]") for index, item in enumerate(value)]
            )
        )
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return _plain_msgpack(value, PYDANTIC, where)
    if (hasattr(value, "__dataclass_fields__") and not isinstance(value, type)) or hasattr(value, "_asdict"):
        return _plain_msgpack(value, DATACLASS, where)
    raise _refused(where, None, f"cannot infer a Flyte type for a {type(value).__name__}")


def _plain_msgpack(value: Any, flavor: str, where: str) -> Literal:
    try:
        return structs.msgpack_literal(plain_data(value, flavor))
    except SchemaMismatch as mismatch:
        raise LiteralConversionError(f"{where}{mismatch.at}", "inferred", mismatch.problem) from None
    except TypeError as err:
        raise _refused(where, None, str(err)) from None


def _enum_type_of(value: enum.Enum) -> EnumType:
    return EnumType(values=[member.name for member in type(value)])


# -- helpers ----------------------------------------------------------------------------------------


def _scalar_kind(literal: Literal) -> str | None:
    return literal.scalar.WhichOneof("value") if literal.HasField("scalar") else None


def _is_binary(literal: Literal) -> bool:
    return _scalar_kind(literal) == "binary"


def _msgpack_passed_on(literal: Literal, expected: type) -> Any:
    """A value the SDK sent as msgpack rather than its own literal (``dc.field`` passed on)."""
    if not _is_binary(literal):
        raise TypeError(f"got {describe_literal(literal)}")
    value = structs.msgpack_to_native(literal.scalar.binary)
    if not isinstance(value, expected):
        raise TypeError(f"the msgpack binary holds a {type(value).__name__}")
    return value


def _literal_map(value: Mapping, convert, where: str) -> LiteralMap:
    literals = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"map keys must be str, got a {type(key).__name__} key")
        literals[key] = convert(item, f"{where}[{key!r}]")
    return LiteralMap(literals=literals)


def _refused(where: str, literal_type: LiteralType | None, problem: str) -> LiteralConversionError:
    return LiteralConversionError(where, describe_type(literal_type), problem)
