"""The embedded moto server's child process does not outlive a start that failed."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from connectors.dev import local_dynamodb
from connectors.dev.local_dynamodb import LocalDynamoDB


def test_a_server_that_does_not_listen_in_time_is_stopped_not_left_running(monkeypatch):
    started: list[subprocess.Popen[Any]] = []
    popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(local_dynamodb.subprocess, "Popen", recording)
    try:
        # No moto server listens within 0 s; on a loaded machine the default can pass too,
        # and each server left behind loads it more.
        with pytest.raises(RuntimeError, match="did not listen"):
            LocalDynamoDB().start(timeout=0)
        (process,) = started
        assert process.poll() is not None, "the moto server that did not listen in time was left running"
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
