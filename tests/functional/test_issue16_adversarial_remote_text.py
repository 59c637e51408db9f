"""Review of issue 16 item 4: ``readable()`` applied to every connector error (connector_calls.py).

1. Its regexes are quadratic: an error body of some 100 KB made of unclosed tags (``<script>``
   repeated, ``<p`` repeated) takes tens of seconds, on the event loop, after the call's
   deadline: the served app answers nothing else meanwhile, and the caller's deadline passes.
2. It runs *before* ``redact``: the 1,000-character cut can split a secret the remote echoed,
   and the part before the cut is no longer the whole value, so it is answered and recorded.
3. An HTML page's white space is folded (lines joined by ': '): a multi-line secret
   (known_hosts_data, a PEM key) echoed in a ``<pre>`` no longer matches, and is answered whole.

Through the served app: Glue behind a loopback "proxy" for 1, a connector that passes its
remote's words on (as every built-in does) for 2 and 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.builtin.aws.glue import GlueJobConnector
from connectors.errors import Code, unavailable
from tests.aws_world import task_request
from tests.sample_connectors import CountingConnector
from tests.scripted_endpoint import scripted_endpoint

# 160 KB (botocore passes it on as the message). The quadratic readable() took 24 s on it on an idle
# machine (9 s at 100 KB); fixed, 0.1 s. The bounds below leave twice the room either way: a
# loaded CI machine once stalled the served app 7 s beside the fixed one.
PATHOLOGICAL = ("<!doctype html>" + "<script>" * 20000).encode()
STALL_BOUND = 12.0


@pytest.fixture
def glue_behind_a_hostile_proxy(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with scripted_endpoint(monkeypatch, "AWS_ENDPOINT_URL_GLUE", 400, "text/html", PATHOLOGICAL) as url:
        yield url


PROBE = """
import json, sys, time, urllib.request
time.sleep(1.5)  # CreateTask is failing by then: readable() runs on the served app's loop
started = time.monotonic()
request = urllib.request.Request(
    sys.argv[1] + "/flyteidl2.connector.ConnectorMetadataService/ListConnectors",
    data=b"{}", headers={"content-type": "application/json"}, method="POST")
try:
    urllib.request.urlopen(request, timeout=30).read()
    print(json.dumps(time.monotonic() - started))
except Exception as error:
    print(json.dumps(repr(error)))
"""


def test_a_pathological_error_page_neither_stalls_the_app_nor_outlives_the_deadline(
    aws_world, glue_behind_a_hostile_proxy
):
    """A proxy in front of Glue (or any remote a task can name) answers 160 KB of unclosed tags.
    The quadratic readable() took 24 s on it, on the event loop and holding the GIL: another
    request waited as long, and CreateTask answered long after its 3 s deadline. The probe is a
    separate process (this process's threads are starved of the GIL meanwhile)."""
    world = aws_world(GlueJobConnector(), connector_timeout_seconds=3.0)
    probe = subprocess.Popen([sys.executable, "-c", PROBE, world.server.url], stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - the answer's code does not matter here
        world.create(task_request("glue_job", {"job_name": "nightly"}))
    answered = time.monotonic() - started
    listed = json.loads(probe.communicate(timeout=120)[0])
    assert isinstance(listed, float) and listed < STALL_BOUND, f"ListConnectors beside it took: {listed}"
    assert answered < STALL_BOUND, f"CreateTask with a 3 s deadline answered after {answered:.1f} s"


class EchoingConnector(CountingConnector):
    """Passes its remote's error text on, as the built-ins do; this remote quotes the request."""

    name = "Echoing Connector"
    task_type_name = "echoing"
    secret_names = ("api_token",)
    body = ""

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        raise unavailable(type(self).body.format(token=kwargs["api_token"]))


def _create_echo(world: Any, token: str) -> tuple[str, list[str]]:
    request = task_request("echoing", {}, secrets={"api_token": token}, run=f"echo-{time.monotonic_ns()}")
    error = world.error(world.create, request)
    assert error.code == Code.UNAVAILABLE
    record = next(
        iter(
            world.records(
                request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name
            ).values()
        )
    )
    return error.message, [*record.notes, record.message]


def test_a_secret_at_the_length_cut_is_not_half_answered(aws_world):
    token = "sk-live-" + "0123456789abcdef" * 3  # 56 characters
    # An API gateway's 401 page that echoes the request URL (a query-string token), long enough
    # that the token straddles character 1,000.
    EchoingConnector.body = "401 Unauthorized for url https://api.example.com/v1/jobs?" + "x" * 920 + "&key={token}"
    world = aws_world(EchoingConnector())
    message, stored = _create_echo(world, token)
    leaked = token[:16]  # "sk-live-01234567": a live key's prefix and a third of its secret part
    assert leaked not in message, f"answered: ...{message[-80:]!r}"
    assert all(leaked not in text for text in stored), stored


def test_a_multi_line_secret_on_an_html_error_page_is_redacted(aws_world):
    token = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGOod\n|1|Zm9vYmFyYmF6|cXV4cXV1eA== ssh-rsa AAAAB3NzaC1yc2E"
    EchoingConnector.body = (
        "<html><title>400 Bad Request</title><body><pre>bad known_hosts:\n{token}</pre></body></html>"
    )
    world = aws_world(EchoingConnector())
    message, stored = _create_echo(world, token)
    for line in token.splitlines():
        assert line not in message, f"answered: {message!r}"
        assert all(line not in text for text in stored), stored
