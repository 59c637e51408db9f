"""Flyte SDK connectors, served here where the flyte SDK is installed.

The Lambda package has no flyte SDK, and then this module does nothing (it never imports flyte).
A deployment that installs it (a user who builds a larger package, with flyte and some
``flyteplugins-*``) also serves the connectors that the SDK's own connector server finds:

1. the ``flyte.connectors`` entry points, loaded at cold start as the SDK's server loads them
   (``FLYTE_SDK_CONNECTORS``: ``all``, the default; ``none``; or a comma-separated list of
   entry-point names, each of which must then exist and load);
2. every connector then in flyte's ``flyte.connectors.ConnectorRegistry`` (the entry points'
   modules register there when imported, as may modules named in ``CONNECTOR_MODULES``),
   registered here behind a :class:`FlyteSdkConnector` adapter, unless this service already
   serves that task category: the built-ins (and ``CONNECTOR_MODULES``) win, which is logged.

The adapter gives the SDK connector what the SDK's server would: ``flyte.io.File``/``Dir``/
``DataFrame`` for the service's ``FileRef``/``DirRef``/``DataFrameRef`` inputs (and the reverse
for its outputs); its own ``metadata_type`` to encode and decode its ResourceMeta; only the keyword
arguments that each of its methods takes (by name, or all with ``**kwargs``): the service's own
(``idempotency_token``, ``task_execution_metadata``, the ``get_logs``/``get_metrics`` arguments,
of which the SDK's server passes fewer) and the connection's secrets and configs; its
``Resource`` as ours. A registry miss is then also an instance of the SDK's
``FlyteConnectorNotFound``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flyteidl2.connector.connector_pb2 import TaskExecutionMetadata
from flyteidl2.core.tasks_pb2 import TaskTemplate

from . import registry as _registry
from .connector import AsyncConnector, Resource
from .literals.references import DataFrameRef, DirRef, FileRef, flyte_io_to_ref
from .registry import ConnectorNotFound, ConnectorRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "FLYTE_SDK_CONNECTORS_ENV",
    "FlyteSdkConnector",
    "adapt",
    "flyte_sdk_installed",
    "from_flyte_io",
    "load_entry_points",
    "load_flyte_sdk_connectors",
    "to_flyte_io",
]

logger = logging.getLogger(__name__)

FLYTE_SDK_CONNECTORS_ENV = "FLYTE_SDK_CONNECTORS"
ENTRY_POINT_GROUP = "flyte.connectors"  # as flyte/connectors/utils.py (_load_connectors) reads it


def flyte_sdk_installed() -> bool:
    """Whether the flyte SDK can be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec("flyte") is not None
    except (ImportError, ValueError):
        return False


# -- loading ---------------------------------------------------------------------------------------


def load_flyte_sdk_connectors(registry: ConnectorRegistry, selection: str | None = None) -> list[str]:
    """Serve the flyte SDK's connectors in ``registry`` (cold start); the task types added.

    Nothing happens (and flyte is not imported) where the SDK is not installed. ``selection`` is
    as ``FLYTE_SDK_CONNECTORS`` (default: the environment variable, else ``all``).
    """
    chosen = (selection if selection is not None else os.environ.get(FLYTE_SDK_CONNECTORS_ENV, "")).strip()
    if not flyte_sdk_installed():
        return []
    if chosen.lower() == "none" and "flyte.connectors" not in sys.modules:
        return []  # no entry points, and nothing imported flyte's registry: do not import flyte for it
    try:
        from flyte.connectors import ConnectorRegistry as SdkRegistry
    except ImportError as error:  # flyte without its connector extras: nothing of it to serve
        logger.warning(
            "the flyte SDK is installed but flyte.connectors does not import (%s): no flyte SDK connectors served",
            error,
        )
        return []
    install_flyte_not_found()
    load_entry_points(selection)
    added: list[str] = []
    for sdk_connector in list(SdkRegistry._REGISTRY.values()):
        key = (sdk_connector.task_type_name, int(sdk_connector.task_type_version))
        if key in registry:
            logger.info(
                "flyte SDK connector %s (%s) not served for task type %s (version %s): "
                "this service serves that task type already",
                sdk_connector.name,
                type(sdk_connector).__name__,
                *key,
            )
            continue
        registry.register(adapt(sdk_connector))
        logger.info("serving flyte SDK connector %s for task type %s (version %s)", sdk_connector.name, *key)
        added.append(key[0])
    return added


def load_entry_points(selection: str | None = None) -> list[str]:
    """Import the ``flyte.connectors`` entry points chosen by ``selection``; the names loaded.

    ``all`` (or empty) loads every one and, as the SDK's server does, logs and skips one that
    fails; a list of names loads those, and a name that is missing or fails is an error here.
    """
    chosen = (selection if selection is not None else os.environ.get(FLYTE_SDK_CONNECTORS_ENV, "")).strip()
    if chosen.lower() == "none":
        return []
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    strict = chosen.lower() not in ("", "all")
    names = [name.strip() for name in chosen.split(",") if name.strip()] if strict else sorted(found)
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(
            f"{FLYTE_SDK_CONNECTORS_ENV} names {', '.join(missing)}, which no installed package "
            f"offers as a {ENTRY_POINT_GROUP} entry point (found: {', '.join(sorted(found)) or 'none'})"
        )
    loaded = []
    for name in names:
        logger.info("loading flyte SDK connector entry point %s (%s)", name, found[name].value)
        try:
            found[name].load()
        except Exception as error:
            if strict:
                raise
            logger.warning("flyte SDK connector entry point %s failed to load: %s", name, error)
            continue
        loaded.append(name)
    return loaded


def install_flyte_not_found() -> None:
    """Make the registry's misses also instances of the SDK's ``FlyteConnectorNotFound`` (flyte imported)."""
    from flyte.connectors._connector import FlyteConnectorNotFound

    if issubclass(_registry.not_found_class, FlyteConnectorNotFound):
        return
    _registry.not_found_class = type(
        "ConnectorNotFound",
        (ConnectorNotFound, FlyteConnectorNotFound),
        {
            "__module__": ConnectorNotFound.__module__,
            "__doc__": "A registry miss: this service's ConnectorNotFound, also the flyte SDK's FlyteConnectorNotFound.",
        },
    )


# -- flyte.io values -------------------------------------------------------------------------------


def to_flyte_io(value: Any) -> Any:
    """``value`` with every FileRef/DirRef/DataFrameRef (in lists, tuples and dicts too) as the
    ``flyte.io.File``/``Dir``/``DataFrame`` the flyte SDK's server would hand a connector."""
    if isinstance(value, (FileRef, DirRef, DataFrameRef)):
        import flyte.io

        if isinstance(value, DataFrameRef):
            return flyte.io.DataFrame(uri=value.uri, format=value.format, hash=value.hash)
        kind = flyte.io.File if isinstance(value, FileRef) else flyte.io.Dir
        return kind(path=value.uri, format=value.format, hash=value.hash)
    return _map_containers(value, to_flyte_io)


def from_flyte_io(value: Any) -> Any:
    """``value`` with every ``flyte.io.File``/``Dir``/``DataFrame`` (in lists, tuples and dicts
    too) as this service's FileRef/DirRef/DataFrameRef."""
    ref = flyte_io_to_ref(value)
    return ref if ref is not value else _map_containers(value, from_flyte_io)


def _map_containers(value: Any, convert: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {key: convert(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return type(value)(convert(item) for item in value)
    return value


# -- the adapter -----------------------------------------------------------------------------------


def _accepted(method: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments ``method`` takes; None when it takes any (``**kwargs``) or has no signature."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


class FlyteSdkConnector(AsyncConnector[Any]):
    """One of ours that serves a flyte SDK connector (``flyte.connectors.AsyncConnector``).

    Same name, task category and ResourceMeta class (``metadata_type``) as the SDK connector;
    ``secret_names``, ``replay_settle_seconds`` and ``replay_window`` (a timedelta, or seconds) as it
    declares them, if it does. Without a ``replay_window``, a create whose answer was lost is
    replayed only within the deployment's REPLAY_WINDOW_MINUTES: whether the SDK connector's remote
    honours ``idempotency_token``, and how long, is not known here.
    """

    def __init__(self, sdk_connector: Any) -> None:
        self.sdk_connector = sdk_connector
        self.name = sdk_connector.name
        self.task_type_name = sdk_connector.task_type_name
        self.task_type_version = int(sdk_connector.task_type_version)
        self.metadata_type = sdk_connector.metadata_type
        self.replay_settle_seconds = float(getattr(sdk_connector, "replay_settle_seconds", 0) or 0)
        window = getattr(sdk_connector, "replay_window", None)
        self.replay_window = (
            window if window is None or isinstance(window, timedelta) else timedelta(seconds=float(window))
        )
        self.secret_names = tuple(getattr(sdk_connector, "secret_names", ()) or ())
        self._takes = {
            method: _accepted(getattr(sdk_connector, method))
            for method in ("create", "get", "delete", "get_logs", "get_metrics")
        }

    def _kwargs(self, method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Of ``kwargs``, those the SDK connector's ``method`` takes: all if it has ``**kwargs``."""
        takes = self._takes[method]
        return kwargs if takes is None else {name: value for name, value in kwargs.items() if name in takes}

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> Any:
        offered = {
            "output_prefix": output_prefix,
            "inputs": to_flyte_io(inputs),
            "task_execution_metadata": task_execution_metadata,
            **kwargs,
        }
        return await self.sdk_connector.create(task_template=task_template, **self._kwargs("create", offered))

    async def get(self, resource_meta: Any, **kwargs: Any) -> Resource:
        return as_resource(await self.sdk_connector.get(resource_meta=resource_meta, **self._kwargs("get", kwargs)))

    async def delete(self, resource_meta: Any, **kwargs: Any) -> None:
        await self.sdk_connector.delete(resource_meta=resource_meta, **self._kwargs("delete", kwargs))


async def _get_metrics(self: FlyteSdkConnector, resource_meta: Any, **kwargs: Any) -> Any:
    return await self.sdk_connector.get_metrics(resource_meta=resource_meta, **self._kwargs("get_metrics", kwargs))


def _get_logs(self: FlyteSdkConnector, resource_meta: Any, **kwargs: Any) -> Any:
    # A coroutine (one response) or an async generator (several), as the SDK connector gives it.
    return self.sdk_connector.get_logs(resource_meta=resource_meta, **self._kwargs("get_logs", kwargs))


def adapt(sdk_connector: Any) -> FlyteSdkConnector:
    """A :class:`FlyteSdkConnector` for ``sdk_connector`` that offers ``get_logs``/``get_metrics``
    only where the SDK connector implements them (else the service answers ``unimplemented``)."""
    from flyte.connectors import AsyncConnector as SdkAsyncConnector

    methods = {
        name: fn
        for name, fn in (("get_metrics", _get_metrics), ("get_logs", _get_logs))
        if getattr(type(sdk_connector), name) is not getattr(SdkAsyncConnector, name)
    }
    cls = type(f"FlyteSdk{type(sdk_connector).__name__}", (FlyteSdkConnector,), {**methods, "__module__": __name__})
    return cls(sdk_connector)


def as_resource(resource: Any) -> Resource:
    """The SDK connector's ``Resource`` as ours (same fields), its flyte.io outputs as references."""
    if isinstance(resource, Resource):
        return resource
    outputs = getattr(resource, "outputs", None)
    return Resource(
        phase=resource.phase,
        message=getattr(resource, "message", None),
        log_links=getattr(resource, "log_links", None),
        outputs=from_flyte_io(outputs) if isinstance(outputs, dict) else outputs,
        custom_info=getattr(resource, "custom_info", None),
    )
