"""Metrics: CloudWatch embedded metric format (EMF), collected per invocation, written once at its end.

Named after flyte's own connector metrics (flyte/connectors/_server.py) so that a team's
dashboards translate; ``operation`` takes flyte's values (create, get, delete) and, for the
operations flyte's server does not count, get_metrics, get_logs, get_connector, list_connectors:

- ``flyte_connector_requests_success_total`` {task_type, operation}
- ``flyte_connector_requests_failure_total`` {task_type, operation, error_code} (a Connect code)
- ``flyte_connector_request_latency_seconds`` {task_type, operation}: the whole request
- ``flyte_connector_call_latency_ms`` {task_type, operation}: the connector's own call (its remote)
- ``flyte_connector_tasks_created_total`` {task_type}
- ``flyte_connector_tasks_superseded_total`` / ``flyte_connector_tasks_reaped_total`` {task_type}:
  jobs cancelled for a newer attempt / because no executor polled them
- ``flyte_connector_cancel_failures_total`` {task_type, reason}: superseded or abandoned
- ``flyte_connector_reaper_failures_total``, ``flyte_connector_reaper_skipped_total`` {} : per reaper pass
- ``flyte_connector_suspected_orphans_total`` {task_type}: creates whose answer was lost, not
  replayed past their connector's replay window: their job, if it started, runs unobserved
- ``flyte_connector_status_events_total`` {outcome}: the jobs' state-change events the
  StatusEventsFunction received (connectors/event_queue.py), by what became of each: applied,
  due (the next poll reads the job), unchanged, ended, unknown_job (not a job of this service),
  not_ours, malformed, failed (delivered again), not_started (left for the next delivery)
- ``ColdStart`` {function_name}: Powertools' own name

Every document also carries the ``service`` dimension (POWERTOOLS_SERVICE_NAME) when set, and the
request id as a (searchable, not a dimension) key. Dimensions are only bounded sets: a task type
the service serves (``unknown`` until it is known), an operation, a Connect code; never a run or
an action. The namespace is POWERTOOLS_METRICS_NAMESPACE (default ``FlyteConnectors``).
Metrics are written in Lambda unless POWERTOOLS_METRICS_DISABLED is true (``false`` turns them on
elsewhere too); outside an invocation (``make serve``) nothing is collected.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from . import logs

NAMESPACE = "FlyteConnectors"
REQUESTS_SUCCESS = "flyte_connector_requests_success_total"
REQUESTS_FAILURE = "flyte_connector_requests_failure_total"
REQUEST_LATENCY = "flyte_connector_request_latency_seconds"
CALL_LATENCY = "flyte_connector_call_latency_ms"
TASKS_CREATED = "flyte_connector_tasks_created_total"
TASKS_SUPERSEDED = "flyte_connector_tasks_superseded_total"
TASKS_REAPED = "flyte_connector_tasks_reaped_total"
CANCEL_FAILURES = "flyte_connector_cancel_failures_total"
REAPER_FAILURES = "flyte_connector_reaper_failures_total"
REAPER_SKIPPED = "flyte_connector_reaper_skipped_total"
SUSPECTED_ORPHANS = "flyte_connector_suspected_orphans_total"
STATUS_EVENTS = "flyte_connector_status_events_total"
COLD_START = "ColdStart"
UNKNOWN = "unknown"

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def enabled() -> bool:
    switch = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower()
    if switch in _TRUE or switch in _FALSE:
        return switch in _FALSE
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class _Batch:
    """One invocation's metrics, by dimension set (an EMF document shares one set of values)."""

    def __init__(self) -> None:
        self.groups: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, list[float]]]] = {}

    def add(self, name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
        metrics = self.groups.setdefault(tuple(sorted(dimensions.items())), {})
        values = metrics.setdefault(name, (unit, []))[1]
        if unit == "Count" and values:  # counts add up: one value, however many tasks a reaper pass takes
            values[0] += value
        else:
            values.append(value)


_batch: ContextVar[_Batch | None] = ContextVar("metrics_batch", default=None)


def add(name: str, unit: str, value: float, **dimensions: str) -> None:
    """Count ``value`` in this invocation's metrics; nothing outside one (or when disabled)."""
    batch = _batch.get()
    if batch is not None:
        batch.add(name, unit, value, dimensions)


@contextlib.contextmanager
def collecting(context: Any) -> Iterator[None]:
    """Collect this invocation's metrics and write them when it ends, whatever its outcome."""
    if not enabled():
        yield
        return
    batch = _Batch()
    token = _batch.set(batch)
    if logs.was_cold_start():
        add(COLD_START, "Count", 1, function_name=str(getattr(context, "function_name", UNKNOWN)))
    try:
        yield
    finally:
        _batch.reset(token)
        flush(batch, getattr(context, "aws_request_id", None))


def flush(batch: _Batch, request_id: str | None = None) -> None:
    """One EMF document per dimension set, each one line on stdout (CloudWatch Logs takes it)."""
    if not batch.groups:
        return
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
    lines = []
    for dimensions, metrics in batch.groups.items():
        provider = AmazonCloudWatchEMFProvider(namespace=namespace, metric_set={}, dimension_set={}, metadata_set={})
        for dimension, label in dimensions:
            provider.add_dimension(dimension, label)
        if request_id:
            provider.add_metadata("function_request_id", request_id)
        for name, (unit, values) in metrics.items():
            for value in values:  # Powertools writes a document of its own at each 100th value
                provider.add_metric(name, unit, value)
        if provider.metric_set:
            lines.append(json.dumps(provider.serialize_metric_set(), separators=(",", ":")))
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


# -- what the hooks count ----------------------------------------------------------------------


def request(operation: str, code: str | None, seconds: float) -> None:
    """One request's outcome (``code`` None: success) and latency, under the task type the
    service found for it."""
    task_type = logs.request_key("task_type") or UNKNOWN
    if code is None:
        add(REQUESTS_SUCCESS, "Count", 1, task_type=task_type, operation=operation)
    else:
        add(REQUESTS_FAILURE, "Count", 1, task_type=task_type, operation=operation, error_code=code)
    add(REQUEST_LATENCY, "Seconds", seconds, task_type=task_type, operation=operation)


def connector_call(task_type: str, operation: str, seconds: float) -> None:
    add(CALL_LATENCY, "Milliseconds", seconds * 1000, task_type=task_type, operation=operation)


def task_created(task_type: str) -> None:
    add(TASKS_CREATED, "Count", 1, task_type=task_type)


def task_cancelled(task_type: str, reason: str, ok: bool) -> None:
    """A canceller's outcome: ``reason`` is ``superseded`` or ``abandoned``."""
    if not ok:
        add(CANCEL_FAILURES, "Count", 1, task_type=task_type, reason=reason)
    elif reason in ("superseded", "abandoned"):
        add(TASKS_SUPERSEDED if reason == "superseded" else TASKS_REAPED, "Count", 1, task_type=task_type)


def suspected_orphan(task_type: str) -> None:
    """A create whose outcome is unknown, past its replay window: its job, if any, runs unobserved."""
    add(SUSPECTED_ORPHANS, "Count", 1, task_type=task_type)


def reaper_pass(failed: int, skipped: int) -> None:
    """Every pass counts its failures, 0 included, so that an alarm on them always has data."""
    add(REAPER_FAILURES, "Count", failed)
    add(REAPER_SKIPPED, "Count", skipped)


def status_event(outcome: str) -> None:
    """One state-change event's outcome (the receiver's word, spaces as underscores)."""
    add(STATUS_EVENTS, "Count", 1, outcome=outcome.replace(" ", "_"))


__all__ = [
    "NAMESPACE",
    "add",
    "collecting",
    "connector_call",
    "enabled",
    "flush",
    "reaper_pass",
    "request",
    "status_event",
    "suspected_orphan",
    "task_cancelled",
    "task_created",
]
