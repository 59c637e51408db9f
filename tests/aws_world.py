"""A test world for the AWS connectors: moto's server (patched by connectors.dev.fake_aws) over
HTTP, the service with the connectors under test served on loopback, a Connect client, and
boto3 clients on the same moto to count and steer what reached AWS.

    def test_x(aws_world):
        world = aws_world(AthenaQueryConnector())
        handle = world.create(world.request("athena_query", {"query": "select 1"}, outputs={"df": DATAFRAME}))
        resource = world.wait(handle, "athena_query")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core import interface_pb2, tasks_pb2, types_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.task import common_pb2
from google.protobuf.struct_pb2 import Struct

from connectors import literals
from connectors.connector import AsyncConnector
from connectors.dev.aws_resources import REGION, client_factory, create_example_resources
from connectors.errors import unavailable
from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import TaskHandle, TaskRecord
from connectors.store.record import TaskExecutionKey
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, make_table, scan_table
from tests.flyte_requests import execution_metadata

# Declared types, as the flyte SDK writes them.
INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)
FLOAT = types_pb2.LiteralType(simple=types_pb2.FLOAT)
STR = types_pb2.LiteralType(simple=types_pb2.STRING)
BOOL = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)
DATETIME = types_pb2.LiteralType(simple=types_pb2.DATETIME)
DATAFRAME = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType(format=""))
FILE = types_pb2.LiteralType(blob=types_pb2.BlobType(format="", dimensionality=types_pb2.BlobType.SINGLE))
DIR = types_pb2.LiteralType(blob=types_pb2.BlobType(format="", dimensionality=types_pb2.BlobType.MULTIPART))

TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}


def variable_map(types: dict[str, types_pb2.LiteralType]) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables=[
            interface_pb2.VariableEntry(key=name, value=interface_pb2.Variable(type=literal_type))
            for name, literal_type in types.items()
        ]
    )


def task_request(
    task_type: str,
    custom: dict[str, Any],
    *,
    inputs: dict[str, tuple[Any, Any]] | None = None,
    outputs: dict[str, types_pb2.LiteralType] | None = None,
    run: str | None = None,
    action: str = "a0",
    attempt: int = 0,
    secrets: dict[str, str] | None = None,
) -> pb.CreateTaskRequest:
    """A CreateTaskRequest as the executor sends it: ``inputs`` maps a name to (declared type,
    native value), converted to literals the way the flyte SDK writes them."""
    inputs = inputs or {}
    input_types = variable_map({name: declared for name, (declared, _) in inputs.items()})
    literal_inputs = literals.native_to_outputs({name: value for name, (_, value) in inputs.items()}, input_types)
    struct = Struct()
    struct.update(custom)
    return pb.CreateTaskRequest(
        inputs=common_pb2.Inputs(literals=list(literal_inputs.literals)),
        template=tasks_pb2.TaskTemplate(
            type=task_type,
            interface=interface_pb2.TypedInterface(inputs=input_types, outputs=variable_map(outputs or {})),
            custom=struct,
        ),
        output_prefix="s3://flyte-examples/outputs/prefix",
        task_execution_metadata=execution_metadata(run or f"r{uuid.uuid4().hex[:12]}", action, attempt),
        connection={"secrets": secrets or {}},
    )


# A connector call's deadline in these worlds. 15 s: a first call builds its boto3 clients, and CI
# runs four workers on two cores beside `make serve`; 5 s failed a Batch create there. Tests of a
# deadline set their own.
CALL_SECONDS = 15.0


class AwsWorld:
    def __init__(
        self, endpoint: str, dynamodb_client: Any, connectors: list[AsyncConnector[Any]], **settings: Any
    ) -> None:
        self.endpoint = endpoint
        self.dynamodb_client = dynamodb_client
        self.settings = Settings(
            tasks_table=make_table(dynamodb_client), **{"connector_timeout_seconds": CALL_SECONDS, **settings}
        )
        self.service = make_service(self.settings, dynamodb_client, ConnectorRegistry(connectors))
        self.server = ServedApp(create_app(self.service))
        self.boto = client_factory(endpoint)  # boto("athena"): the test's own view of AWS

    def __enter__(self) -> AwsWorld:
        self.server.__enter__()
        self.client = AsyncConnectorServiceClientSync(self.server.url)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    request = staticmethod(task_request)

    def create(self, request: pb.CreateTaskRequest) -> bytes:
        return self.client.create_task(request).resource_meta

    def poll(self, handle: bytes, task_type: str) -> pb.Resource:
        return self.client.get_task(
            pb.GetTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name=task_type))
        ).resource

    def wait(self, handle: bytes, task_type: str, timeout: float = 30.0, until: set[int] | None = None) -> pb.Resource:
        """Poll until the task reaches a phase in ``until`` (default: any terminal phase)."""
        until = until or TERMINAL
        ends = time.monotonic() + timeout
        while True:
            resource = self.poll(handle, task_type)
            if resource.phase in until:
                return resource
            if time.monotonic() > ends:
                raise AssertionError(f"still {TaskExecution.Phase.Name(resource.phase)} after {timeout} s: {resource}")
            time.sleep(0.2)

    def delete(self, handle: bytes, task_type: str) -> None:
        self.client.delete_task(
            pb.DeleteTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name=task_type))
        )

    def logs(self, handle: bytes, task_type: str) -> list[str]:
        request = pb.GetTaskLogsRequest(resource_meta=handle, task_category=pb.TaskCategory(name=task_type))
        lines: list[str] = []
        for part in self.client.get_task_logs(request):
            if part.HasField("body"):
                lines += [line.message for line in part.body.lines]
        return lines

    def outputs(self, resource: pb.Resource, types: dict[str, types_pb2.LiteralType]) -> dict[str, Any]:
        """The answered outputs as native values (FileRef, DataFrameRef...)."""
        return literals.inputs_to_native(
            common_pb2.Inputs(literals=list(resource.outputs.literals)),
            interface_pb2.TypedInterface(inputs=variable_map(types)),
        )

    def token(self, request: pb.CreateTaskRequest) -> str:
        """The attempt's idempotency token, as this world's service derives it."""
        return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token(
            self.settings.token_salt
        )

    def first_try(
        self, connector: AsyncConnector[Any], request: pb.CreateTaskRequest, inputs: dict[str, Any] | None = None
    ) -> Any:
        """connector.create as a CreateTask's first try that then crashed before its record was
        finished: called directly, with the attempt's token. Its ResourceMeta."""
        return asyncio.run(
            connector.create(
                request.template,
                request.output_prefix,
                inputs or {},
                request.task_execution_metadata,
                idempotency_token=self.token(request),
            )
        )

    def records(self, run: str | None = None) -> dict[int, TaskRecord]:
        found = [TaskRecord.from_item(item) for item in scan_table(self.dynamodb_client, self.settings.tasks_table)]
        return {r.attempt: r for r in found if run is None or r.execution.get("run") == run}

    def record(self, handle: bytes) -> TaskRecord:
        return self.service.store.load(TaskHandle.decode(handle))

    def error(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> ConnectError:
        with pytest.raises(ConnectError) as caught:
            call(*args, **kwargs)
        return caught.value

    def reap(self, **kwargs: Any) -> Any:
        return asyncio.run(reap_abandoned(self.service.canceller, **kwargs))

    # -- steering the fake ------------------------------------------------------------------

    def _post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the test's own moto server (http, loopback)
            f"{self.endpoint}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - as above
            text = answer.read()
        return json.loads(text) if text else None

    def fate(self, service: str, job: str, status: str, reason: str = "", **extra: Any) -> None:
        """Decide how a remote job ends (connectors.dev.fake_aws)."""
        self._post(
            "/moto-api/fake-aws/fate", {"service": service, "job": job, "status": status, "reason": reason, **extra}
        )

    @contextlib.contextmanager
    def faults(self, **settings: Any) -> Iterator[Callable[[], dict[str, Any]]]:
        """AWS's bad moments (connectors.dev.fake_aws.faults) while the block runs; off after it.
        Yields a function answering what the fake counted, per ``service:Operation``."""
        self._post("/moto-api/fake-aws/faults", {"reset_counts": True, "seed": 17, **settings})
        try:
            yield lambda: self._post("/moto-api/fake-aws/faults", {})["counts"]
        finally:
            self._post("/moto-api/fake-aws/faults", {"reset": True})

    def hold(self, model: str, polls: int = 1000) -> None:
        """Keep moto's ``model`` (``athena::execution``, ``batch::job``...) in each state for ``polls``
        describes: a job that stays running until the test lets it go."""
        self._post(
            "/moto-api/state-manager/set-transition",
            {"model_name": model, "transition": {"progression": "manual", "times": polls}},
        )

    def release(self, model: str) -> None:
        self._post("/moto-api/state-manager/unset-transition", {"model_name": model})


def crashes_once(connector_class: type[Any], settle_seconds: float = 1.0) -> type[Any]:
    """``connector_class`` whose create starts its job, then fails once as if its answer were
    lost (``unavailable``); its hold before a replay cut to ``settle_seconds`` so a test can wait."""

    class CrashesOnce(connector_class):  # type: ignore[misc, valid-type]
        crashed = False
        replay_settle_seconds = settle_seconds

        async def create(self, *args: Any, **kwargs: Any) -> Any:
            meta = await super().create(*args, **kwargs)
            if not type(self).crashed:
                type(self).crashed = True
                raise unavailable(f"the connection broke after {connector_class.__name__} started its job")
            return meta

    return CrashesOnce


@pytest.fixture(scope="session")
def aws_endpoint(dynamodb: Any) -> Iterator[str]:
    """moto's server (the same process as the test DynamoDB) for every AWS API, with the
    examples' resources created in it."""
    import os

    os.environ["AWS_ENDPOINT_URL"] = dynamodb.endpoint_url
    os.environ.setdefault("AWS_REGION", REGION)
    create_example_resources(dynamodb.endpoint_url)
    yield dynamodb.endpoint_url


@pytest.fixture
def aws_world(aws_endpoint: str, dynamodb_client: Any) -> Iterator[Callable[..., AwsWorld]]:
    worlds: list[AwsWorld] = []

    def make(*connectors: AsyncConnector[Any], **settings: Any) -> AwsWorld:
        world = AwsWorld(aws_endpoint, dynamodb_client, list(connectors), **settings).__enter__()
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.__exit__(None, None, None)
