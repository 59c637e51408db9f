"""Flyte literals to native Python values and back, for connectors, without the flyte SDK.

A connector sees only native values; the executor sees only ``flyteidl2`` literals. This
package converts between them the way the flyte SDK v2 writes and reads them, and refuses,
with :class:`LiteralConversionError`, whatever does not fit the declared type.
"""

from connectors.literals.errors import LiteralConversionError
from connectors.literals.interface import inputs_to_native, native_to_outputs

__all__ = [
    "LiteralConversionError",
    "inputs_to_native",
    "native_to_outputs",
]
