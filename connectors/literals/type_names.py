"""Readable names for Flyte literal types and literals, for error messages."""

from __future__ import annotations

from flyteidl2.core.literals_pb2 import Literal
from flyteidl2.core.types_pb2 import BlobType, LiteralType

from connectors.literals.simple_types import Simple

__all__ = ["describe_literal", "describe_type"]

_SIMPLE_NAMES = {
    Simple.NONE: "none",
    Simple.INTEGER: "int",
    Simple.FLOAT: "float",
    Simple.STRING: "str",
    Simple.BOOLEAN: "bool",
    Simple.DATETIME: "datetime",
    Simple.DURATION: "timedelta",
    Simple.BINARY: "binary",
    Simple.ERROR: "error",
    Simple.STRUCT: "struct",
}


def describe_type(literal_type: LiteralType | None) -> str:
    """``list[int]``, ``dict[str, float]``, ``int | none``, ``enum{RED,GREEN}``, ``file(csv)``..."""
    if literal_type is None:
        return "inferred"
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        if literal_type.simple == Simple.STRUCT:
            title = _struct_title(literal_type)
            return f"struct {title}" if title else "struct"
        return _SIMPLE_NAMES.get(literal_type.simple, f"simple type {literal_type.simple}")
    if kind == "collection_type":
        return f"list[{describe_type(literal_type.collection_type)}]"
    if kind == "map_value_type":
        return f"dict[str, {describe_type(literal_type.map_value_type)}]"
    if kind == "union_type":
        if any(variant.structure.tag == "FlytePickle" for variant in literal_type.union_type.variants):
            return f"pickle of {_metadata_string(literal_type, 'python_class_name') or 'a Python object'}"
        return " | ".join(describe_type(variant) for variant in literal_type.union_type.variants)
    if kind == "enum_type":
        return "enum{" + ",".join(literal_type.enum_type.values) + "}"
    if kind == "blob":
        noun = "directory" if literal_type.blob.dimensionality == BlobType.MULTIPART else "file"
        return f"{noun}({literal_type.blob.format})" if literal_type.blob.format else noun
    if kind == "structured_dataset_type":
        fmt = literal_type.structured_dataset_type.format
        return f"dataframe({fmt})" if fmt else "dataframe"
    if kind == "schema":
        return "schema"
    return "unknown type"


def describe_literal(literal: Literal) -> str:
    """What a literal holds, in a few words: ``a str literal``, ``a collection``, ``a msgpack binary``..."""
    kind = literal.WhichOneof("value")
    if kind != "scalar":
        return _LITERAL_WORDS.get(kind, "an empty literal")
    scalar_kind = literal.scalar.WhichOneof("value")
    if scalar_kind == "primitive":
        return _PRIMITIVE_WORDS.get(literal.scalar.primitive.WhichOneof("value"), "an empty primitive")
    if scalar_kind == "binary":
        tag = literal.scalar.binary.tag
        return f"a {tag} binary" if tag else "an untagged binary (pickle?)"
    if scalar_kind in _SCALAR_WORDS:
        return _SCALAR_WORDS[scalar_kind]
    return f"a {scalar_kind} literal" if scalar_kind else "an empty scalar"


# The words for a literal by its kind, a scalar's kind and a primitive's kind (their "value" oneofs).
_LITERAL_WORDS = {
    "collection": "a collection literal",
    "map": "a map literal",
    "offloaded_metadata": "an offloaded literal",
}
_SCALAR_WORDS = {
    "none_type": "a none literal",
    "structured_dataset": "a dataframe literal",
    "generic": "a struct literal",
}
_PRIMITIVE_WORDS = {
    "integer": "an int literal",
    "float_value": "a float literal",
    "string_value": "a str literal",
    "boolean": "a bool literal",
    "datetime": "a datetime literal",
    "duration": "a timedelta literal",
}


def _struct_title(literal_type: LiteralType) -> str:
    return _metadata_string(literal_type, "title")


def _metadata_string(literal_type: LiteralType, key: str) -> str:
    if literal_type.HasField("metadata"):
        value = literal_type.metadata.fields.get(key)
        if value is not None and value.WhichOneof("kind") == "string_value":
            return value.string_value
    return ""
