"""A connector page's phases: the module's :class:`PhaseTable` (AWS's status word -> Flyte phase),
beside what the page says GetTask answers for each status."""

from __future__ import annotations

import importlib
import re
from typing import Any

from tools.docsite.connector_classes import connector_class
from tools.docsite.errors import DocsError
from tools.docsite.markdown_tables import markdown_table, page_rows


def phase_table(task_type: str) -> Any:
    cls = connector_class(task_type)
    for klass in cls.__mro__:  # the module of the class, or of the base that reads the status
        table = getattr(importlib.import_module(klass.__module__), "PHASES", None)
        if table is not None:
            return table
    raise DocsError(f"{task_type}: no PHASES (a PhaseTable) in the modules of {cls.__name__} or its bases")


def _phases_module(task_type: str) -> str:
    cls = connector_class(task_type)
    for klass in cls.__mro__:
        if getattr(importlib.import_module(klass.__module__), "PHASES", None) is not None:
            return klass.__module__
    return cls.__module__


def phases_table(task_type: str, page: list[str] | None = None) -> str:
    """The module's PhaseTable, one row per row of the page's table (``| status | what GetTask
    answers |``, one or more status words per row, qualifiers allowed) with the code's phase
    added; a status the code maps that the page leaves out gets a row of its own, and a row that
    names no status the code knows fails the build."""
    from flyteidl2.core.execution_pb2 import TaskExecution

    table = phase_table(task_type)
    name = TaskExecution.Phase.Name
    rows: list[tuple[str, ...]] = []
    seen: set[str] = set()
    header = (f"{table.service} status", "Flyte phase")
    if page:
        header = (page[0].strip().strip("|").split("|")[0].strip(), header[1])
        for cells in page_rows(page, "phases"):
            words = [word for word in re.findall(r"[A-Za-z_]+", cells[0]) if word in table.phases]
            if not words:
                raise DocsError(f"{task_type}: the phase table's row {cells[0]!r} names no status PHASES maps")
            seen.update(words)
            phases = ", ".join(dict.fromkeys(name(table.phases[word]) for word in words))  # type: ignore[arg-type]
            rows.append((cells[0], phases, cells[1] if len(cells) > 1 else ""))
    for word, phase in table.phases.items():
        if word not in seen:
            rows.append((f"`{word}`", name(phase), ""))  # type: ignore[arg-type]
    module = _phases_module(task_type)
    caption = (
        f"The phase: `PHASES` in `{module.replace('.', '/')}.py`; what GetTask answers in full: this page. "
        f"Any other status word is `internal` (a poll error the executor counts), never a guess that "
        f"could end a running job's task."
    )
    return markdown_table((header[0], "phase (from the code)", "what GetTask answers"), rows, caption=caption)
