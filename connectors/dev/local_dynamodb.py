"""An embedded DynamoDB-compatible server for development and tests: moto's server on loopback.

Started as a child process (``python -m moto.server``) so that a test can stop and restart it
like a real outage; it answers real HTTP, so boto3 and the store run exactly as on AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

HOST = "127.0.0.1"

# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local DynamoDB server exited with code {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the local DynamoDB server did not listen on {HOST}:{port} within {timeout:g} s")


class LocalDynamoDB:
    """``with LocalDynamoDB(port) as db:`` runs moto's server; ``db.endpoint_url`` reaches it."""

    def __init__(self, port: int | None = None, *, quiet: bool = True) -> None:
        self.port = port or free_port()
        self._quiet = quiet
        self._process: subprocess.Popen[Any] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalDynamoDB:
        # The fake AWS imports moto and every service it patches: ~10 s alone, far more on a
        # 2-core machine running four test workers.
        out = subprocess.DEVNULL if self._quiet else None
        env = {**os.environ, **{k: os.environ.get(k, v) for k, v in LOCAL_ENV.items()}}
        if self._quiet:  # its output is discarded: no line per request to format and write
            env.setdefault("FAKE_AWS_REQUEST_LOG", "0")
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module and a port number
            [sys.executable, "-m", "connectors.dev.fake_aws", "-H", HOST, "-p", str(self.port)],
            stdout=out,
            stderr=out,
            env=env,
        )
        try:
            _wait_for_port(self.port, self._process, timeout)
        except BaseException:
            self.stop()  # one that did not listen in time is not left running (``with`` calls no __exit__)
            raise
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalDynamoDB:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
