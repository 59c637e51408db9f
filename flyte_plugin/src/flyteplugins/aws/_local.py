"""Local runs: the service package's own connector, called in-process.

flyte's ``AsyncConnectorExecutorMixin.execute`` runs a connector task locally by looking its
task type up in flyte's ``ConnectorRegistry`` and calling ``create``/``get`` with flyte's native
values. On a task's first local execute, :func:`run_locally` registers there an adapter
(:class:`LocalConnector`) around the connector class the service runs for that task type
(``connectors.builtin.aws.<module>.<Class>``), so a local run reaches AWS through the same code
as a remote one:

- inputs go the way the service receives them: flyte's own conversion to literals, then the
  service's (``connectors.literals``) to its native values (``FileRef``/``DirRef``/
  ``DataFrameRef``, int, str, datetime...);
- ``create`` gets a ``task_execution_metadata`` naming the local run and action, and an
  idempotency token derived from it as the service derives one (each local attempt its own);
- outputs go back the same way: the service's conversion to literals under the declared types,
  then flyte's to ``flyte.io.File``/``Dir``/``DataFrame`` and the other declared types;
- a local run that is cancelled (Ctrl-C) deletes the job it started.

The service package (``connectors``, the flyte-aws-connectors distribution) is not a dependency
of flyteplugins-aws: when it is missing, a local run says what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import importlib
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flyte.connectors import AsyncConnector, ConnectorRegistry, Resource, ResourceMeta

__all__ = ["ConnectorNotInstalled", "LocalConnector", "connector_for", "idempotency_token", "run_locally"]

INSTALL_HINT = (
    "Install the connector service package next to flyteplugins-aws, from this project's repository: "
    "pip install 'flyte-aws-connectors @ git+<repository URL>' (in a checkout: pip install -e . -e ./flyte_plugin). "
    "Remote runs need no such install: the connector service runs the task."
)


class ConnectorNotInstalled(ImportError):
    """A local run of an AWS task needs the service package's connector, which is not installed."""


@dataclass
class _Run:
    """One local execute of one task: what the adapter needs from it, and the jobs it started."""

    task: Any
    started: list[LocalMeta] = field(default_factory=list)


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("flyteplugins_aws_local_run", default=None)
_REGISTER_LOCK = threading.Lock()


async def run_locally(task: Any, execute: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
    """Run ``execute`` (the SDK mixin's) with this task's connector registered in flyte."""
    connector = connector_for(task)
    run = _Run(task)
    token = _RUN.set(run)
    try:
        return await execute(**kwargs)
    except (asyncio.CancelledError, KeyboardInterrupt):
        for started in run.started:  # the SDK's loop does not abort a remote job; this does
            with contextlib.suppress(Exception):  # the cancellation is what the caller must see
                await connector.delete(started)
        raise
    finally:
        _RUN.reset(token)


def connector_for(task: Any) -> AsyncConnector:
    """The connector flyte's registry holds for this task type, registering ours if there is none."""
    from flyte.connectors._connector import FlyteConnectorNotFound

    with _REGISTER_LOCK:
        try:
            return ConnectorRegistry.get_connector(task.task_type, task.task_type_version)
        except FlyteConnectorNotFound:
            pass
        module_name, class_name = task._CONNECTOR.split(":")
        try:
            connector_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ConnectorNotInstalled(
                f"{type(task).__name__} {task.name!r} runs locally through the {task.task_type} connector of the "
                f"flyte-aws-connectors service package ({module_name}.{class_name}), which cannot be loaded here "
                f"({type(error).__name__}: {error}). {INSTALL_HINT}"
            ) from error
        adapter = LocalConnector(connector_class())
        ConnectorRegistry.register(adapter)
        return adapter


@dataclass
class LocalMeta(ResourceMeta):
    """The service connector's own resource meta, with what a local get needs to read outputs."""

    meta: Any = None
    task: Any = None
    template: Any = None

    def encode(self) -> bytes:
        return self.meta.encode()


class LocalConnector(AsyncConnector):
    """flyte's connector interface around a connector of the service package."""

    metadata_type = LocalMeta

    def __init__(self, connector: Any) -> None:
        self.connector = connector
        self.name = f"{connector.name} (local)"
        self.task_type_name = connector.task_type_name
        self.task_type_version = connector.task_type_version
        self._attempts: dict[tuple, int] = {}

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        run = _RUN.get()
        if run is None:
            raise RuntimeError(f"{self.name} serves local runs of flyteplugins.aws tasks only")
        metadata = task_execution_metadata or self._metadata()
        token = kwargs.pop("idempotency_token", None) or idempotency_token(metadata)
        native = await _service_inputs(run.task, task_template, inputs or {})
        meta = await self.connector.create(
            task_template, output_prefix, native, metadata, idempotency_token=token, **kwargs
        )
        started = LocalMeta(meta=meta, task=run.task, template=task_template)
        run.started.append(started)
        return started

    # flyte's interface: get and delete receive a metadata_type (LocalMeta), which its types cannot say.
    async def get(self, resource_meta: LocalMeta, **kwargs) -> Resource:  # type: ignore[override]
        from flyteidl2.core.execution_pb2 import TaskExecution

        found = await self.connector.get(resource_meta.meta, **kwargs)
        outputs = None
        if found.phase == TaskExecution.SUCCEEDED:
            outputs = await _flyte_outputs(resource_meta.task, resource_meta.template, found.outputs or {})
        return Resource(
            phase=found.phase,
            message=found.message,
            log_links=found.log_links,
            outputs=outputs,
            custom_info=found.custom_info,
        )

    async def delete(self, resource_meta: LocalMeta, **kwargs) -> None:  # type: ignore[override]
        await self.connector.delete(resource_meta.meta, **kwargs)

    def _metadata(self) -> Any:
        """The task execution id of the local action: run name, action name, a local attempt count."""
        from flyte._context import internal_ctx
        from flyteidl2.connector.connector_pb2 import TaskExecutionMetadata
        from flyteidl2.core import identifier_pb2

        task_context = internal_ctx().data.task_context
        if task_context is None:  # create refuses any call outside a local run first
            raise RuntimeError(f"{self.name} serves local runs of flyteplugins.aws tasks only")
        action = task_context.action
        key = (action.org, action.project, action.domain, action.run_name, action.name)
        with _REGISTER_LOCK:
            attempt = self._attempts.get(key, -1) + 1
            self._attempts[key] = attempt
        return TaskExecutionMetadata(
            task_execution_id=identifier_pb2.TaskExecutionIdentifier(
                node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                    node_id=action.name,
                    execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                        org=action.org or "",
                        project=action.project or "",
                        domain=action.domain or "",
                        name=action.run_name or "",
                    ),
                ),
                retry_attempt=attempt,
            )
        )


def idempotency_token(metadata: Any) -> str:
    """32 hex characters, the same for one attempt: the service's derivation
    (connectors.store.record.TaskExecutionKey.idempotency_token)."""
    task_execution_id = metadata.task_execution_id
    node = task_execution_id.node_execution_id
    execution = node.execution_id
    parts = [
        execution.org,
        execution.project,
        execution.domain,
        execution.name,
        node.node_id,
        task_execution_id.retry_attempt,
    ]
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16, person=b"flyte-idem").hexdigest()


async def _service_inputs(task: Any, template: Any, values: dict[str, Any]) -> dict[str, Any]:
    """flyte's native inputs as the service hands them to a connector."""
    from flyte._internal.runtime.convert import convert_from_native_to_inputs

    from connectors import literals

    converted = await convert_from_native_to_inputs(task.native_interface, **values)
    return literals.inputs_to_native(converted.proto_inputs, template.interface)


async def _flyte_outputs(task: Any, template: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The connector's outputs as the task's declared flyte types, in declared order."""
    from flyte.types import TypeEngine
    from flyteidl2.core.literals_pb2 import LiteralMap

    from connectors import literals

    declared = task.native_interface.outputs
    missing = [name for name in declared if name not in values]
    if missing:
        raise RuntimeError(
            f"{task.name}: the {task.task_type} connector reported no output {missing[0]!r} "
            f"(it reported {sorted(values) or 'none'})"
        )
    converted = literals.native_to_outputs({name: values[name] for name in declared}, template.interface.outputs)
    literal_map = LiteralMap(literals={named.name: named.value for named in converted.literals})
    natives = await TypeEngine.literal_map_to_kwargs(literal_map, declared)
    return {name: natives[name] for name in declared}
