"""The static registry: which connector serves which task category, a plain look-up.

Connectors register at import, as with the flyte SDK::

    ConnectorRegistry.register(MyConnector())

Called on the class, ``register``/``get_connector``/``list_connectors`` act on the process-wide
default registry, which the runtime fills once per process (cold start) with the built-in
connectors, the modules named in ``CONNECTOR_MODULES`` and the flyte SDK's connectors
(:func:`connectors.runtime.load_default_connectors`). This module knows none of them: it imports
no connector. Tests build their own ``ConnectorRegistry()`` instances and call the same methods
on them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flyteidl2.connector.connector_pb2 import Connector as ConnectorProto
from flyteidl2.connector.connector_pb2 import TaskCategory

from .connector import AsyncConnector
from .errors import Code, ConnectError

__all__ = ["ConnectorNotFound", "ConnectorRegistry", "LazyConnector"]


class ConnectorNotFound(ConnectError):
    """No connector serves the task category (or connector name) asked for: ``not_found``."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.NOT_FOUND, message)


# The class a registry miss raises: ConnectorNotFound, or (where the flyte SDK imports) a subclass
# that is also its FlyteConnectorNotFound, set at cold start by connectors/flyte_sdk.py.
not_found_class: type[ConnectorNotFound] = ConnectorNotFound


class _on_default_or_instance:
    """A method that acts on the default registry when called on the class itself."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: ConnectorRegistry | None, cls: type[ConnectorRegistry]) -> Callable[..., Any]:
        return functools.partial(self._fn, obj if obj is not None else cls.default())


def _category_text(name: str, version: int) -> str:
    return f"{name} (version {version})"


@dataclass(frozen=True)
class LazyConnector:
    """A connector registered by what ListConnectors tells, its module imported on first use, so
    that a function that never serves it never pays for importing it (cold start)."""

    task_type_name: str
    task_type_version: int
    name: str
    load: Callable[[], AsyncConnector[Any]]
    # As the connector class declares it (connectors/connector.py): known before it is loaded.
    replay_settle_seconds: float = 0.0


class ConnectorRegistry:
    """Connectors keyed by (task type name, task type version); metadata keyed by connector name."""

    _default: ConnectorRegistry | None = None

    def __init__(self, connectors: Iterable[AsyncConnector[Any]] = ()) -> None:
        self._connectors: dict[tuple[str, int], AsyncConnector[Any]] = {}
        self._lazy: dict[tuple[str, int], LazyConnector] = {}
        self._load_lock = threading.Lock()
        self._metadata: dict[str, ConnectorProto] = {}
        for connector in connectors:
            self.register(connector)

    @classmethod
    def default(cls) -> ConnectorRegistry:
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
        self._add(key, connector.name, override, type(connector).__name__)
        self._connectors[key] = connector

    def register_lazy(self, lazy: LazyConnector, override: bool = False) -> None:
        """Add a connector that is imported when a request first needs it."""
        key = (lazy.task_type_name, int(lazy.task_type_version))
        self._add(key, lazy.name, override, lazy.name)
        self._connectors.pop(key, None)
        self._lazy[key] = lazy

    def _add(self, key: tuple[str, int], name: str, override: bool, what: str) -> None:
        if key in self and not override:
            registered = self._connectors.get(key)
            held = type(registered).__name__ if registered is not None else self._lazy[key].name
            raise ValueError(
                f"Duplicate connector for task type: {key[0]} and version: {key[1]} "
                f"({held} is registered already, not {what})"
            )
        self._lazy.pop(key, None)
        category = TaskCategory(name=key[0], version=key[1])
        metadata = self._metadata.setdefault(name, ConnectorProto(name=name))
        if category not in metadata.supported_task_categories:
            metadata.supported_task_categories.append(category)

    @_on_default_or_instance
    def get_connector(self, task_type_name: str, task_type_version: int = 0) -> AsyncConnector[Any]:
        """The connector for a task category, or ``not_found`` naming the categories served."""
        key = (task_type_name, int(task_type_version))
        connector = self._connectors.get(key) or (self._load(key) if key in self._lazy else None)
        if connector is None:
            served = ", ".join(_category_text(*known) for known in sorted(self._keys())) or "none"
            raise not_found_class(
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
            raise not_found_class(f"Cannot find connector for name: {name}; this service has: {known}")
        return metadata

    def _load(self, key: tuple[str, int]) -> AsyncConnector[Any]:
        with self._load_lock:
            if key not in self._connectors:
                lazy = self._lazy[key]
                connector = lazy.load()
                if (connector.task_type_name, int(connector.task_type_version)) != key:
                    raise TypeError(
                        f"{lazy.name} loaded {type(connector).__name__}, which serves "
                        f"{connector.task_type_name} (version {connector.task_type_version}), not {key}"
                    )
                self._connectors[key] = connector
            return self._connectors[key]

    def connectors(self) -> list[AsyncConnector[Any]]:
        """Every connector served, the lazy ones loaded (the status-events function needs each
        one's ``job_events``)."""
        return [self.get_connector(*key) for key in sorted(self._keys())]

    def _keys(self) -> set[tuple[str, int]]:
        return set(self._connectors) | set(self._lazy)

    def max_replay_settle_seconds(self) -> float:
        """The longest ``replay_settle_seconds`` of any connector served, loaded or not."""
        settles = [float(getattr(c, "replay_settle_seconds", 0) or 0) for c in self._connectors.values()]
        settles += [lazy.replay_settle_seconds for lazy in self._lazy.values()]
        return max(settles, default=0.0)

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._connectors or key in self._lazy
