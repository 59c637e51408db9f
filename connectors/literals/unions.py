"""Unions and Optional: which declared variant a literal or a native value belongs to.

The flyte SDK writes a union value as a Union literal holding the value and the variant's
literal type, tagged (``structure.tag``) with the name of the transformer that wrote it
(``"int"``, ``"none"``, ``"Object-Dataclass-Transformer"``...); it reads one back by that tag. A
connector receives just the value. On the way out the variant is chosen by the value: among
the variants it fits, the most specific one (an ``int`` is an int before it is a float, a dict
that fits a dataclass's schema belongs to it before an untyped dict), the first declared on a tie;
the declared variant's type, tag included, is written with it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable, Mapping
from typing import Any

from flyteidl2.core.literals_pb2 import Literal, Scalar
from flyteidl2.core.literals_pb2 import Union as UnionLiteral
from flyteidl2.core.types_pb2 import LiteralType

from connectors.literals.references import DataFrameRef, DirRef, FileRef
from connectors.literals.simple_types import Simple

__all__ = ["PICKLE_TAG", "is_pickle_type", "stored_variant", "union_literal", "variant_order"]

PICKLE_TAG = "FlytePickle"

_EXACT, _COERCED = 2, 1


def is_pickle_type(literal_type: LiteralType) -> bool:
    """The SDK's fallback for Python types it does not know: a pickle, which no connector can read."""
    return literal_type.HasField("union_type") and any(
        variant.structure.tag == PICKLE_TAG for variant in literal_type.union_type.variants
    )


def stored_variant(stored: LiteralType, variants: list[LiteralType]) -> LiteralType | None:
    """The declared variant a union literal's stored type names, or None if none matches."""
    for variant in variants:
        if variant == stored:
            return variant
    tag = stored.structure.tag
    essence = _essence(stored)
    candidates = [v for v in variants if v.structure.tag == tag and _essence(v) == essence]
    if not candidates:
        candidates = [v for v in variants if _essence(v) == essence] if not tag else []
    if len(candidates) > 1:
        title = _title(stored)
        candidates = [v for v in candidates if _title(v) == title] or candidates
    return candidates[0] if candidates else None


def variant_order(value: Any, variants: list[LiteralType]) -> list[LiteralType]:
    """The variants to try for ``value``, most specific first (stable: declared order on a tie)."""
    return sorted(variants, key=lambda variant: -_specificity(value, variant))


def union_literal(value: Literal, variant: LiteralType) -> Literal:
    return Literal(scalar=Scalar(union=UnionLiteral(value=value, type=variant)))


def first_fitting_variant(
    value: Any, variants: list[LiteralType], convert: Callable[[Any, LiteralType], Literal]
) -> tuple[Literal, LiteralType] | None:
    """The literal of ``value`` under the most specific variant it fits, with that variant."""
    for variant in variant_order(value, variants):
        try:
            return convert(value, variant), variant
        except (ValueError, TypeError):
            continue
    return None


def _specificity(value: Any, literal_type: LiteralType) -> int:
    """How exactly ``value``'s Python type names this literal type: 2 exactly, 1 by coercion."""
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return (
            _EXACT
            if _SIMPLE_PYTHON_TYPES.get(literal_type.simple, _Nothing) in _python_types(value)
            else (_EXACT if literal_type.simple == Simple.STRUCT and literal_type.HasField("metadata") else _COERCED)
        )
    if kind == "enum_type":
        return _EXACT if isinstance(value, enum.Enum) else _COERCED
    if kind == "collection_type":
        if isinstance(value, (list, tuple)) and value:
            return min(_specificity(item, literal_type.collection_type) for item in value)
        return _EXACT
    if kind == "map_value_type":
        if isinstance(value, Mapping) and value:
            return min(_specificity(item, literal_type.map_value_type) for item in value.values())
        return _EXACT
    if kind == "union_type":
        return max((_specificity(value, v) for v in literal_type.union_type.variants), default=_COERCED)
    if kind in ("blob", "structured_dataset_type"):
        return _EXACT
    return _COERCED


class _Nothing:
    pass


_SIMPLE_PYTHON_TYPES = {
    Simple.NONE: type(None),
    Simple.INTEGER: int,
    Simple.FLOAT: float,
    Simple.STRING: str,
    Simple.BOOLEAN: bool,
    Simple.DATETIME: datetime.datetime,
    Simple.DURATION: datetime.timedelta,
}


def _python_types(value: Any) -> tuple:
    """The types ``value`` is exactly an instance of, for the purpose of matching (bool is no int)."""
    if isinstance(value, bool):
        return (bool,)
    if isinstance(value, (FileRef, DirRef, DataFrameRef)):
        return (type(value),)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value),)
    return type(value).__mro__


def _essence(literal_type: LiteralType) -> LiteralType:
    """The type without what does not change its shape: metadata, annotation, structure tag."""
    if not (
        literal_type.HasField("metadata") or literal_type.HasField("structure") or literal_type.HasField("annotation")
    ):
        return literal_type
    bare = LiteralType()
    bare.CopyFrom(literal_type)
    bare.ClearField("metadata")
    bare.ClearField("structure")
    bare.ClearField("annotation")
    return bare


def _title(literal_type: LiteralType) -> str:
    if literal_type.HasField("metadata") and "title" in literal_type.metadata.fields:
        return literal_type.metadata.fields["title"].string_value
    return ""
