"""The MkDocs hook (mkdocs.yml ``hooks:``) that builds the site's generated parts from the code.

A page asks for a part with an HTML comment on a line of its own:

- ``<!-- generated: facts athena_query -->``: the connector's facts (class, secrets, replay window);
- ``<!-- generated: fields athena_query -->``, on the line before the page's ``| field | meaning |``
  table: that table with the code's columns added (required, type), the build failing when the
  page and the code name different fields;
- ``<!-- generated: phases athena_query -->``, before the page's ``| status | what GetTask
  answers |`` table: its PhaseTable, with the page's words beside each status;
- ``<!-- generated: iam athena_query -->``, before the page's ``| operation | actions |`` table:
  its ``iam_actions``, with what else the page says is granted;
- ``<!-- generated: calls athena_query -->``: a sequence diagram of the AWS calls behind each RPC;
- ``<!-- generated: parameters -->``: template.yaml's parameters;
- ``<!-- generated: overview -->``, on the line before the connectors' ``| task type | runs |
  returns |`` table: that table with the fields each connector's code reads added.

Each AWS connector's page must ask for its fields, phases and IAM (else the build fails), and
docs/task-lifecycle.md's state diagram must draw exactly the transitions the store's code makes.
The hook also adds Mermaid's script, fetched from the npm registry by ``make docs-build`` (the
Makefile's MERMAID_JS), to the site, so that no page loads anything from the internet.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # mkdocs loads this file by path
    sys.path.insert(0, str(ROOT))

from tools.docsite import lifecycle, parameters  # noqa: E402
from tools.docsite.calls_diagram import calls_diagram  # noqa: E402
from tools.docsite.connector_classes import aws_task_types  # noqa: E402
from tools.docsite.errors import DocsError  # noqa: E402
from tools.docsite.facts import facts_table  # noqa: E402
from tools.docsite.field_tables import fields_table, overview_table  # noqa: E402
from tools.docsite.iam import iam_table  # noqa: E402
from tools.docsite.phases import phases_table  # noqa: E402

MARKER = re.compile(r"^<!--\s*generated:\s*(?P<what>[a-z]+)(?:\s+(?P<arg>[a-z0-9_]+))?\s*-->\s*$")
MERMAID_JS = Path(os.environ.get("MERMAID_JS", ROOT / ".tools" / "mermaid" / "mermaid.min.js"))
MERMAID_SITE_PATH = "javascripts/mermaid.min.js"

_rendered: set[tuple[str, str]] = set()


def render(markdown: str, where: str = "") -> str:
    """The page with each marker replaced by what it asks for."""
    lines = markdown.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        match = MARKER.match(lines[index])
        if not match:
            out.append(lines[index])
            index += 1
            continue
        what, arg = match.group("what"), match.group("arg") or ""
        index += 1
        try:
            table = []
            while index < len(lines) and lines[index].startswith("|"):
                table.append(lines[index])
                index += 1
            if what == "fields":
                out.append(fields_table(arg, table))
            elif what == "overview":
                out.append(overview_table(table))
            elif what == "facts":
                out.append(facts_table(arg))
            elif what == "phases":
                out.append(phases_table(arg, table))
            elif what == "iam":
                out.append(iam_table(arg, table))
            elif what == "calls":
                out.append(calls_diagram(arg))
            elif what == "parameters":
                out.append(parameters.parameters_table())
            else:
                raise DocsError(f"unknown generated part {what!r}")
        except DocsError as error:
            raise DocsError(f"{where}: {error}") from None
        _rendered.add((what, arg))
    return "\n".join(out)


def check_lifecycle_diagram(markdown: str) -> None:
    """The state diagram draws the store's transitions, no more and no fewer."""
    code = lifecycle.transitions()
    drawn = lifecycle.diagram_edges(lifecycle.state_diagram(markdown), {edge[2] for edge in code})
    missing, extra = sorted(code - drawn), sorted(drawn - code)
    if missing or extra:
        raise DocsError(
            "docs/task-lifecycle.md: the state diagram and connectors/store/ differ: "
            + (f"the code makes {missing}, which the diagram does not draw; " if missing else "")
            + (f"the diagram draws {extra}, which the code does not make" if extra else "")
        )


# -- MkDocs events -----------------------------------------------------------------------------


def on_pre_build(config: Any, **kwargs: Any) -> None:
    _rendered.clear()


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    if not MERMAID_JS.is_file():
        from mkdocs.exceptions import PluginError

        raise PluginError(
            f"{MERMAID_JS} is missing: `make docs-build` (or `make docs`) fetches it from the npm registry"
        )
    files.append(File.generated(config, MERMAID_SITE_PATH, abs_src_path=str(MERMAID_JS)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    from mkdocs.exceptions import PluginError

    where = f"docs/{page.file.src_uri}"
    try:
        if page.file.src_uri == "task-lifecycle.md":
            check_lifecycle_diagram(markdown)
        return render(markdown, where)
    except DocsError as error:
        raise PluginError(str(error)) from None
    except ValueError as error:
        raise PluginError(f"{where}: {error}") from None


def on_post_build(config: Any, **kwargs: Any) -> None:
    wanted = {(what, task_type) for task_type in aws_task_types() for what in ("fields", "phases", "iam")}
    missing = sorted(wanted - _rendered)
    if missing:
        from mkdocs.exceptions import PluginError

        raise PluginError(
            "AWS connector pages without their generated parts: "
            + ", ".join(f"{task_type} ({what})" for what, task_type in missing)
            + " (add `<!-- generated: <part> <task type> -->` to docs/connectors/<task type>.md)"
        )
