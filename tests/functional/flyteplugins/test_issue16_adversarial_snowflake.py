"""Review of issue 16 item 6: Snowflake's sign-in under ``wait_for(to_thread(_connection), budget)``.

The budget is 0.75 x CONNECTOR_TIMEOUT_SECONDS, not 0.75 x the call's own time left: a caller
   whose deadline is shorter (Connect's connect-timeout-ms, grpc-timeout, the Lambda's remaining
   time in the reaper) gets "did not finish create within 1.5 s", not the host it cannot reach,
   and the sign-in thread runs on after the answer.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.protobuf import json_format

from connectors.builtin.flyteplugins import snowflake_connections
from tests.functional.flyteplugins.test_snowflake import deployment_key, fake, request, world  # noqa: F401 - fixtures

HOST = "myorg-myaccount.snowflakecomputing.com"


def test_a_caller_deadline_shorter_than_the_budget_still_names_the_host(world, monkeypatch):  # noqa: F811
    """A 6 s caller deadline (Connect's connect-timeout-ms) under a 12 s connector budget: the
    sign-in gets three quarters of the caller's time (login_timeout 4, not 9), and the answer
    names the host. The test's own client waits as long as it takes, so a loaded machine's late
    answer is still read: the deadline the service honoured is what is checked, not a stopwatch
    (a 6 s client timer with 1.5 s to spare missed once on two loaded cores)."""
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "12")
    released = threading.Event()
    logins: list[Any] = []

    def blackholed(**params: Any) -> Any:
        logins.append(params.get("login_timeout"))
        released.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(snowflake_connections, "snowflake_connect", blackholed)
    call = urllib.request.Request(  # noqa: S310 - the loopback served app
        world.server.url + "/flyteidl2.connector.AsyncConnectorService/CreateTask",
        data=json_format.MessageToJson(request()).encode(),
        headers={"content-type": "application/json", "connect-timeout-ms": "6000"},
        method="POST",
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(call, timeout=60).read()  # noqa: S310 - the loopback served app
    finally:
        released.set()
    error = json.loads(caught.value.read())
    assert logins and logins[0] <= 4, f"the sign-in was given {logins}"  # 0.75 x (6 s less the reserve)
    assert error["code"] != "deadline_exceeded" and HOST in error["message"], error
