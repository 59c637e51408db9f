"""The relay's Prometheus metrics, named as flyte's own connector server names them.

A team that watches flyte's connector server (``flyte_connector_requests_success_total`` and the
rest) keeps its dashboards: the relay counts each call it answers under the same names and
labels, with ``operation`` spelled as flyte spells it (``create``, ``get``, ``delete``; and
``get_metrics``, ``get_logs``, ``get_connector``, ``list_connectors`` for the calls flyte's server
does not count) and ``task_type`` the request's task type (``""`` for the metadata calls).
``error_code`` is the gRPC status the executor got, spelled as a Connect code (``unavailable``,
``not_found``...), where flyte's server puts an HTTP status number. Relay-only metrics say how
often a call was sent again and why, and when retrying gave up.

Each relay has a registry of its own (several relays can run in one process, as in tests), with
the process and Python collectors; :meth:`RelayMetrics.serve` exposes it on ``/metrics`` in the
text exposition format.
"""

from __future__ import annotations

import threading

import grpc
from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import start_http_server

__all__ = ["OPERATIONS", "MetricsServer", "RelayMetrics", "error_code_label", "operation_of", "split_listen"]

PREFIX = "flyte_connector_"

# The method a procedure path ends with -> the operation label.
OPERATIONS = {
    "CreateTask": "create",
    "GetTask": "get",
    "DeleteTask": "delete",
    "GetTaskMetrics": "get_metrics",
    "GetTaskLogs": "get_logs",
    "GetConnector": "get_connector",
    "ListConnectors": "list_connectors",
}

# Calls take from a few ms (a poll) to API Gateway's 30 s (a CreateTask that waited on its remote).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

# Anyone who can reach the relay's port chooses the task type it names: past this many distinct
# ones, further ones are counted as "other", so a caller cannot grow the relay's memory. Only a
# task type the API has answered successfully takes one of these slots; one that has only failed
# so far (refused as no connector's, or failing while the API is throttled or down) takes a slot
# of a smaller pool of its own: made-up task types never crowd out the real ones.
MAX_TASK_TYPES = 200
MAX_UNCONFIRMED_TASK_TYPES = 50
MAX_TASK_TYPE_LENGTH = 100


def operation_of(procedure: str) -> str:
    """``/flyteidl2.connector.AsyncConnectorService/GetTask`` -> ``get``."""
    method = procedure.rsplit("/", 1)[-1]
    return OPERATIONS.get(method, method)


def error_code_label(code: grpc.StatusCode) -> str:
    """A gRPC status code as Connect spells it (``DEADLINE_EXCEEDED`` -> ``deadline_exceeded``)."""
    return "canceled" if code is grpc.StatusCode.CANCELLED else code.name.lower()


class MetricsServer:
    """The ``/metrics`` HTTP endpoint, in a daemon thread; ``port`` is the bound one."""

    def __init__(self, httpd, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.port: int = httpd.server_port

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class RelayMetrics:
    """The relay's counters and latency histogram, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._task_types: set[str] = set()  # answered successfully at least once
        self._unconfirmed: set[str] = set()  # only failed so far
        self._lock = threading.Lock()
        self.success = Counter(
            f"{PREFIX}requests_success_total",
            "Calls the relay answered successfully",
            ["task_type", "operation"],
            registry=self.registry,
        )
        self.failure = Counter(
            f"{PREFIX}requests_failure_total",
            "Calls the relay answered with an error, by the gRPC status the executor got (Connect spelling)",
            ["task_type", "operation", "error_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}request_latency_seconds",
            "Time the relay took to answer a call, retries included",
            ["task_type", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            f"{PREFIX}relay_retries_total",
            "Calls the relay sent to the API again, by why (unavailable, throttled, http_5xx, no_answer, signing)",
            ["operation", "reason"],
            registry=self.registry,
        )
        self.gave_up = Counter(
            f"{PREFIX}relay_retries_exhausted_total",
            "Retryable failures the relay answered "
            "without retrying, by the limit reached (attempts, deadline) and the failure's reason",
            ["operation", "reason", "limit"],
            registry=self.registry,
        )

    def task_type(self, name: str, succeeded: bool = True) -> str:
        """``name`` as a label value, or "other" past :data:`MAX_TASK_TYPES` distinct ones that
        ``succeeded`` (past :data:`MAX_UNCONFIRMED_TASK_TYPES` for those that have only failed)."""
        name = name[:MAX_TASK_TYPE_LENGTH]
        with self._lock:
            if name in self._task_types:
                return name
            pool, limit = (
                (self._task_types, MAX_TASK_TYPES) if succeeded else (self._unconfirmed, MAX_UNCONFIRMED_TASK_TYPES)
            )
            if name not in pool and len(pool) >= limit:
                return "other"
            pool.add(name)
            return name

    def answered(self, operation: str, task_type: str, code: grpc.StatusCode | None, seconds: float) -> None:
        """A call answered after ``seconds``: ``code`` None for success, else the gRPC status sent."""
        task_type = self.task_type(task_type, succeeded=code is None)
        self.latency.labels(task_type=task_type, operation=operation).observe(seconds)
        if code is None:
            self.success.labels(task_type=task_type, operation=operation).inc()
        else:
            self.failure.labels(task_type=task_type, operation=operation, error_code=error_code_label(code)).inc()

    def retried(self, operation: str, reason: str) -> None:
        self.retries.labels(operation=operation, reason=reason).inc()

    def exhausted(self, operation: str, reason: str, limit: str) -> None:
        self.gave_up.labels(operation=operation, reason=reason, limit=limit).inc()

    def serve(self, listen: str) -> MetricsServer:
        """Expose the registry over HTTP on ``listen`` (``host:port``; port 0 picks one)."""
        host, port = split_listen(listen)
        httpd, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(httpd, thread)


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9090`` for IPv6) -> (host, port); ValueError when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--metrics-listen must be host:port (like 0.0.0.0:9090), not {listen!r}")
    return host.strip("[]"), int(port)
