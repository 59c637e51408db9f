"""Review of the executed-docs harness (tests/doc_blocks.py, tests/docs_world.py).

1. The curl pair of README.md:55 (and docs/aws-connectors.md:99) cannot fail: ``curl -s`` without
   ``--fail`` exits 0 on any HTTP answer, and ``jq -r .resourceMeta`` prints ``null`` for an
   error body. A copy whose CreateTask is refused (invalid_argument) still "runs well".
2. A broken copy of a block that checks its exit code does fail (solid): shown for contrast.
3. The fence parser sees only ```` ```lang ```` with nothing after the language: a fence with an
   info string (```` ```sh title="x" ````), a ``~~~`` fence or a four-backtick fence is not a block;
   the first is worse: its closing fence is read as an opening one, and the *next* real ``sh``
   block is swallowed into a "shown" one. None of these fails the test: the block is just not run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests import doc_blocks
from tests.doc_blocks import Block, all_blocks
from tests.docs_world import Docs, ran_well, run_shell


def _block(where: str) -> Block:
    return next(block for block in all_blocks() if block.where == where)


def test_the_documented_curl_pair_fails_when_the_api_refuses_the_task(docs: Docs) -> None:
    block = _block("README.md:55")
    broken = replace(block, text=block.text.replace("-d @examples/athena_query.json", "-d '{\"template\": {}}'"))
    assert broken.text != block.text
    done = run_shell(docs, broken)
    assert '"code"' in done.stdout, done.stdout  # both answers were Connect errors...
    with pytest.raises(AssertionError):  # ...and the block must then count as failed
        ran_well(broken, done)


def test_a_broken_tasks_command_block_fails(docs: Docs) -> None:
    block = _block("docs/tasks-command.md:8")
    broken = replace(block, text=block.text.replace("connectors tasks show <handle>", "connectors tasks show t1nope"))
    with pytest.raises(AssertionError):
        ran_well(broken, run_shell(docs, broken))


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
