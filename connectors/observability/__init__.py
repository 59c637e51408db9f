"""What the people on call see of the Lambda functions: log lines, metrics and traces.

- :mod:`.logs`: JSON lines in Lambda (Powertools' formatter) carrying the invocation's and the
  request's keys (request id, function, operation, task type, run, action, attempt); readable
  text for people (``make serve``, ``LOG_FORMAT=text``).
- :mod:`.metrics`: CloudWatch embedded metric format, named after flyte's connector metrics,
  collected per invocation and written once at its end.
- :mod:`.tracing`: X-Ray subsegments around connector and store calls, when tracing is on (the
  X-Ray SDK is imported only then).

Each hook is one call from the service, the cancellers, the reaper, the store or the runtime.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import logs, metrics


def _code(error: BaseException) -> str:
    code = getattr(getattr(error, "code", None), "value", None)  # a ConnectError's Connect code
    if isinstance(code, str):
        return code
    return "internal" if isinstance(error, Exception) else "canceled"  # as the transports answer them


@contextlib.contextmanager
def _request(operation: str) -> Iterator[None]:
    """One request: its log lines carry ``operation``; its outcome, Connect code and latency are
    counted as it ends, however it ends."""
    logs.start_request(operation)
    started, code = time.perf_counter(), None
    try:
        yield
    except BaseException as error:
        code = _code(error)
        raise
    finally:
        metrics.request(operation, code, time.perf_counter() - started)


def observed(operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A service method as one request: its log lines carry ``operation`` (and the task keys the
    method adds), and its outcome, Connect code and latency are counted. Takes coroutine
    functions and async generator functions (a stream counts once, when it ends)."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream(*args: Any, **kwargs: Any) -> Any:
                with _request(operation):
                    async for message in method(*args, **kwargs):
                        yield message

            return stream

        @functools.wraps(method)
        async def unary(*args: Any, **kwargs: Any) -> Any:
            with _request(operation):
                return await method(*args, **kwargs)

        return unary

    return decorate
