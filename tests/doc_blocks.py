"""The code blocks of README.md and docs/, and what the executed-docs test does with each.

Every fenced block is one of:

- **run**: a ``sh``/``bash`` block runs in bash against ``make serve``; a ``python`` block runs as
  a script, with the environment docs/flyte-tasks.md documents for a local run;
- **checked**: ``json`` and ``yaml`` are parsed;
- **shown**: output, diagrams, SQL, PromQL and the like (``text``, ``promql``, ``sql``,
  ``mermaid``, no language): nothing to run;
- **not run**: a ``sh``/``python`` block marked so in the Markdown, with the reason, on the line
  before its fence: ``<!-- docs-test: not run: needs an AWS account (sam deploy) -->``.

Other directives, on the lines before a fence (``<!-- docs-test: ... -->``, one per comment):

- ``file <name>``: the block is written to the working directory as ``<name>`` (a later shell
  block runs it), not run on its own;
- ``background <host:port>``: the shell block starts a server that keeps running; it must be
  listening on that address (after port mapping) within 60 s, and it is stopped afterwards;
- ``definitions only: <reason>``: a ``python`` block runs without its ``__main__`` part (the
  ``if __name__ == "__main__":`` that would call a Flyte cluster); its tasks are still serialized;
- ``with <placeholder>=<variable>``: the placeholder (``<handle>``) is replaced by a value the
  test made (``HANDLE``: a task it created on ``make serve``; ``RUN``: that task's run name;
  ``TABLE``: make serve's table).

``python -m tests.doc_blocks`` prints the counts.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGUAGES = {"sh": "shell", "bash": "shell", "python": "python"}
CHECKED_LANGUAGES = {"json", "yaml"}
SHOWN_LANGUAGES = {"", "text", "promql", "sql", "mermaid"}
# CommonMark's fenced code: three or more backticks or tildes, an info string whose first word is
# the language; closed by the same character, at least as many, and nothing else on the line.
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    directives: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def directive(self, kind: str) -> str | None:
        for directive in self.directives:
            if directive == kind or directive.startswith((f"{kind} ", f"{kind}:")):
                return directive[len(kind) :].lstrip(": ").strip()
        return None

    @property
    def disposition(self) -> str:
        """run, file, checked, shown or not run."""
        if self.directive("not run") is not None:
            return "not run"
        if self.directive("file") is not None:
            return "file"
        if self.lang in RUN_LANGUAGES:
            return "run"
        if self.lang in CHECKED_LANGUAGES:
            return "checked"
        if self.lang in SHOWN_LANGUAGES:
            return "shown"
        raise ValueError(f"{self.where}: a ```{self.lang} block: add its language to tests/doc_blocks.py")

    def substitutions(self) -> dict[str, str]:
        """``with <placeholder>=<VARIABLE>`` directives: placeholder -> variable name."""
        found = {}
        for directive in self.directives:
            if directive.startswith("with "):
                placeholder, _, variable = directive[5:].partition("=")
                found[placeholder.strip()] = variable.strip().lstrip("$")
        return found


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        indent, fence, start = len(opened.group("indent")), opened.group("fence"), index
        info = opened.group("info").split()
        directives = []
        back = index - 1
        while back >= 0 and (match := _DIRECTIVE.match(lines[back])):
            directives.insert(0, match.group("body"))
            back -= 1
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        index += 1
        body = []
        while index < len(lines) and not closing.match(lines[index]):
            body.append(lines[index][indent:] if lines[index][:indent].strip() == "" else lines[index])
            index += 1
        if index == len(lines):
            raise ValueError(f"{path.relative_to(ROOT)}:{start + 1}: a fence that never closes")
        language = info[0].lower() if info else ""
        found.append(Block(path, start + 1, language, "\n".join(body) + "\n", directives))
        index += 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def counts(found: list[Block] | None = None) -> Counter[str]:
    return Counter(block.disposition for block in (found if found is not None else all_blocks()))


def main() -> None:
    found = all_blocks()
    tally = counts(found)
    print(
        f"{len(found)} code blocks in README.md and docs/: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
    )
    for block in found:
        if block.disposition == "not run":
            print(f"  not run  {block.where}: {block.directive('not run')}")
    sys.exit(0)


if __name__ == "__main__":
    main()
