"""An ASGI app served by uvicorn on a free loopback port, in a background thread.

For tests and benchmarks that need the app behind a real HTTP server in the same process::

    with BackgroundServer(create_app(service)) as server:
        client = AsyncConnectorServiceClientSync(server.url)
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .local_dynamodb import HOST, free_port


class BackgroundServer:
    def __init__(self, app: Any, *, start_timeout: float = 20.0, **uvicorn_options: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        options = {"log_level": "warning", "lifespan": "off", **uvicorn_options}
        self._server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=self.port, **options))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._start_timeout = start_timeout

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
