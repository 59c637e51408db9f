"""`connectors serve`: the whole API on loopback, on the embedded DynamoDB unless told otherwise.

Served by hypercorn: Connect and REST over HTTP/1.1, and gRPC over HTTP/2 (h2c) on the same
port, since connectrpc's ASGI applications also speak the gRPC protocol when the server offers
HTTP/2 trailers. A stock Flyte executor can therefore use this local server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..runtime import build_service, configure_logging
from ..settings import Settings
from ..store import new_client
from .local_dynamodb import LOCAL_ENV, LocalDynamoDB


@contextlib.contextmanager
def task_table(dynamodb_port: int) -> Iterator[str]:
    """Use the DynamoDB the environment names, or start the embedded one; yield a description."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        yield f"DynamoDB at {endpoint}"
        return
    if os.environ.get("TASKS_TABLE") and _has_aws_credentials():
        yield f"DynamoDB table {os.environ['TASKS_TABLE']} in your AWS account"
        return
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    # The embedded AWS never throttles, and a person trying it waits on each poll: read a task's
    # status at most once a second (a deployment: StatusReadIntervalSeconds, 5 by default).
    os.environ.setdefault("STATUS_READ_INTERVAL_SECONDS", "1")
    with LocalDynamoDB(dynamodb_port) as local:
        # The same moto serves every AWS API the AWS connectors call, with the examples' resources.
        endpoints = {"AWS_ENDPOINT_URL_DYNAMODB": local.endpoint_url, "AWS_ENDPOINT_URL": local.endpoint_url}
        os.environ.update(endpoints)
        try:
            from .aws_resources import create_example_resources

            create_example_resources(local.endpoint_url)
            yield f"embedded DynamoDB and AWS APIs (moto) at {local.endpoint_url}"
        finally:
            for key in endpoints:
                del os.environ[key]


def _has_aws_credentials() -> bool:
    import boto3

    return boto3.Session().get_credentials() is not None


async def run_hypercorn(app: Any, host: str, port: int, shutdown: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Serve ``app`` with hypercorn on host:port (HTTP/1.1 and h2c) until ``shutdown`` returns."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    await hypercorn_serve(app, config, shutdown_trigger=shutdown)  # None: hypercorn's own default


def serve(port: int, dynamodb_port: int) -> None:
    from ..transport import create_app

    configure_logging()
    with task_table(dynamodb_port) as where:
        settings = Settings.from_env()
        service = build_service(settings, new_client())
        if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
            service.store.create_table()
        categories = ", ".join(
            f"{c.name} (version {c.version})"
            for m in service.registry.list_connectors()
            for c in m.supported_task_categories
        )
        base = f"http://127.0.0.1:{port}"
        print(f"Flyte connector service on {base}  (tasks in {where}, table {settings.tasks_table})")
        print(f"Connect and REST on {base}; gRPC (h2c) on 127.0.0.1:{port} for a Flyte executor")
        print(f"Connectors: {categories}")
        print("Try:")
        print(
            f"  curl -s -X POST {base}/flyteidl2.connector.ConnectorMetadataService/ListConnectors "
            "-H 'content-type: application/json' -d '{}'"
        )
        print(
            f"  curl -s -X POST {base}/flyteidl2.connector.AsyncConnectorService/CreateTask "
            "-H 'content-type: application/json' -d @examples/athena_query.json"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_hypercorn(create_app(service), "127.0.0.1", port))
