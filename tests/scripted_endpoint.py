"""A loopback HTTP endpoint that answers every call with one scripted response, standing in for an
AWS service (``AWS_ENDPOINT_URL_<SERVICE>``) to send what moto never does: an error page from a
proxy, an error code only the service model documents."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.builtin.aws import base


def answering(status: int, content_type: str, body: bytes) -> type[BaseHTTPRequestHandler]:
    class Answer(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Answer


@contextlib.contextmanager
def scripted_endpoint(
    monkeypatch: pytest.MonkeyPatch, env_name: str, status: int, content_type: str, body: bytes
) -> Iterator[str]:
    """Point ``env_name`` (``AWS_ENDPOINT_URL_GLUE``...) at an endpoint that answers ``body``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), answering(status, content_type, body))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(env_name, url)
    base.reset_clients()
    try:
        yield url
    finally:
        server.shutdown()
        monkeypatch.delenv(env_name)
        base.reset_clients()
