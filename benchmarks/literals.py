"""What converting between Flyte literals and native values costs: ours against the flyte SDK's.

Run with ``.venv/bin/python benchmarks/literals.py`` (needs the dev extras: ``flyte`` is the
yardstick, never a runtime dependency). Two payloads, both directions, in one process:

- a 1,000-element ``list[int]``;
- a dataclass of 100 fields (ints, floats, strs, bools and lists of ints).

"inputs -> native" is ``inputs_to_native`` against ``TypeEngine.to_python_value``; "native ->
outputs" is ``native_to_outputs`` against ``TypeEngine.to_literal``. The SDK's calls are awaited
inside one running event loop, so no loop start-up is charged to them. Each figure is the
median of several rounds, in microseconds per conversion.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flyteidl2.core.interface_pb2 import TypedInterface, Variable, VariableEntry, VariableMap
from flyteidl2.task.common_pb2 import Inputs, NamedLiteral

from connectors.literals import inputs_to_native, native_to_outputs

try:
    from flyte.types import TypeEngine
except ImportError:  # pragma: no cover - a runtime-only install
    sys.exit("benchmarks/literals.py needs the flyte SDK as a yardstick: make install (the dev extras)")


def wide_dataclass(width: int = 100) -> tuple[type, Any]:
    """A dataclass of ``width`` fields cycling through int, float, str, bool and list[int], and a value."""
    kinds = [(int, 7), (float, 2.5), (str, "some text"), (bool, True), (list[int], [1, 2, 3])]
    fields = [(f"field_{index:03d}", kinds[index % len(kinds)][0]) for index in range(width)]
    cls = dataclasses.make_dataclass("Wide", fields)
    globals()["Wide"] = cls  # mashumaro resolves the class by name
    cls.__module__ = __name__
    value = cls(**{name: kinds[index % len(kinds)][1] for index, (name, _) in enumerate(fields)})
    return cls, value


def median_micros(call: Callable[[], Any], rounds: int, per_round: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            call()
        samples.append((time.perf_counter() - start) / per_round * 1e6)
    return statistics.median(samples)


async def median_micros_async(make: Callable[[], Any], rounds: int, per_round: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            await make()
        samples.append((time.perf_counter() - start) / per_round * 1e6)
    return statistics.median(samples)


async def measure(name: str, python_type: Any, value: Any, rounds: int, per_round: int) -> list[tuple]:
    literal_type = TypeEngine.to_literal_type(python_type)
    literal = await TypeEngine.to_literal(value, python_type, literal_type)
    variables = VariableMap(variables=[VariableEntry(key="x", value=Variable(type=literal_type))])
    interface = TypedInterface(inputs=variables, outputs=variables)
    inputs = Inputs(literals=[NamedLiteral(name="x", value=literal)])
    native = inputs_to_native(inputs, interface)

    # Both sides must produce the same thing before their speed means anything.
    ours_literal = native_to_outputs(native, variables).literals[0].value
    assert await TypeEngine.to_python_value(ours_literal, python_type) == value, name

    ours_in = median_micros(lambda: inputs_to_native(inputs, interface), rounds, per_round)
    sdk_in = await median_micros_async(lambda: TypeEngine.to_python_value(literal, python_type), rounds, per_round)
    ours_out = median_micros(lambda: native_to_outputs(native, variables), rounds, per_round)
    sdk_out = await median_micros_async(
        lambda: TypeEngine.to_literal(value, python_type, literal_type), rounds, per_round
    )
    return [
        (name, "inputs -> native", ours_in, sdk_in),
        (name, "native -> outputs", ours_out, sdk_out),
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=50)
    args = parser.parse_args()

    wide_type, wide_value = wide_dataclass()
    rows = []
    rows += await measure("list[int] x 1,000", list[int], list(range(1000)), args.rounds, args.per_round)
    rows += await measure("dataclass, 100 fields", wide_type, wide_value, args.rounds, args.per_round)

    header = ("payload", "direction", "ours (us)", "flyte SDK (us)", "SDK / ours")
    lines = [header] + [
        (name, direction, f"{ours:,.1f}", f"{sdk:,.1f}", f"{sdk / ours:,.1f}x") for name, direction, ours, sdk in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    for index, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(width) if column < 2 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    slower = [row for row in rows if row[2] > row[3]]
    if slower:
        print(f"\nslower than the SDK: {', '.join(f'{n} ({d})' for n, d, _, _ in slower)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
