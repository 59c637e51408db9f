"""``connectors relay``: run the relay until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from .retry import DEFAULT_MAX_ATTEMPTS
from .server import serve

__all__ = ["main"]


def main(
    listen: str,
    endpoint: str,
    *,
    region: str | None = None,
    unsigned: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    metrics_listen: str | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (calls in flight get 10 s to finish). 2 on a configuration error."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # httpx logs every request at INFO: one line per executor poll
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await serve(
            endpoint,
            listen,
            region=region,
            unsigned=unsigned,
            stop=stopping,
            max_attempts=max_attempts,
            metrics_listen=metrics_listen,
        )

    try:
        asyncio.run(run())
    except (ValueError, RuntimeError, OSError) as error:  # bad endpoint or flag, no region, no credentials, port taken
        print(f"connectors relay: {error}", file=sys.stderr)
        return 2
    return 0
