"""The template fields as a connector page shows them: the page's table of meanings with the
code's required and type columns added (a field the page names that the code does not read, or
one the code reads that the page does not explain, fails the build), and the connectors'
overview with the fields each reads."""

from __future__ import annotations

import re

from tools.docsite.connector_classes import connector_class, source_path
from tools.docsite.errors import DocsError
from tools.docsite.field_reads import custom_fields, template_fields
from tools.docsite.markdown_tables import TABLE_ROW, markdown_table

_CODE = re.compile(r"`([^`]+)`")


def fields_table(task_type: str, meanings: list[str]) -> str:
    """The page's table of meanings (``| field | meaning |``, one or more fields per row) with the
    code's columns added; the build fails when the two name different fields."""
    fields = template_fields(task_type)
    rows: list[tuple[list[str], str]] = []
    for line in meanings[2:]:
        match = TABLE_ROW.match(line)
        if not match:
            raise DocsError(f"{task_type}: not a table row under the template fields marker: {line!r}")
        rows.append((_CODE.findall(match.group("first")), match.group("rest").strip()))
    named = [name for names, _ in rows for name in names]
    missing = [name for name in fields if name not in named]
    extra = [name for name in named if name not in fields]
    if missing or extra:
        raise DocsError(
            f"{task_type}: the page's template fields and the code's differ: "
            + (f"the code reads {', '.join(missing)}, which the page does not explain; " if missing else "")
            + (f"the page names {', '.join(extra)}, which the code does not read" if extra else "")
        )
    out = []
    for names, meaning in rows:
        required = " / ".join(dict.fromkeys(fields[name].required for name in names))
        kinds = " / ".join(dict.fromkeys(kind for name in names for kind in fields[name].kinds)) or "any"
        out.append((", ".join(f"`{name}`" for name in names), required, kinds, meaning))
    cls = connector_class(task_type)
    caption = (
        f"Field, required and type: read from the code of `{cls.__name__}` "
        f"({source_path(cls)}); the meanings: this page."
    )
    return markdown_table(("field", "required", "type", "meaning"), out, caption=caption)


_TASK_TYPE_CELL = re.compile(r"`(?P<type>[a-z0-9_]+)`")


def overview_table(table: list[str]) -> str:
    """The connectors' overview (``| task type | runs | returns |``) with the fields each reads,
    from its code, added as a column (\\* required)."""
    from connectors.builtin.aws import AWS_CONNECTORS

    rows = []
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        match = _TASK_TYPE_CELL.search(cells[0])
        if not match:
            raise DocsError(f"overview: no task type in {cells[0]!r}")
        task_type = match.group("type")
        if task_type in AWS_CONNECTORS:
            fields = template_fields(task_type)
            names = [f"`{f.name}`" + ("\\*" if f.required != "no" else "") for f in fields.values()]
        else:
            names = [f"`{name}`" for name in custom_fields(task_type)]
        rows.append((cells[0], cells[1], ", ".join(names), cells[2]))
    return markdown_table(
        ("task type", "runs", "fields of `custom` it reads (\\* required, from its code)", "returns"),
        rows,
    )
