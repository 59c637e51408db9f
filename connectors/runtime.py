"""Process-wide wiring, built once per process (a Lambda cold start, or `connectors serve`).

Settings from the environment, the default registry (filled here: the built-ins, then
CONNECTOR_MODULES, then the flyte SDK's connectors), one DynamoDB client, the task store and the
service core. Handlers call :func:`lambda_handler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import snapstart
from .builtin import builtin_connectors
from .connector_calls import invocation_deadline, request_arrived_at
from .flyte_sdk import load_flyte_sdk_connectors
from .observability import logs, metrics, tracing
from .registry import ConnectorRegistry, LazyConnector
from .service import ConnectorService
from .settings import Settings
from .store import TaskStore, new_client

logger = logging.getLogger(__name__)

CONNECTOR_MODULES_ENV = "CONNECTOR_MODULES"

_load_lock = threading.Lock()
_loaded = False


def load_default_connectors(modules: str | None = None) -> ConnectorRegistry:
    """Fill the default registry once per process: built-ins (less ``DISABLED_CONNECTORS``), then
    ``CONNECTOR_MODULES``, then the flyte SDK's connectors where it is installed (connectors/flyte_sdk.py).

    ``modules`` is a comma-separated list of importable module names (default: the environment
    variable). Each module registers its connectors when imported. An import error or a
    duplicate category fails here, at cold start, rather than on some later request.
    """
    global _loaded
    with _load_lock:
        registry = ConnectorRegistry.default()
        if _loaded:
            return registry
        for connector in builtin_connectors():
            if isinstance(connector, LazyConnector):
                registry.register_lazy(connector)
            else:
                registry.register(connector)
        names = modules if modules is not None else os.environ.get(CONNECTOR_MODULES_ENV, "")
        for name in filter(None, (part.strip() for part in names.split(","))):
            logger.info("loading connector module %s", name)
            importlib.import_module(name)
        load_flyte_sdk_connectors(registry)  # where the flyte SDK is installed (FLYTE_SDK_CONNECTORS)
        _loaded = True
        return registry


def configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    root = logging.getLogger()
    logs.configure(level)  # JSON lines in Lambda, text for people (LOG_FORMAT)
    # botocore logs request parameters at DEBUG and credential lookups at INFO: keep it quieter.
    logging.getLogger("botocore").setLevel(max(root.level, logging.WARNING))


class LazyClient:
    """A DynamoDB client built on first use, and built again after :meth:`reset` (a SnapStart
    restore, connectors/snapstart.py). The metadata function never calls the store, so it never
    builds one."""

    def __init__(self, factory: Callable[[], Any] = new_client) -> None:
        self._factory = factory
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._factory()
        return getattr(self._client, name)

    @property
    def built(self) -> bool:
        return self._client is not None

    def reset(self) -> None:
        self._client = None


def build_service(
    settings: Settings | None = None, client: Any = None, registry: ConnectorRegistry | None = None
) -> ConnectorService:
    """The service core: the store on ``client`` (default: one built on first use), ``registry`` (default: the
    process-wide one, built-ins plus CONNECTOR_MODULES)."""
    settings = settings or Settings.from_env()
    store = TaskStore(
        settings.tasks_table,
        client if client is not None else LazyClient(),
        active_retention_days=settings.active_retention_days,
        terminal_retention_days=settings.terminal_retention_days,
    )
    return ConnectorService(registry if registry is not None else load_default_connectors(), store, settings)


@functools.cache
def default_service() -> ConnectorService:
    configure_logging()
    service = build_service()
    snapstart.register(service)  # no-op outside a SnapStart-enabled Lambda
    tracing.tracer()  # when on, the X-Ray SDK loads during init (and into a SnapStart snapshot), not in a request
    return service


def _ensure_event_loop() -> None:
    """Mangum runs each event on the thread's current event loop; an ``asyncio.run`` elsewhere in
    the process (the reaper, a test) leaves none behind, so make one when it is missing."""
    try:
        if not asyncio.get_event_loop_policy().get_event_loop().is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


@contextlib.contextmanager
def invocation(context: Any, event: dict | None = None) -> Iterator[None]:
    """Within this block connector calls end before Lambda kills the invocation (``context``
    tells its time left), and a caller's timeout counts from when API Gateway took the request
    (``requestContext.timeEpoch``); outside it both are gone again (tests invoke in-process)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = invocation_deadline.set(time.monotonic() + remaining() / 1000 if callable(remaining) else None)
    epoch_ms = ((event or {}).get("requestContext") or {}).get("timeEpoch")
    arrived = request_arrived_at.set(epoch_ms / 1000 if isinstance(epoch_ms, (int, float)) else None)
    try:
        with (
            logs.invocation_keys(context),
            metrics.collecting(context),
        ):  # its log keys; its metrics, written at its end
            yield
    finally:
        invocation_deadline.reset(deadline)
        request_arrived_at.reset(arrived)


def lambda_handler(
    operations: Iterable[str], *, health: bool = False, service: ConnectorService | None = None
) -> Callable[[dict, Any], dict]:
    """A Lambda handler (API Gateway HTTP API events) serving ``operations`` only, on ``service``
    (default: :func:`default_service`)."""
    from mangum import Mangum

    from .transport import create_app
    from .transport.answer_limit import limit_answers

    app = create_app(service if service is not None else default_service(), operations, health=health)
    # Mangum writes an access line at INFO whose REST path carries the task's handle (what a
    # GetTask or DeleteTask needs): never in the logs, whatever LOG_LEVEL says. The service logs
    # each call its own way, without the handle.
    logging.getLogger("mangum").setLevel(logging.WARNING)
    adapter = limit_answers(Mangum(app, lifespan="off"))  # an answer Lambda cannot return: resource_exhausted

    def handler(event: dict, context: Any) -> dict:
        _ensure_event_loop()
        with invocation(context, event):
            return adapter(event, context)

    return handler
