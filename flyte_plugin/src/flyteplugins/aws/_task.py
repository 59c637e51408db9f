"""What every AWS task class shares: the interface, the custom fields, the local-run hook.

A task class is ``AsyncConnectorExecutorMixin`` + ``flyte.extend.TaskTemplate`` (as
``flyteplugins.bigquery.BigQueryTask``): its task type routes it to the connector service, and
``custom_config()`` is the template's ``custom`` struct, the contract with the connector (the
field names of docs/flyte-tasks.md). Nothing here imports AWS libraries or the service package:
a workflow image needs only ``flyte``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from flyte import Cache
from flyte.connectors import AsyncConnectorExecutorMixin
from flyte.extend import TaskTemplate
from flyte.models import NativeInterface, SerializationContext

__all__ = ["AwsTask"]


class AwsTask(AsyncConnectorExecutorMixin, TaskTemplate):
    """Base of the AWS task classes; use one of them (``AthenaQueryTask``...), not this."""

    _TASK_TYPE: ClassVar[str] = ""
    # The connector class of the service package that runs this task type ("module:Class"):
    # a local run calls it in-process (flyteplugins.aws._local).
    _CONNECTOR: ClassVar[str] = ""
    # False for a job kind that gives no data outputs (Batch, Glue, EMR Serverless): the connector
    # refuses a task declaring some, so the class does too, where the author writes it.
    _GIVES_OUTPUTS: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        custom: Mapping[str, Any],
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        if outputs and not self._GIVES_OUTPUTS:
            raise TypeError(
                f"{type(self).__name__} {name!r}: a {self._TASK_TYPE} job gives no outputs, so the task "
                f"can declare none (got {', '.join(outputs)})"
            )
        super().__init__(
            name=name,
            # inspect.Parameter.empty is the SDK's "no default": every input is required (None
            # would be a default of None, which flyte deploy fails to convert and upload).
            interface=NativeInterface(
                {key: (kind, inspect.Parameter.empty) for key, kind in (inputs or {}).items()}, dict(outputs or {})
            ),
            task_type=self._TASK_TYPE,
            image=None,  # the connector service runs the task: no container image of its own
            # The SDK writes a container for a task that is not SQL and wants its environment's
            # name for it, even without an image. A task called from a workflow without being put
            # in an environment (flyte.TaskEnvironment.from_task) is its own one, so serializing
            # it (a run, remote or local) does not fail; from_task still renames it.
            parent_env_name=kwargs.pop("parent_env_name", None) or name,
            **kwargs,
        )
        self._custom = {key: value for key, value in custom.items() if value is not None}
        try:
            json.dumps(self._custom, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{type(self).__name__} {name!r}: its fields must be JSON values ({error})") from None
        self._pin_cache_version()

    @property
    def custom_fields(self) -> dict[str, Any]:
        """The template's custom fields (a copy)."""
        return copy.deepcopy(self._custom)

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return self.custom_fields

    def _pin_cache_version(self) -> None:
        """With ``cache="auto"`` the SDK hashes a task's function; these tasks have none, so the
        version would be empty and a changed query or job would keep hitting an old result. The
        version is the custom fields' digest instead (as flyteplugins.slurm's script task does)."""
        cache = self.cache
        if not isinstance(cache, Cache) or not cache.is_enabled() or cache.behavior != "auto":  # flyte made it a Cache
            return
        digest = hashlib.sha256(json.dumps([self._TASK_TYPE, self._custom], sort_keys=True, default=str).encode())
        self.cache = dataclasses.replace(cache, behavior="override", version_override=digest.hexdigest())

    async def execute(self, **kwargs: Any) -> Any:
        """A local run (``flyte.run`` in local mode): the service package's connector for this task
        type is registered in flyte's ConnectorRegistry and the SDK's mixin drives it here."""
        from ._local import run_locally

        return await run_locally(self, super().execute, kwargs)


def required(cls_name: str, **values: Any) -> None:
    """Refuse an empty required field early, naming it (the connector would refuse it too)."""
    for key, value in values.items():
        if value is None or value == "" or value == [] or value == {}:
            raise ValueError(f"{cls_name}: {key} is required")


def with_results(outputs: dict[str, type] | None, output_dataframe_type: type | None) -> dict[str, type]:
    """``outputs``, plus ``{"results": output_dataframe_type}`` when given (BigQueryTask's shape)."""
    declared = dict(outputs or {})
    if output_dataframe_type is not None:
        if "results" in declared:
            raise ValueError("output_dataframe_type declares the output 'results', which outputs declares too")
        declared["results"] = output_dataframe_type
    return declared
