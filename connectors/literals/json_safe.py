"""A tagged JSON encoding of the native values connectors handle, for a JSON ResourceMeta.

``to_json_safe`` turns a native value (as :func:`inputs_to_native` produces, or a connector
returns) into data ``json.dumps`` accepts; ``from_json_safe`` turns that back into an equal value
of the same type. Lists, str-keyed dicts, str, int, bool and None are written as themselves; every
other value becomes a one-key object whose key, starting with ``$``, names its type:

    {"$datetime": "2024-01-01T00:00:00+00:00"}   {"$timedelta": [days, seconds, microseconds]}
    {"$bytes": "<base64>"}                        {"$float": "nan"}  (only non-finite floats)
    {"$date": "2024-01-01"}                       {"$tuple": [...]}
    {"$file": {"uri":..., "format":..., "hash":...}}  ($dir, $dataframe alike)
    {"$dict": [[key, value], ...]}  (a dict whose keys are not all str, or that could be mistaken for a tag)
"""

from __future__ import annotations

import base64
import datetime
import math
from typing import Any

from connectors.literals.references import DataFrameRef, DirRef, FileRef

__all__ = ["from_json_safe", "to_json_safe"]

_REFERENCES = {"$file": FileRef, "$dir": DirRef, "$dataframe": DataFrameRef}
_REFERENCE_TAGS = {cls: tag for tag, cls in _REFERENCES.items()}


def to_json_safe(value: Any) -> Any:
    """``value`` as JSON-ready data that :func:`from_json_safe` turns back into an equal value.

    Raises ``TypeError`` for a value of a type it does not know.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, list):
        return [to_json_safe(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) and not _looks_like_tag(key) for key in value) or not value:
            return {key: to_json_safe(item) for key, item in value.items()}
        return {"$dict": [[to_json_safe(key), to_json_safe(item)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [to_json_safe(item) for item in value]}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    tag = _REFERENCE_TAGS.get(type(value))
    if tag is not None:
        return {tag: {"uri": value.uri, "format": value.format, "hash": value.hash}}
    raise TypeError(f"to_json_safe cannot encode a {type(value).__name__}")


def from_json_safe(data: Any) -> Any:
    """The native value :func:`to_json_safe` encoded. Raises ``ValueError`` for an unknown tag."""
    if isinstance(data, list):
        return [from_json_safe(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((key, payload),) = data.items()
        if _looks_like_tag(key):
            return _decode_tag(key, payload)
    return {key: from_json_safe(item) for key, item in data.items()}


def _decode_tag(tag: str, payload: Any) -> Any:
    if tag == "$datetime":
        return datetime.datetime.fromisoformat(payload)
    if tag == "$date":
        return datetime.date.fromisoformat(payload)
    if tag == "$timedelta":
        days, seconds, microseconds = payload
        return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if tag == "$bytes":
        return base64.b64decode(payload)
    if tag == "$float":
        return float(payload)
    if tag == "$tuple":
        return tuple(from_json_safe(item) for item in payload)
    if tag == "$dict":
        return {_hashable(from_json_safe(key)): from_json_safe(item) for key, item in payload}
    if tag in _REFERENCES:
        return _REFERENCES[tag](uri=payload["uri"], format=payload.get("format", ""), hash=payload.get("hash"))
    raise ValueError(f"from_json_safe: unknown tag {tag!r}")


def _looks_like_tag(key: str) -> bool:
    return key.startswith("$")


def _hashable(key: Any) -> Any:
    return tuple(_hashable(item) for item in key) if isinstance(key, list) else key
