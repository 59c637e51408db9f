"""Task inputs to native values and native outputs to task outputs, guided by the interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl2.core.interface_pb2 import TypedInterface, VariableMap
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral, Outputs

from connectors.literals.convert import literal_to_native, native_to_literal

__all__ = ["inputs_to_native", "native_to_outputs"]


def inputs_to_native(inputs: Inputs, interface: TypedInterface | None) -> dict[str, Any]:
    """Every input as a native Python value, by name.

    An input with a declared variable is checked against its type; one without is read as what
    its literal holds. Raises :class:`LiteralConversionError` naming the input and the type.
    """
    declared = _declared_types(interface.inputs if interface is not None else None)
    return {
        named.name: literal_to_native(named.value, declared.get(named.name), f"input {named.name!r}")
        for named in inputs.literals
    }


def native_to_outputs(values: Mapping[str, Any], variables: VariableMap | None) -> Outputs:
    """The outputs as literals, in the order of the declared variables, then any undeclared ones.

    A declared output is checked against its type; an undeclared one gets the type its value
    suggests. A declared output that is missing from ``values`` is left out (the executor says so).
    Raises :class:`LiteralConversionError` naming the output and the type.
    """
    declared = _declared_types(variables)
    names = [name for name in declared if name in values]
    names += [name for name in values if name not in declared]
    return Outputs(
        literals=[
            NamedLiteral(name=name, value=native_to_literal(values[name], declared.get(name), f"output {name!r}"))
            for name in names
        ]
    )


def _declared_types(variables: VariableMap | None) -> dict:
    if variables is None:
        return {}
    return {entry.key: entry.value.type for entry in variables.variables if entry.value.HasField("type")}
