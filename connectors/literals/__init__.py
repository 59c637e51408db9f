"""Flyte literals to native Python values and back, for connectors, without the flyte SDK.

A connector sees only native values; the executor sees only ``flyteidl2`` literals. This
package converts between them the way the flyte SDK v2 writes and reads them, and refuses,
with :class:`LiteralConversionError`, whatever does not fit the declared type.

What a connector receives, by declared type: ``int``, ``float``, ``str``, ``bool``, ``None``;
``datetime`` (aware, UTC) and ``timedelta``; an enum as its ``str``; lists and dicts of those;
a dataclass, pydantic model or untyped dict as a plain ``dict``; a file, directory or DataFrame
as a :class:`FileRef`, :class:`DirRef` or :class:`DataFrameRef`; a union as its value.
``to_json_safe``/``from_json_safe`` keep such values in JSON (a ResourceMeta) and back.
"""

from connectors.literals.errors import LiteralConversionError
from connectors.literals.interface import inputs_to_native, native_to_outputs
from connectors.literals.json_safe import from_json_safe, to_json_safe
from connectors.literals.references import DataFrameRef, DirRef, FileRef

__all__ = [
    "DataFrameRef",
    "DirRef",
    "FileRef",
    "LiteralConversionError",
    "from_json_safe",
    "inputs_to_native",
    "native_to_outputs",
    "to_json_safe",
]
