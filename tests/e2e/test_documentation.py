"""Every code block of README.md and docs/ that can run on this machine runs here, as written.

`make serve` (the Makefile's target, started by this test on free ports) is the service the
documentation talks to. Each block runs in a working directory that holds the checkout (symlinks)
and with the environment docs/flyte-tasks.md documents for a local run: AWS at make serve's
embedded moto (``AWS_ENDPOINT_URL``, region us-east-1, the ``testing`` keys), ``.venv/bin`` first
on ``PATH``, and no AWS configuration files, so nothing can reach a real account.

- The documented ports are make serve's: ``127.0.0.1:8080`` (the API) and ``:8000`` (moto) become
  the ports this test chose, as do ``:8081`` and ``:9090`` (a relay and its metrics). A ``make
  serve`` line in a block is the server this test already runs.
- ``sh`` blocks run in bash (``-e -o pipefail``); ``python`` blocks run as scripts, and every
  Flyte task a script defines is then serialized with ``flyte.extras.serialize`` (the
  ``translate_task_to_wire`` path a deploy takes), so an example that could not be deployed fails.
- ``json``/``yaml`` blocks are parsed. Blocks that cannot run here say so in the Markdown
  (``<!-- docs-test: not run: <reason> -->``); tests/doc_blocks.py reads the directives and
  ``python -m tests.doc_blocks`` prints the counts.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from tests.doc_blocks import Block, all_blocks
from tests.docs_world import Docs, of, ran_well, run_in_background, run_shell

SHELL = [block for block in of("run") if block.lang != "python"]


@pytest.mark.parametrize("block", SHELL, ids=lambda block: block.where)
def test_a_documented_shell_block_runs_as_written(docs: Docs, block: Block) -> None:
    if block.directive("background") is not None:
        run_in_background(docs, block)
        return
    with docs.secrets_left_as_they_were():
        ran_well(block, run_shell(docs, block))


class _AnyTag(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Sub``, ``!Ref``): parsed, the tag ignored."""


_AnyTag.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.mark.parametrize("block", of("checked"), ids=lambda block: block.where)
def test_a_documented_json_or_yaml_block_parses(block: Block) -> None:
    if block.lang == "json":
        json.loads(block.text)
    else:
        assert yaml.load(block.text, Loader=_AnyTag) is not None  # noqa: S506 - a SafeLoader subclass


@pytest.mark.parametrize("block", of("not run"), ids=lambda block: block.where)
def test_a_block_that_is_not_run_says_why(block: Block) -> None:
    reason = str(block.directive("not run"))
    assert len(reason) >= 12, f"{block.where}: say why it cannot run here"


def test_every_block_is_run_checked_shown_or_says_why_not() -> None:
    """A new ``sh`` or ``python`` block is run unless marked; a block in a language this test does
    not know fails here (tests/doc_blocks.py decides what each language is)."""
    blocks = of("run") + of("file") + of("checked") + of("shown") + of("not run")
    assert len(blocks) == len({(b.path, b.line) for b in blocks}) and len(SHELL) > 10


def test_make_serve_serves_what_the_lambda_package_serves(docs: Docs) -> None:
    """Not the flyte SDK's slurm_script, which the dev venv holds for the differential tests
    (docs/connectors/slurm.md): make serve sets FLYTE_SDK_CONNECTORS=none."""
    served = {
        category["name"]
        for connector in docs.listed["connectors"]
        for category in connector.get("supportedTaskCategories", [])
    }
    assert "slurm" in served and "athena_query" in served
    assert "slurm_script" not in served


def _block_with(path: str, text: str) -> Block:
    (found,) = [block for block in all_blocks() if block.where.startswith(f"{path}:") and text in block.text]
    return found


def test_the_documented_curl_pair_fails_when_the_api_refuses_the_task(docs: Docs) -> None:
    """A block must fail when its command fails: curl -f and jq -e make the pair do so."""
    block = _block_with("docs/run-locally.md", "-d @examples/athena_query.json")
    broken = replace(block, text=block.text.replace("-d @examples/athena_query.json", "-d '{\"template\": {}}'"))
    assert broken.text != block.text
    with pytest.raises(AssertionError):
        ran_well(broken, run_shell(docs, broken))


def test_a_broken_tasks_command_block_fails(docs: Docs) -> None:
    block = _block_with("docs/tasks-command.md", "connectors tasks list --json")
    broken = replace(block, text=block.text.replace("connectors tasks show <handle>", "connectors tasks show t1nope"))
    with pytest.raises(AssertionError):
        ran_well(broken, run_shell(docs, broken))
