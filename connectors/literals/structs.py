"""Struct types: dataclasses, pydantic models, untyped dicts and protobuf messages.

The flyte SDK v2 writes a dataclass, a pydantic model (and the tuples, named tuples and typed
dicts it wraps in one) and an untyped ``dict`` as a Binary literal: msgpack bytes tagged
``"msgpack"``, under a STRUCT literal type whose metadata is the JSON schema and whose
``structure.tag`` names the transformer. A protobuf message (STRUCT with ``pb_type`` metadata)
and a console-typed value arrive as a ``google.protobuf.Struct`` (``generic``) instead.

A connector receives the decoded plain data (a dict, its datetimes as ISO strings, as the SDK
wrote them) and returns plain data, which is fitted to the declared schema and written back the
same way (see :mod:`connectors.literals.struct_schema`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgpack
from flyteidl2.core.literals_pb2 import Binary, Literal, Scalar
from flyteidl2.core.types_pb2 import LiteralType
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from connectors.literals.struct_schema import DATACLASS, PYDANTIC, UNTYPED, fit_to_schema, plain_data

__all__ = ["MSGPACK", "msgpack_literal", "struct_flavor", "struct_literal", "struct_to_native"]

MSGPACK = "msgpack"
DATACLASS_TAG = "Object-Dataclass-Transformer"
PYDANTIC_TAG = "Pydantic Transformer"
PROTOBUF_KEY = "pb_type"


def struct_to_native(literal: Literal, literal_type: LiteralType | None) -> Any:
    """The plain data in a struct literal. Raises ``TypeError`` when it holds no struct."""
    scalar = literal.scalar
    kind = scalar.WhichOneof("value") if literal.HasField("scalar") else None
    if kind == "binary":
        value = msgpack_to_native(scalar.binary)
    elif kind == "generic":
        if literal.metadata.get("format") == "pickle":
            raise TypeError("the value is a pickled Python object, which connectors cannot read")
        value = json_format.MessageToDict(scalar.generic)
    else:
        raise TypeError("the literal holds no struct")
    if literal_type is not None and not isinstance(value, dict) and _schema_kind(literal_type) == "object":
        raise TypeError(f"the struct holds a {type(value).__name__}, not a dict")
    return value


def msgpack_to_native(binary: Binary) -> Any:
    if binary.tag != MSGPACK:
        if not binary.tag:
            raise TypeError("the binary is a pickled Python object, which connectors cannot read")
        raise TypeError(f"the binary is tagged {binary.tag!r}, not msgpack")
    try:
        return msgpack.unpackb(binary.value, strict_map_key=False)
    except Exception as err:  # msgpack raises several unrelated types for corrupt data
        raise TypeError(f"the msgpack binary does not decode: {err}") from None


def struct_literal(value: Any, literal_type: LiteralType) -> Literal:
    """The literal the SDK writes for ``value`` under a STRUCT type.

    Raises :class:`~connectors.literals.struct_schema.SchemaMismatch` when the value does not fit.
    """
    schema = _schema(literal_type)
    if PROTOBUF_KEY in schema:
        if not isinstance(value, Mapping):
            raise TypeError(f"got a {type(value).__name__}, not a dict for a protobuf message")
        struct = Struct()
        struct.update(json_format_safe(plain_data(value, UNTYPED)))
        return Literal(scalar=Scalar(generic=struct))
    flavor = struct_flavor(literal_type)
    if schema.get("type") == "object" or "properties" in schema:
        data = fit_to_schema(value, schema, flavor)
    elif isinstance(value, Mapping):
        data = plain_data(value, flavor)
    else:
        raise TypeError(f"got a {type(value).__name__}, not a dict")
    return msgpack_literal(data)


def msgpack_literal(data: Any) -> Literal:
    """A Binary literal of msgpack-ready plain data, tagged as the SDK tags it."""
    try:
        packed = msgpack.packb(data, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as err:
        raise TypeError(f"cannot be written as msgpack: {err}") from None
    return Literal(scalar=Scalar(binary=Binary(value=packed, tag=MSGPACK)))


def struct_flavor(literal_type: LiteralType) -> str:
    """Which encoder's conventions the SDK used for this struct type."""
    tag = literal_type.structure.tag if literal_type.HasField("structure") else ""
    if tag == PYDANTIC_TAG:
        return PYDANTIC
    if tag == DATACLASS_TAG or literal_type.HasField("metadata"):
        return DATACLASS
    return UNTYPED


def json_format_safe(data: Any) -> Any:
    """Plain data a ``google.protobuf.Struct`` can hold: bytes are refused there."""
    if isinstance(data, dict):
        return {str(key): json_format_safe(item) for key, item in data.items()}
    if isinstance(data, list):
        return [json_format_safe(item) for item in data]
    if isinstance(data, bytes):
        raise TypeError("a protobuf Struct cannot hold bytes")
    return data


def _schema(literal_type: LiteralType) -> dict:
    if not literal_type.HasField("metadata"):
        return {}
    return _parse_schema(literal_type.metadata.SerializeToString(deterministic=True))


def _schema_kind(literal_type: LiteralType) -> str | None:
    kind = _schema(literal_type).get("type")
    return kind if isinstance(kind, str) else None


@lru_cache(maxsize=256)
def _parse_schema(serialized: bytes) -> dict:
    """The JSON schema in a literal type's metadata, parsed once per distinct schema."""
    struct = Struct()
    struct.ParseFromString(serialized)
    return json_format.MessageToDict(struct)
