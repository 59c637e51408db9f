"""Log lines: JSON in Lambda (Powertools' formatter), readable text for people.

In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) each line is one JSON object with Powertools' keys
(level, location, message, timestamp, service, xray_trace_id) and the keys of this invocation
(function_request_id, function_name, cold_start) and of this request (principal and caller_arn:
who signed it, read from API Gateway's event by the transport; operation, task_type, run, action,
attempt), set where the service learns them. ``LOG_FORMAT=text`` (or running outside
Lambda, as ``make serve`` does) keeps the plain lines; ``LOG_FORMAT=json`` forces JSON.

The keys live in context variables: each request (an asyncio task) and each store call (a
thread that copies the context) sees its own, and nothing outlives the request. They are names
the executor chose for its run and the service's own words: never a secret, never an input value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Each is set to a new dict, never changed in place: the shared default is read-only.
_NO_KEYS: Mapping[str, Any] = MappingProxyType({})
_invocation_keys: ContextVar[Mapping[str, Any]] = ContextVar("log_invocation_keys", default=_NO_KEYS)
_request_keys: ContextVar[Mapping[str, Any]] = ContextVar("log_request_keys", default=_NO_KEYS)
# Who signed the request (connectors/caller.py): set by the transport before the service starts
# the request's own keys, so every line of the request has them, an unexpected error's too.
_caller_keys: ContextVar[Mapping[str, Any]] = ContextVar("log_caller_keys", default=_NO_KEYS)
_cold_start = True


def json_lines() -> bool:
    """JSON lines in Lambda unless ``LOG_FORMAT=text``; text elsewhere unless ``LOG_FORMAT=json``."""
    wanted = os.environ.get("LOG_FORMAT", "").strip().lower()
    if wanted in ("json", "text"):
        return wanted == "json"
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class _KeysFilter(logging.Filter):
    """Puts this invocation's and request's keys on each record (Powertools' formatter writes a
    record's extra attributes as keys); a key the log call passed itself wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in {**_invocation_keys.get(), **_caller_keys.get(), **_request_keys.get()}.items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


_KEYS = _KeysFilter()


class _Stdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a line is logged (Lambda sends stdout to
    CloudWatch Logs; a test captures it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _json_formatter() -> logging.Formatter:
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or "flyte-connectors"
    # The traceback is in "exception" already; its structured copy would double each error line.
    return LambdaPowertoolsFormatter(json_default=str, utc=True, service=service, serialize_stacktrace=False)


def configure(level: str) -> None:
    """Set the root logger up: JSON lines (:func:`json_lines`) on Lambda's own handler, or on a
    stdout handler of ours when there is none; else plain text on stderr as before."""
    root = logging.getLogger()
    lambda_handlers = [h for h in root.handlers if type(h).__name__.startswith("LambdaLoggerHandler")]
    ours = [h for h in root.handlers if isinstance(h, _Stdout)]
    if json_lines():
        if not lambda_handlers and not ours:
            ours = [_Stdout()]
            root.addHandler(ours[0])
        formatter = _json_formatter()
        for handler in lambda_handlers + ours:
            handler.setFormatter(formatter)
            handler.addFilter(_KEYS)  # a no-op when already there
    else:
        for handler in ours:
            root.removeHandler(handler)
        if not root.handlers:  # Lambda installs its own handler; locally we add one
            logging.basicConfig(format=TEXT_FORMAT)
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")


@contextlib.contextmanager
def invocation_keys(context: Any) -> Iterator[None]:
    """The Lambda invocation's keys (Powertools' names) for every line logged within."""
    global _cold_start
    keys = {
        "function_request_id": getattr(context, "aws_request_id", None),
        "function_name": getattr(context, "function_name", None),
        "cold_start": _cold_start,
    }
    _cold_start = False
    token = _invocation_keys.set({k: v for k, v in keys.items() if v is not None})
    request = _request_keys.set({})
    try:
        yield
    finally:
        _request_keys.reset(request)
        _invocation_keys.reset(token)


def was_cold_start() -> bool:
    """Whether the current invocation is this process's first."""
    return bool(_invocation_keys.get().get("cold_start"))


@contextlib.contextmanager
def caller_keys(principal: str, caller_arn: str) -> Iterator[None]:
    """The request's signer on every line logged within: ``principal`` as its record keeps it
    (an assumed role without its session), ``caller_arn`` as API Gateway gave it."""
    token = _caller_keys.set({k: v for k, v in (("principal", principal), ("caller_arn", caller_arn)) if v})
    try:
        yield
    finally:
        _caller_keys.reset(token)


def start_request(operation: str) -> None:
    """A new request in this context: its operation, and none of an earlier request's keys."""
    _request_keys.set({"operation": operation})


def add_keys(**keys: Any) -> None:
    """Keys for the rest of this request (in this context and those copied from it later)."""
    _request_keys.set({**_request_keys.get(), **{k: v for k, v in keys.items() if v is not None and v != ""}})


def task_keys(
    task_type: str | None = None, execution: dict[str, str] | None = None, attempt: int | None = None
) -> None:
    """A task's keys: its type, and its run and action by name (the record keys only their digest)."""
    execution = execution or {}
    add_keys(task_type=task_type, run=execution.get("run"), action=execution.get("action"), attempt=attempt)


def request_key(name: str) -> Any:
    return _request_keys.get().get(name)


def invocation_key(name: str) -> Any:
    return _invocation_keys.get().get(name)


__all__ = [
    "add_keys",
    "caller_keys",
    "configure",
    "invocation_keys",
    "json_lines",
    "request_key",
    "start_request",
    "task_keys",
]
