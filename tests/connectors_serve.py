"""`connectors serve` (what `make serve` runs) as a child process on free ports, for the tests that
talk to it as curl and the executor do: started, waited for until it answers ListConnectors, and
stopped with SIGINT as a terminal's Ctrl-C stops it, its output kept for the test to read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from connectors.dev.local_dynamodb import HOST, free_port

ROOT = Path(__file__).resolve().parents[1]
# The test run's own endpoints and table: the served app makes its own (its embedded AWS, its table).
TEST_ENVIRONMENT = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "TASKS_TABLE")


@dataclass
class Serving:
    port: int
    aws_port: int
    process: subprocess.Popen[str]
    output: str = ""  # all it printed, once stopped

    @property
    def api(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def aws(self) -> str:
        """The embedded AWS (moto's server with the fake AWS), on the DynamoDB port."""
        return f"http://{HOST}:{self.aws_port}"


@contextlib.contextmanager
def connectors_serve(
    without: tuple[str, ...] = TEST_ENVIRONMENT,
    env: dict[str, str] | None = None,
    listen_seconds: float = 60,
    stop_seconds: float = 20,
) -> Iterator[Serving]:
    """Serve on free ports with this process's environment less ``without`` plus ``env``; yield
    once it answers ListConnectors (within ``listen_seconds``); stop it on leaving."""
    port, aws_port = free_port(), free_port()
    environment = {key: value for key, value in os.environ.items() if key not in without}
    environment |= {"PORT": str(port), "DYNAMODB_PORT": str(aws_port), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "serve"],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    serving = Serving(port, aws_port, process)
    try:
        deadline = time.monotonic() + listen_seconds
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:  # its own answer: another worker's server may hold the free port a moment
                listed = httpx.post(
                    f"{serving.api}/flyteidl2.connector.ConnectorMetadataService/ListConnectors", json={}
                )
                if listed.status_code == 200 and "connectors" in listed.json():
                    break
            except (httpx.TransportError, ValueError):
                pass
            assert time.monotonic() < deadline, f"connectors serve did not listen within {listen_seconds:g} s"
            time.sleep(0.2)
        yield serving
    finally:
        process.send_signal(signal.SIGINT)
        serving.output, _ = process.communicate(timeout=stop_seconds)
