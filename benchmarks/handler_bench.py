"""The Lambda handlers called in process, as the benchmarks call them: a new table on local AWS
for them (:func:`with_local_table`), the handlers, the service they share and the DynamoDB meter
on its client (:class:`Bench`), the Lambda context they are handed, and the task store's clock
moved ahead by hand (:func:`clock_ahead`)."""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)  # Mangum asks for an event loop on 3.12

from dynamodb_meter import DynamoMeter, Usage  # noqa: E402
from harness import local_aws  # noqa: E402

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"


class LambdaContext:
    """The context the Lambda runtime hands a handler: what the handlers read of it."""

    function_name = "warm-benchmark"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def with_local_table(prefix: str, body: Callable[[], int], environment: dict[str, str] | None = None) -> int:
    """Run ``body`` with the handlers' environment pointing at a new table on a local moto server
    (and ``environment`` besides: CONNECTOR_MODULES, the functions' settings)."""
    with local_aws(log_level=None) as server:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint_url,
                "TASKS_TABLE": f"{prefix}-{uuid.uuid4().hex[:6]}",
                "LOG_LEVEL": "WARNING",
                "CONNECTOR_MODULES": "",
                **(environment or {}),
            }
        )
        return body()


class Bench:
    """The handlers, the service they share, and the meter on its DynamoDB client."""

    def __init__(self) -> None:
        import boto3
        from flyteidl2.connector import connector_pb2 as pb

        from connectors.runtime import default_service

        self.pb = pb
        self.service = default_service()
        self.service.store.create_table()
        self.handlers = {
            module: __import__(f"handlers.{module}", fromlist=["handler"]).handler
            for module in (
                "create_task",
                "get_task",
                "delete_task",
                "get_task_metrics",
                "get_task_logs",
                "connector_metadata",
            )
        }
        self.meter = DynamoMeter(
            self.service.store._client, self.service.store.table_name, describe_client=boto3.client("dynamodb")
        )

    @property
    def heartbeat_seconds(self) -> float:
        return self.service.settings.abandoned_after_minutes * 60 / 4

    def call(self, handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
        response = handler(event, LambdaContext())
        if response["statusCode"] != 200:
            body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response.get("body")
            raise RuntimeError(f"{event['rawPath']} answered {response['statusCode']}: {body!r}")
        return response

    def create_event(
        self, custom: dict[str, Any] | None = None, run: str | None = None, task_type: str = "echo"
    ) -> dict[str, Any]:
        from connectors.dev.events import http_api_event
        from tests.flyte_requests import echo_request

        custom = {"delay_seconds": 3600} if custom is None else custom
        request = echo_request(custom=custom, run=run, task_type=task_type)
        return http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString())

    def create(self, custom: dict[str, Any] | None = None, run: str | None = None, task_type: str = "echo") -> bytes:
        response = self.call(self.handlers["create_task"], self.create_event(custom, run, task_type))
        return self.pb.CreateTaskResponse.FromString(base64.b64decode(response["body"])).resource_meta

    def get_event(self, resource_meta: bytes, task_type: str = "echo") -> dict[str, Any]:
        from connectors.dev.events import http_api_event

        category = self.pb.TaskCategory(name=task_type, version=0)
        request = self.pb.GetTaskRequest(resource_meta=resource_meta, task_category=category)
        return http_api_event("POST", f"{ASYNC}/GetTask", request.SerializeToString())

    def get(self, resource_meta: bytes, task_type: str = "echo") -> int:
        """GetTask; the phase answered."""
        response = self.call(self.handlers["get_task"], self.get_event(resource_meta, task_type))
        return self.pb.GetTaskResponse.FromString(base64.b64decode(response["body"])).resource.phase

    def delete_event(self, resource_meta: bytes, task_type: str = "echo") -> dict[str, Any]:
        from connectors.dev.events import http_api_event

        category = self.pb.TaskCategory(name=task_type, version=0)
        request = self.pb.DeleteTaskRequest(resource_meta=resource_meta, task_category=category)
        return http_api_event("POST", f"{ASYNC}/DeleteTask", request.SerializeToString())

    def delete(self, resource_meta: bytes, task_type: str = "echo") -> None:
        self.call(self.handlers["delete_task"], self.delete_event(resource_meta, task_type))

    def polls(self, resource_meta: bytes, count: int) -> Usage:
        with self.meter.measure() as usage:
            for _ in range(count):
                self.get(resource_meta)
        return usage


@contextlib.contextmanager
def clock_ahead(store: Any, seconds: float) -> Iterator[None]:
    """The task store's clock ``seconds`` ahead: its next writes happen that much later."""
    had_own = "clock" in vars(store)
    original = store.clock
    store.clock = lambda: original() + seconds
    try:
        yield
    finally:
        if had_own:
            store.clock = original
        else:
            del store.clock
