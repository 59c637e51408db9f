"""Traces: X-Ray subsegments (Powertools Tracer) around connector and store calls, when tracing is on.

On when the function runs in Lambda and ``POWERTOOLS_TRACE_DISABLED`` is not true (the template
sets it from its tracing parameter, with the function's active tracing). Off, nothing is imported
and a hook costs one cached check. On, the first hook imports Powertools' Tracer and the X-Ray SDK
(``aws-xray-sdk``, the ``tracing`` extra: its import builds a sampling client, about 150-250 ms
once per cold start), patches botocore (each DynamoDB or Secrets Manager call is an AWS
subsegment of its own), and each connector call (``connector create``...) and store call
(``store update_item``...) becomes a subsegment annotated with the task type, operation and, on
failure, the Connect code only: never an exception's message or stack (a connector's error may
hold a secret; the service redacts what it logs, and X-Ray would not).

The X-Ray SDK keeps Lambda's current subsegment per thread: store calls run in threads of their
own, but connector calls that overlap on the event loop (a reaper's concurrent cancels, an
action's older attempts) may show nested under one another.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def enabled() -> bool:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUE:
        return False
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@functools.cache
def tracer() -> Any:
    """Powertools' Tracer when tracing is on and the X-Ray SDK is installed; else None."""
    if not enabled():
        return None
    if importlib.util.find_spec("aws_xray_sdk") is None:
        logger.warning("tracing is on but aws-xray-sdk is not installed (the 'tracing' extra): no subsegments")
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=["botocore"])


@contextlib.contextmanager
def subsegment(name: str, **annotations: Any) -> Iterator[None]:
    """A subsegment around the block (a no-op when tracing is off or there is no segment)."""
    active = tracer()
    if active is None:
        yield
        return
    recorder = active.provider
    segment = recorder.begin_subsegment(name)
    if segment is None:
        yield
        return
    try:
        for key, value in annotations.items():
            if value is not None:
                segment.put_annotation(key, value)
        yield
    except BaseException as error:
        code = getattr(getattr(error, "code", None), "value", None)  # a ConnectError's code, never its message
        if code:
            segment.put_annotation("code", code)
            segment.add_error_flag()
        else:
            segment.add_fault_flag()
        raise
    finally:
        recorder.end_subsegment()


def reset() -> None:
    """Decide again from the environment (tests)."""
    tracer.cache_clear()


__all__ = ["enabled", "reset", "subsegment", "tracer"]
