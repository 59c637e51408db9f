"""A connector's dict, made into what the flyte SDK would have written for a dataclass or model.

Dataclasses and pydantic models travel as msgpack; their declared type carries a JSON schema
(mashumaro's for a dataclass, pydantic's for a model). A connector returns plain Python data;
this module walks it along the schema, checks it fits (required fields, no unknown fields where
the schema forbids them, the JSON types) and writes each leaf the way the SDK's own encoder would:

============================  ==============================  ===========================
value                         dataclass (mashumaro)           pydantic model
============================  ==============================  ===========================
datetime / date               ISO string                      ISO string
timedelta                     seconds, a float                ISO 8601 duration string
enum member                   its value                       its name
int where a number is due     float                           float
FileRef / DirRef              {path, name, format, hash}      {path, name, format, hash}
DataFrameRef                  {uri, format}                   {uri, format}
tuple, set                    list                            list
nested dataclass / model      dict                            dict
============================  ==============================  ===========================

Only the schema keywords the SDK's generators emit are understood: type, properties, required,
additionalProperties, items, anyOf/oneOf, enum, $ref/$defs, format.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import numbers
from collections.abc import Mapping
from typing import Any

from connectors.literals.references import DataFrameRef, DirRef, FileRef, flyte_io_to_ref

__all__ = ["DATACLASS", "PYDANTIC", "UNTYPED", "SchemaMismatch", "fit_to_schema", "plain_data"]

DATACLASS = "dataclass"
PYDANTIC = "pydantic"
UNTYPED = "untyped"


class SchemaMismatch(Exception):
    """Where inside the value (``.a[2]``) and what does not fit."""

    def __init__(self, at: str, problem: str) -> None:
        super().__init__(f"{at}: {problem}" if at else problem)
        self.at = at
        self.problem = problem


def fit_to_schema(value: Any, schema: Mapping, flavor: str) -> Any:
    """``value`` as msgpack-ready plain data shaped by ``schema``; raises :class:`SchemaMismatch`."""
    return _fit(value, schema, schema.get("$defs") or schema.get("definitions") or {}, flavor, "")


def plain_data(value: Any, flavor: str, at: str = "") -> Any:
    """``value`` as msgpack-ready plain data, with no schema to follow."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, Mapping):
        return {key: plain_data(item, flavor, f"{at}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_data(item, flavor, f"{at}[{index}]") for index, item in enumerate(value)]
    converted = _leaf(value, flavor)
    if converted is not _NOT_A_LEAF:
        return converted
    as_dict = _as_dict(value, flavor)
    if as_dict is not None:
        return plain_data(as_dict, flavor, at)
    raise SchemaMismatch(at, f"a {type(value).__name__} cannot be written as msgpack")


_NOT_A_LEAF = object()


def _leaf(value: Any, flavor: str) -> Any:
    if isinstance(value, enum.Enum):
        return value.name if flavor == PYDANTIC else value.value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return _iso_duration(value) if flavor == PYDANTIC else value.total_seconds()
    return _NOT_A_LEAF


def _as_dict(value: Any, flavor: str) -> dict | None:
    """The fields of a reference, a dataclass, a named tuple or a pydantic model; None for others."""
    value = flyte_io_to_ref(value)
    if isinstance(value, (FileRef, DirRef)):
        return {"path": value.uri, "name": value.name, "format": value.format, "hash": value.hash}
    if isinstance(value, DataFrameRef):
        return {"uri": value.uri, "format": value.format}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return dict(value._asdict())
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        return model_dump(mode="python")
    return None


def _fit(value: Any, schema: Any, defs: Mapping, flavor: str, at: str) -> Any:
    if not isinstance(schema, dict):  # schemas come from MessageToDict: plain dicts
        return plain_data(value, flavor, at)
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if target is None:
            return plain_data(value, flavor, at)
        schema = target
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        problems = []
        for alternative in alternatives:
            try:
                return _fit(value, alternative, defs, flavor, at)
            except SchemaMismatch as mismatch:
                problems.append(mismatch.problem)
        raise SchemaMismatch(at, "fits none of the alternatives: " + "; ".join(problems))
    if "enum" in schema:
        return _fit_enum(value, schema["enum"], flavor, at)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _fit(value, {"anyOf": [{**schema, "type": each} for each in kind]}, defs, flavor, at)
    if kind is None:
        return plain_data(value, flavor, at)
    fit = _FIT_BY_TYPE.get(kind)
    if fit is None:
        return plain_data(value, flavor, at)
    return fit(value, schema, defs, flavor, at)


def _fit_enum(value: Any, allowed: list, flavor: str, at: str) -> Any:
    if isinstance(value, enum.Enum):
        for candidate in (value.name, value.value) if flavor == PYDANTIC else (value.value, value.name):
            if candidate in allowed:
                return candidate
    elif (value in allowed and not isinstance(value, bool)) or (value is None and None in allowed):
        return value
    raise SchemaMismatch(at, f"{value!r} is not one of {allowed}")


def _fit_string(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    fmt = schema.get("format")
    if isinstance(value, str):
        return value
    if fmt in ("base64", "binary") and isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if fmt == "date-time" and isinstance(value, datetime.datetime):
        return value.isoformat()
    if fmt == "date" and isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if fmt == "time" and isinstance(value, datetime.time):
        return value.isoformat()
    if fmt == "duration" and isinstance(value, datetime.timedelta):
        return _iso_duration(value)
    if isinstance(value, enum.Enum) and isinstance(value.value, str):
        return value.name if flavor == PYDANTIC else value.value
    raise SchemaMismatch(at, f"expected a string{f' ({fmt})' if fmt else ''}, got a {type(value).__name__}")


def _fit_number(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    if type(value) is float and "format" not in schema:
        return value
    if schema.get("format") == "time-delta" and isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if schema.get("format") == "integer":
            return int(math.trunc(value))  # noqa: RUF046 - a Real truncates to an Integral, not always to an int
        return float(value)
    raise SchemaMismatch(at, f"expected a number, got a {type(value).__name__}")


def _fit_integer(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise SchemaMismatch(at, f"expected an integer, got a {type(value).__name__}")


def _fit_boolean(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    if isinstance(value, bool):
        return value
    raise SchemaMismatch(at, f"expected a bool, got a {type(value).__name__}")


def _fit_null(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    if value is None:
        return None
    raise SchemaMismatch(at, f"expected None, got a {type(value).__name__}")


def _fit_array(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    if type(value) is not list and (
        isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset))
    ):
        raise SchemaMismatch(at, f"expected a list, got a {type(value).__name__}")
    items = schema.get("items")
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        if len(value) != len(prefix):
            raise SchemaMismatch(at, f"expected {len(prefix)} items, got {len(value)}")
        return [_fit(item, prefix[index], defs, flavor, f"{at}[{index}]") for index, item in enumerate(value)]
    return [_fit(item, items, defs, flavor, f"{at}[{index}]") for index, item in enumerate(value)]


def _fit_object(value: Any, schema: Mapping, defs: Mapping, flavor: str, at: str) -> Any:
    properties = schema.get("properties") or {}
    if type(value) is not dict and not isinstance(value, Mapping):
        as_dict = _tuple_as_items(value, properties) if isinstance(value, (list, tuple)) else None
        if as_dict is None:
            as_dict = _as_dict(value, flavor)
        if as_dict is None:
            raise SchemaMismatch(at, f"expected a dict, got a {type(value).__name__}")
        value = as_dict
    missing = [name for name in schema.get("required") or () if name not in value]
    if missing:
        raise SchemaMismatch(at, f"missing required field(s) {', '.join(map(repr, missing))}")
    extra_schema = schema.get("additionalProperties", True)
    result = {}
    for key, item in value.items():
        at_key = f"{at}.{key}" if isinstance(key, str) and key.isidentifier() else f"{at}[{key!r}]"
        if key in properties:
            result[key] = _fit(item, properties[key], defs, flavor, at_key)
        elif extra_schema is False:
            raise SchemaMismatch(at, f"unknown field {key!r}")
        elif isinstance(extra_schema, Mapping):
            result[key] = _fit(item, extra_schema, defs, flavor, at_key)
        else:
            result[key] = plain_data(item, flavor, at_key)
    return result


def _tuple_as_items(value: tuple | list, properties: Mapping) -> dict | None:
    """A plain tuple for the SDK's tuple wrapper model (fields ``item_0``, ``item_1``...)."""
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    names = [f"item_{index}" for index in range(len(value))]
    if properties and set(names) == set(properties):
        return dict(zip(names, value, strict=True))
    return None


_FIT_BY_TYPE = {
    "string": _fit_string,
    "number": _fit_number,
    "integer": _fit_integer,
    "boolean": _fit_boolean,
    "null": _fit_null,
    "array": _fit_array,
    "object": _fit_object,
}


def _iso_duration(value: datetime.timedelta) -> str:
    """ISO 8601, as pydantic writes a timedelta: ``P1DT30.5S``, ``-PT1.5S``."""
    if value < datetime.timedelta(0):
        return "-" + _iso_duration(-value)
    seconds = f"{value.seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
    return f"P{value.days}DT{seconds}S" if value.days else f"PT{seconds}S"
