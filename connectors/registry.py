"""The static registry: which connector serves which task category.

Connectors register at import, as with the flyte SDK::

    ConnectorRegistry.register(MyConnector())

Called on the class, ``register``/``get_connector``/``list_connectors`` act on the process-wide
default registry, which :func:`load_default_connectors` fills once per process (cold start) with
the built-in connectors and the modules named in ``CONNECTOR_MODULES``. Tests build their own
``ConnectorRegistry()`` instances and call the same methods on them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
from typing import Any, Callable, Iterable, Iterator

from flyteidl2.connector.connector_pb2 import Connector as ConnectorProto
from flyteidl2.connector.connector_pb2 import TaskCategory

from .connector import AsyncConnector
from .errors import Code, ConnectError

__all__ = ["ConnectorNotFound", "ConnectorRegistry", "load_default_connectors"]

logger = logging.getLogger(__name__)

CONNECTOR_MODULES_ENV = "CONNECTOR_MODULES"


class ConnectorNotFound(ConnectError):
    """No connector serves the task category (or connector name) asked for: ``not_found``."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.NOT_FOUND, message)


class _on_default_or_instance:
    """A method that acts on the default registry when called on the class itself."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: "ConnectorRegistry | None", cls: type["ConnectorRegistry"]) -> Callable[..., Any]:
        return functools.partial(self._fn, obj if obj is not None else cls.default())


def _category_text(name: str, version: int) -> str:
    return f"{name} (version {version})"


class ConnectorRegistry:
    """Connectors keyed by (task type name, task type version); metadata keyed by connector name."""

    _default: "ConnectorRegistry | None" = None

    def __init__(self, connectors: Iterable[AsyncConnector[Any]] = ()) -> None:
        self._connectors: dict[tuple[str, int], AsyncConnector[Any]] = {}
        self._metadata: dict[str, ConnectorProto] = {}
        for connector in connectors:
            self.register(connector)

    @classmethod
    def default(cls) -> "ConnectorRegistry":
        """The process-wide registry that ``ConnectorRegistry.register(...)`` fills."""
        if cls._default is None:
            cls._default = ConnectorRegistry()
        return cls._default

    @_on_default_or_instance
    def register(self, connector: AsyncConnector[Any], override: bool = False) -> None:
        """Add a connector; a second one for the same category is an error unless ``override``."""
        for attribute in ("task_type_name", "metadata_type"):
            if not hasattr(connector, attribute):
                raise TypeError(f"{type(connector).__name__} must set {attribute!r} to be registered")
        key = (connector.task_type_name, int(connector.task_type_version))
        if key in self._connectors and not override:
            raise ValueError(
                f"Duplicate connector for task type: {key[0]} and version: {key[1]} "
                f"({type(self._connectors[key]).__name__} is registered already)"
            )
        self._connectors[key] = connector
        category = TaskCategory(name=key[0], version=key[1])
        metadata = self._metadata.setdefault(connector.name, ConnectorProto(name=connector.name))
        if category not in metadata.supported_task_categories:
            metadata.supported_task_categories.append(category)

    @_on_default_or_instance
    def get_connector(self, task_type_name: str, task_type_version: int = 0) -> AsyncConnector[Any]:
        """The connector for a task category, or ``not_found`` naming the categories served."""
        connector = self._connectors.get((task_type_name, int(task_type_version)))
        if connector is None:
            served = ", ".join(_category_text(*key) for key in sorted(self._connectors)) or "none"
            raise ConnectorNotFound(
                f"Cannot find connector for task type: {task_type_name} and version: {task_type_version}; "
                f"this service serves: {served}"
            )
        return connector

    @_on_default_or_instance
    def list_connectors(self) -> list[ConnectorProto]:
        return list(self._metadata.values())

    @_on_default_or_instance
    def get_connector_metadata(self, name: str) -> ConnectorProto:
        metadata = self._metadata.get(name)
        if metadata is None:
            known = ", ".join(sorted(self._metadata)) or "none"
            raise ConnectorNotFound(f"Cannot find connector for name: {name}; this service has: {known}")
        return metadata

    def __len__(self) -> int:
        return len(self._connectors)

    def __iter__(self) -> Iterator[AsyncConnector[Any]]:
        return iter(list(self._connectors.values()))

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._connectors


_load_lock = threading.Lock()
_loaded = False


def load_default_connectors(modules: str | None = None) -> ConnectorRegistry:
    """Fill the default registry once per process: built-ins (less ``DISABLED_CONNECTORS``), then
    ``CONNECTOR_MODULES``.

    ``modules`` is a comma-separated list of importable module names (default: the environment
    variable). Each module registers its connectors when imported. An import error or a
    duplicate category fails here, at cold start, rather than on some later request.
    """
    global _loaded
    with _load_lock:
        registry = ConnectorRegistry.default()
        if _loaded:
            return registry
        from .builtin import builtin_connector_classes

        for connector_type in builtin_connector_classes():
            registry.register(connector_type())
        names = modules if modules is not None else os.environ.get(CONNECTOR_MODULES_ENV, "")
        for name in filter(None, (part.strip() for part in names.split(","))):
            logger.info("loading connector module %s", name)
            importlib.import_module(name)
        _loaded = True
        return registry
