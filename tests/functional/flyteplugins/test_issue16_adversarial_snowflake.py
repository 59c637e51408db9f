"""Review of issue 16 item 6: Snowflake's sign-in under ``wait_for(to_thread(_connection), budget)``.

The budget is 0.75 x CONNECTOR_TIMEOUT_SECONDS, not 0.75 x the call's own time left: a caller
   whose deadline is shorter (Connect's connect-timeout-ms, grpc-timeout, the Lambda's remaining
   time in the reaper) gets "did not finish create within 1.5 s", not the host it cannot reach,
   and the sign-in thread runs on after the answer.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from connectrpc.errors import ConnectError as ClientConnectError
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

from connectors.builtin.flyteplugins import snowflake_connections
from connectors.errors import Code
from tests.functional.flyteplugins.test_snowflake import deployment_key, fake, request, world  # noqa: F401 - fixtures

HOST = "myorg-myaccount.snowflakecomputing.com"


def test_a_caller_deadline_shorter_than_the_budget_still_names_the_host(world, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "12")
    released = threading.Event()
    started: list[float] = []

    def blackholed(**params: Any) -> Any:
        started.append(1.0)
        released.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(snowflake_connections, "snowflake_connect", blackholed)
    client = AsyncConnectorServiceClientSync(world.server.url, timeout_ms=6000)
    try:
        with pytest.raises(ClientConnectError) as caught:
            client.create_task(request())
    finally:
        released.set()
    error = caught.value
    assert error.code != Code.DEADLINE_EXCEEDED and HOST in error.message, f"{error.code}: {error.message}"
