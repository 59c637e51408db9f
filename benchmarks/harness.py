"""What the benchmarks that run against local AWS share: the local AWS itself (moto's server on
loopback, with connectors/dev/fake_aws, and the environment the service expects of it), a call
to the fake AWS's own API, and the percentile their tables print."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.dev.local_dynamodb import LOCAL_ENV, LocalDynamoDB  # noqa: E402


@contextlib.contextmanager
def local_aws(log_level: int | None = logging.CRITICAL) -> Iterator[LocalDynamoDB]:
    """moto's server on loopback, the local environment (``LOCAL_ENV``, where not set already)
    around it; logging configured at ``log_level`` first (None: left as it is)."""
    if log_level is not None:
        logging.basicConfig(level=log_level)
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    with LocalDynamoDB() as server:
        yield server


def fake_aws(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The fake AWS's own API (``/moto-api/...``): GET, or POST ``body``; its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{endpoint}{path}", data=data, method="POST" if data else "GET")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the loopback fake AWS
        return json.loads(answer.read() or b"null")


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of ``samples``, nearest rank; NaN for none."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")
