"""tests/doc_blocks.py finds every fenced block CommonMark does (an info string after the
language, ``~~~`` fences, longer fences), so a documented command cannot hide from the
executed-docs test by the way it is fenced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import doc_blocks

MARKDOWN = """# A page

<!-- docs-test: not run: nothing -->
```sh title="the one with an info string"
exit 11
```

Some prose.

```sh
exit 12
```

~~~sh
exit 13
~~~

````sh
exit 14
````
"""


def test_every_sh_fence_form_is_a_block_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doc_blocks, "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(MARKDOWN)
    found = doc_blocks.blocks(page)
    seen = {block.disposition: [] for block in found}
    for block in found:
        seen[block.disposition].append(block.text.strip())
    runs = [block.text.strip() for block in found if block.disposition in ("run", "not run")]
    # "exit 11" is marked not run; every other sh block must be run (or the parser must refuse the page).
    for code in ("exit 12", "exit 13", "exit 14"):
        assert code in runs, f"{code!r} is not run: parsed as {seen}"


def test_a_fence_that_never_closes_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doc_blocks, "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text("# x\n\n```sh\necho hi\n")
    with pytest.raises(ValueError, match="never closes"):
        doc_blocks.blocks(page)
