"""Calling a connector: under a deadline, with its failures as Connect errors.

The one place where the service and the cancellers (newer attempts, the reaper) call into a
connector. A call's deadline is the least of ``CONNECTOR_TIMEOUT_SECONDS``, the caller's own
deadline (Connect's connect-timeout-ms, gRPC's grpc-timeout) and the Lambda invocation's
remaining time, each less the time the store writes after the call need.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from flyteidl2.core.security_pb2 import Connection

from .connector import AsyncConnector
from .errors import ConnectError, deadline_exceeded, internal, invalid_argument, unimplemented
from .observability import metrics, tracing
from .remote_text import readable
from .settings import Settings
from .store import TaskRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

# When the caller's deadline ends (time.monotonic()), if it sent one: set per request by the transport.
request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)
# When this Lambda invocation is killed (time.monotonic()): set per event by the Lambda handler.
invocation_deadline: ContextVar[float | None] = ContextVar("invocation_deadline", default=None)
# When API Gateway took the request (time.time()), so that a caller's timeout counts from there
# (a cold start's init is not the caller's time to give): set per event by the Lambda handler.
request_arrived_at: ContextVar[float | None] = ContextVar("request_arrived_at", default=None)
# When the connector call running now must have finished (time.monotonic()), as the connector sees it.
_call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)
# The request's connection secret values: cut from every message a connector's failure or report
# puts in a log line, a record or an answer.
_secret_values: ContextVar[tuple[str, ...]] = ContextVar("secret_values", default=())
REDACTED = "***"
_MIN_REDACTED_LENGTH = 4  # shorter values would cut ordinary words out of messages
# Kept back from those deadlines for the store writes that follow a connector call (one
# conditional write answers in milliseconds; this leaves room for a botocore retry).
STORE_RESERVE_SECONDS = 1.0
# The least a call is given, so that a deadline already spent still answers deadline_exceeded.
MIN_CALL_SECONDS = 0.05

# The keyword arguments the service passes itself: a connection secret or config of the same
# name would collide with them (a TypeError in the connector) or silently replace them.
RESERVED_KWARGS = frozenset(
    {
        "self",
        "task_template",
        "output_prefix",
        "inputs",
        "task_execution_metadata",
        "idempotency_token",
        "resource_meta",
        "queries",
        "start_time",
        "end_time",
        "step",
        "token",
        "lines",
    }
)


def connection_kwargs(connection: Connection) -> dict[str, str]:
    """``connection.secrets`` and ``configs`` as keyword arguments, as the flyte SDK passes them;
    ``invalid_argument`` naming a key that collides with the service's own arguments or is both
    a secret and a config."""
    secrets, configs = dict(connection.secrets), dict(connection.configs)
    for name in sorted(set(secrets) | set(configs)):
        if name in RESERVED_KWARGS:
            where = "secret" if name in secrets else "config"
            raise invalid_argument(
                f"connection {where} {name!r} has the name of an argument the service passes "
                f"to the connector; rename it (reserved: {', '.join(sorted(RESERVED_KWARGS))})"
            )
    both = sorted(set(secrets) & set(configs))
    if both:
        raise invalid_argument(f"connection key {both[0]!r} is both a secret and a config; keep one")
    _secret_values.set(())
    add_redacted_values(secrets.values())
    return {**secrets, **configs}


def add_redacted_values(values: Iterable[str]) -> None:
    """Cut these secret values too (as they are, URL-quoted or JSON-escaped) from every message of
    this request: the request's own secrets, and those fetched for it from AWS."""
    values = {form for value in values for form in (value, value.strip())}  # a token sent with its newline
    forms = {
        form
        for value in values
        if len(value) >= _MIN_REDACTED_LENGTH
        for form in (
            value,
            quote(value),
            quote(value, safe=""),
            quote_plus(value),
            json.dumps(value)[1:-1],
            repr(value)[1:-1],
            repr(value.encode("utf-8", "replace"))[2:-1],
        )
    }
    _secret_values.set(tuple(sorted(forms | set(_secret_values.get()), key=len, reverse=True)))


def redact_data(value: Any) -> Any:
    """JSON-like data with this request's secrets cut from every string (keys included), and any
    number or boolean that is a secret replaced by ``***``: the structure stays valid."""
    if isinstance(value, dict):
        return {redact(str(k)): redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bool, int, float)) and {str(value), json.dumps(value)} & set(_secret_values.get()):
        return REDACTED
    return value


def redact(text: str) -> str:
    """``text`` with this request's connection secret values (as they are, URL-quoted or JSON-
    escaped) replaced by ``***``."""
    for value in _secret_values.get():
        text = text.replace(value, REDACTED)
    return text


# API Gateway gives up on an integration after 30 s: a request "older" than that is a replay.
API_GATEWAY_MAX_SECONDS = 30.0
_GRPC_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_GRPC_TIMEOUT = re.compile(r"[0-9]{1,8}[HMSmun]")


def set_request_deadline(timeout_seconds: float | None) -> None:
    """Set this request's deadline from the caller's timeout. In Lambda it counts from when API
    Gateway took the request (a cold start's init is not the caller's time to give)."""
    if timeout_seconds is None:
        request_deadline.set(None)
        return
    arrived = request_arrived_at.get()
    spent = max(0.0, time.time() - arrived) if arrived is not None else 0.0
    if spent > API_GATEWAY_MAX_SECONDS:  # not a live request (an event replayed by `connectors invoke`)
        spent = 0.0
    request_deadline.set(time.monotonic() + timeout_seconds - spent)


def grpc_timeout_seconds(header: str | None) -> float | None:
    """A ``grpc-timeout`` header's value (``500m``, ``10S``: at most 8 ASCII digits and a unit, as
    the gRPC spec says) in seconds; None if absent or malformed."""
    if not header or not _GRPC_TIMEOUT.fullmatch(header):
        return None
    return int(header[:-1]) * _GRPC_TIMEOUT_UNITS[header[-1]]


def deadline_passed() -> bool:
    """True when the caller's deadline (less the store's reserve) has already passed."""
    deadline = request_deadline.get()
    return deadline is not None and deadline - time.monotonic() - STORE_RESERVE_SECONDS <= MIN_CALL_SECONDS


def seconds_left(settings: Settings, reserve: float = STORE_RESERVE_SECONDS) -> float:
    """How long the next connector call may take."""
    timeout = settings.connector_timeout_seconds
    now = time.monotonic()
    for deadline in (request_deadline.get(), invocation_deadline.get()):
        if deadline is not None:
            timeout = min(timeout, deadline - now - reserve)
    return max(MIN_CALL_SECONDS, timeout)


def call_seconds_left() -> float | None:
    """Inside a connector call: the seconds left of its deadline (a connector that waits on a
    remote of its own, as a sign-in, stops before it to say what it waited for). None outside."""
    deadline = _call_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def invocation_seconds_left() -> float | None:
    """Seconds before this Lambda invocation is killed, or None outside Lambda."""
    deadline = invocation_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class ConnectorCalls:
    """Runs connector calls under the deadline and maps their failures to Connect codes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def call(
        self,
        connector: AsyncConnector[Any],
        operation: str,
        call: Awaitable[T],
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline this enforces and reports as deadline_exceeded
    ) -> T:
        timeout = seconds_left(self.settings) if timeout is None else timeout
        started = time.perf_counter()
        task_type = getattr(connector, "task_type_name", connector.name)
        marked = _call_deadline.set(time.monotonic() + timeout)  # the call's task copies it
        try:
            with tracing.subsegment(f"connector {operation}", task_type=task_type, operation=operation):
                try:  # the subsegment sees only the Connect error, redacted
                    return await asyncio.wait_for(call, timeout=timeout)
                except BaseException as error:
                    raise _as_connect_error(connector, operation, error, timeout) from None
        finally:
            _call_deadline.reset(marked)
            logger.debug("connector %s %s took %.3f s", connector.name, operation, time.perf_counter() - started)
            metrics.connector_call(task_type, operation, time.perf_counter() - started)

    async def stream(self, connector: AsyncConnector[Any], operation: str, result: Any) -> AsyncIterator[Any]:
        """The messages of a coroutine (one) or an async generator (each), all under one deadline."""
        if not inspect.isasyncgen(result):
            yield await self.call(connector, operation, result)
            return
        ends = time.monotonic() + seconds_left(self.settings, reserve=0.0)
        try:
            while True:
                remaining = max(MIN_CALL_SECONDS, ends - time.monotonic())
                try:
                    message = await asyncio.wait_for(result.__anext__(), timeout=remaining)
                except StopAsyncIteration:
                    return
                except BaseException as error:
                    raise _as_connect_error(connector, operation, error, remaining) from None
                yield message
        finally:
            await result.aclose()

    @staticmethod
    def failure(connector: AsyncConnector[Any], operation: str, error: BaseException) -> BaseException:
        """What a connector's failure outside a call (raised while starting one) is answered as,
        logged with its trace less this request's secrets, as :meth:`call` does."""
        return _as_connect_error(connector, operation, error, 0.0)

    def decode_meta(self, connector: AsyncConnector[Any], record: TaskRecord) -> Any:
        """The connector's ResourceMeta from its stored encoding; ``internal`` if it no longer decodes."""
        try:
            return connector.metadata_type.decode(record.resource_meta or b"")
        except Exception as error:
            logger.exception("stored resource meta of %s does not decode", record.name)
            raise internal(f"connector {connector.name} cannot read this task's stored metadata: {error}") from None


def log_connector_failure(
    connector: AsyncConnector[Any], operation: str, error: BaseException, after: str = ""
) -> None:
    """An ERROR line with the connector's failure and its trace, this request's secrets cut."""
    trace = redact("".join(traceback.format_exception(error)))
    logger.error("connector %s %s failed%s:\n%s", connector.name, operation, after, trace.rstrip())


def _as_connect_error(
    connector: AsyncConnector[Any], operation: str, error: BaseException, timeout: float
) -> BaseException:
    if isinstance(error, ConnectError):  # a remote's error page comes out as what a person reads
        # redacted before the cut and the folding (a secret cut in two or joined onto one line
        # would no longer match), and after them (one the page held HTML-escaped)
        message = redact(readable(redact(error.message)))
        return error if message == error.message else ConnectError(error.code, message)
    if isinstance(error, asyncio.TimeoutError):
        logger.error("connector %s %s took longer than %.1f s", connector.name, operation, timeout)
        return deadline_exceeded(f"connector {connector.name} did not finish {operation} within {timeout:.3g} s")
    if isinstance(error, NotImplementedError):
        return unimplemented(f"connector {connector.name} does not implement {operation}")
    if isinstance(error, Exception):
        log_connector_failure(connector, operation, error)
        return internal(redact(readable(redact(f"connector {connector.name} failed to {operation}: {error}"))))
    return error  # CancelledError, KeyboardInterrupt, SystemExit: not the connector's answer


__all__ = [
    "RESERVED_KWARGS",
    "ConnectorCalls",
    "add_redacted_values",
    "connection_kwargs",
    "invocation_deadline",
    "invocation_seconds_left",
    "log_connector_failure",
    "redact",
    "request_arrived_at",
    "request_deadline",
    "seconds_left",
]
