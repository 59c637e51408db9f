"""The connector interface, the same as the flyte SDK's ``flyte.connectors``.

A connector written for the flyte SDK ports by changing its imports only::

    from connectors import AsyncConnector, ConnectorRegistry, Resource, ResourceMeta

Subclass :class:`ResourceMeta` (a dataclass) for what identifies the remote job, implement
``create``/``get``/``delete`` and optionally ``get_metrics``/``get_logs`` on an
:class:`AsyncConnector`, and register an instance with ``ConnectorRegistry.register``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar, Union

from flyteidl2.connector.connector_pb2 import GetTaskLogsResponse, GetTaskMetricsResponse, TaskExecutionMetadata
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl2.core.tasks_pb2 import TaskTemplate

from .job_events import JobEvents

__all__ = ["AsyncConnector", "Resource", "ResourceMeta"]

_Self = TypeVar("_Self", bound="ResourceMeta")


@dataclass
class ResourceMeta:
    """What a connector needs to find its remote job again (a job id, a query id...).

    ``encode()`` is the dataclass as JSON; ``decode()`` rebuilds it, nested dataclasses included.
    The service keeps the encoded bytes in its task store; the executor never sees them.
    """

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode("utf-8")

    @classmethod
    def decode(cls: type[_Self], data: bytes) -> _Self:
        return _from_dict(cls, json.loads(data.decode("utf-8")))


def _from_dict(cls: type, value: Any) -> Any:
    """Rebuild a dataclass (and the dataclasses, lists and dicts inside it) from plain JSON data."""
    if not (dataclasses.is_dataclass(cls) and isinstance(value, dict)):
        return value
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in value:
            kwargs[field.name] = _from_hint(hints.get(field.name, Any), value[field.name])
    return cls(**kwargs)


def _from_hint(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_dict(hint, value)
    if origin is Union or origin is types.UnionType:  # Optional[X], and X | None
        for arg in args:
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return _from_dict(arg, value)
        return value
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list):
        items = [_from_hint(args[0], item) for item in value]
        return items if origin is list else origin(items)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _from_hint(args[1], v) for k, v in value.items()}
    return value


@dataclass
class Resource:
    """The state of a remote job, as a connector's ``get`` reports it.

    ``outputs`` holds native Python values keyed by output name; the service converts them to
    Flyte literals using the task's declared output types.
    """

    phase: TaskExecution.Phase
    message: str | None = None
    log_links: list[TaskLog] | None = None
    outputs: dict[str, Any] | None = None
    custom_info: dict[str, Any] | None = None


M = TypeVar("M", bound=ResourceMeta)


class AsyncConnector(ABC, Generic[M]):
    """Base class of every connector: start, watch and stop one kind of remote job.

    The service looks a connector up by ``(task_type_name, task_type_version)``. Besides the
    arguments named here, ``create``/``get``/``delete`` receive as keyword arguments the
    request's ``connection.secrets`` and ``connection.configs``, and ``create`` also receives
    ``idempotency_token``: a string derived from the task execution id, the same on every
    retry of one attempt, to hand to the remote API so that it never starts a job twice.
    Accept ``**kwargs`` for what you do not use.
    """

    name: str = "Async Connector"
    task_type_name: str
    task_type_version: int = 0
    metadata_type: type[M]
    # For a remote API with no client token, whose create finds an earlier try's job by a look-up
    # that lags (an eventually consistent list): how long after a create whose outcome is unknown
    # before it may be replayed with the same token (by a retry, a newer attempt or the reaper).
    replay_settle_seconds: float = 0.0
    # How long after an attempt's first create a replay with its token still finds the job that
    # create started, as the remote documents its key (a client token kept N days, a name unique
    # while the job exists: ``timedelta.max``). None: the remote documents no window, and the
    # deployment's REPLAY_WINDOW_MINUTES bounds it. Past the window a create whose answer was lost
    # is not replayed (a replay could start a second job): its record ends saying where to look.
    replay_window: timedelta | None = None

    def replay_hint(
        self, task_template: TaskTemplate, idempotency_token: str, task_execution_metadata: TaskExecutionMetadata
    ) -> str:
        """Where a person finds the job a create with this request and token would have started
        (a job name, a client token, a tag): said when such a create is not replayed."""
        return f"a job started with idempotency token {idempotency_token}"

    # The state-change events its remote publishes (connectors/job_events.py); None: it has none,
    # and every poll reads the job's status (at most once per StatusReadIntervalSeconds).
    job_events: ClassVar[JobEvents | None] = None

    @abstractmethod
    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> M:
        """Start the remote job and return what identifies it."""
        raise NotImplementedError

    @abstractmethod
    async def get(self, resource_meta: M, **kwargs: Any) -> Resource:
        """Report the job's phase, and its outputs once it has succeeded."""
        raise NotImplementedError

    @abstractmethod
    async def delete(self, resource_meta: M, **kwargs: Any) -> None:
        """Cancel the job. Must be idempotent; raise only when cancelling failed."""
        raise NotImplementedError

    def job_key(self, resource_meta: M) -> str | None:
        """With ``job_events``: the key its events carry for the job ``create`` started."""
        return None

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: M) -> Resource | None:
        """With ``job_events``: the phase and message an event's detail tells, as ``get`` would
        report them (no outputs); None when it does not tell (the next poll reads the job)."""
        return None

    async def get_metrics(self, resource_meta: M, **kwargs: Any) -> GetTaskMetricsResponse:
        """Optional: metrics of the job. The service answers ``unimplemented`` when absent."""
        raise NotImplementedError

    def get_logs(
        self, resource_meta: M, **kwargs: Any
    ) -> Coroutine[Any, Any, GetTaskLogsResponse] | AsyncIterator[GetTaskLogsResponse]:
        """Optional: logs of the job, a coroutine returning one response or an async generator."""
        raise NotImplementedError
