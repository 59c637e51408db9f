"""The Markdown tables of the generated parts: a page's table read row by row, and a table written
with its caption."""

from __future__ import annotations

import re

from tools.docsite.errors import DocsError

# A row of a page's table: its first cell, and the rest.
TABLE_ROW = re.compile(r"^\|(?P<first>[^|]*)\|(?P<rest>.*)\|\s*$")


def page_rows(table: list[str], what: str) -> list[list[str]]:
    """The cells of each row of a page's table under a ``<!-- generated: what -->`` marker, its
    header and rule skipped; a line that is no row fails the build."""
    rows = []
    for line in table[2:]:
        if not TABLE_ROW.match(line):
            raise DocsError(f"not a table row under the {what} marker: {line!r}")
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", "\\|", text).replace("\n", " ")


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]], caption: str = "") -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    if caption:
        text += f"\n<small>{caption}</small>\n"
    return text
