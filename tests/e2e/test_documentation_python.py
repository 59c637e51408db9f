"""The ``python`` blocks of README.md and docs/, run as tests/e2e/test_documentation.py describes
(a module of their own, so that they run beside the shell blocks on another test worker): each is
imported and every Flyte task it defines serialized with ``flyte.extras.serialize``; one with a
``__main__`` local run then runs as a script against this module's ``make serve``."""

from __future__ import annotations

import pytest

from tests.doc_blocks import Block
from tests.docs_world import Docs, of, ran_well, run_python


@pytest.mark.parametrize("block", [block for block in of("run") if block.lang == "python"], ids=lambda b: b.where)
def test_a_documented_python_block_runs_as_written(docs: Docs, block: Block) -> None:
    ran_well(block, run_python(docs, block))
