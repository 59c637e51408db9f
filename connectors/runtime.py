"""Process-wide wiring, built once per process (a Lambda cold start, or `connectors serve`).

Settings from the environment, the default registry (built-ins plus CONNECTOR_MODULES), one
DynamoDB client, the task store and the service core. Handlers call :func:`lambda_handler`.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Iterable

from .registry import load_default_connectors
from .service import ConnectorService
from .settings import Settings
from .store import TaskStore, new_client


def configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    root = logging.getLogger()
    if not root.handlers:  # Lambda installs its own handler; locally we add one
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    # botocore logs request parameters at DEBUG and credential lookups at INFO: keep it quieter.
    logging.getLogger("botocore").setLevel(max(root.level, logging.WARNING))


def build_service(settings: Settings | None = None, client: Any = None) -> ConnectorService:
    settings = settings or Settings.from_env()
    store = TaskStore(
        settings.tasks_table,
        client if client is not None else new_client(),
        active_retention_days=settings.active_retention_days,
        terminal_retention_days=settings.terminal_retention_days,
    )
    return ConnectorService(load_default_connectors(), store, settings)


@functools.cache
def default_service() -> ConnectorService:
    configure_logging()
    return build_service()


def lambda_handler(operations: Iterable[str], *, health: bool = False) -> Any:
    """A Lambda handler (API Gateway HTTP API events) serving ``operations`` only."""
    from mangum import Mangum

    from .transport import create_app

    return Mangum(create_app(default_service(), operations, health=health), lifespan="off")
