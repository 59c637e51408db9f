"""A plain-text table as the benchmarks print them: columns padded, numbers right-aligned."""

from __future__ import annotations


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) if i == 0 or not _numeric(str(cell)) else str(cell).rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=False))
            ).rstrip()
        )


def _numeric(text: str) -> bool:
    return bool(text) and text.removesuffix("x").replace(".", "", 1).replace("$", "").replace(",", "").isdigit()
