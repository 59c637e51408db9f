"""`connectors serve`: the whole API on loopback, on the embedded DynamoDB unless told otherwise.

Served by hypercorn: Connect and REST over HTTP/1.1, and gRPC over HTTP/2 (h2c) on the same
port, since connectrpc's ASGI applications also speak the gRPC protocol when the server offers
HTTP/2 trailers. A stock Flyte executor can therefore use this local server directly.

On the embedded fake AWS, jobs' state-change events reach task records as they do deployed
(connectors/dev/status_events.py): the fake publishes them to its EventBridge, rules route them to
an SQS queue, and a consumer beside the server applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..runtime import build_service, configure_logging
from ..settings import Settings
from ..store import new_client
from . import status_events
from .local_dynamodb import LOCAL_ENV, LocalDynamoDB


@dataclass(frozen=True)
class Table:
    where: str  # a description, for the banner
    embedded_aws: str | None = None  # the embedded fake AWS's endpoint; None: a real table


@contextlib.contextmanager
def task_table(dynamodb_port: int) -> Iterator[Table]:
    """Use the DynamoDB the environment names, or start the embedded one (and its AWS APIs)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        yield Table(f"DynamoDB at {endpoint}")
        return
    if os.environ.get("TASKS_TABLE") and _has_aws_credentials():
        yield Table(f"DynamoDB table {os.environ['TASKS_TABLE']} in your AWS account")
        return
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    # The embedded AWS never throttles, and a person trying it waits on each poll: read a task's
    # status at most once a second (a deployment: StatusReadIntervalSeconds, 5 by default).
    os.environ.setdefault("STATUS_READ_INTERVAL_SECONDS", "1")
    # Its jobs' state-change events are delivered (below): a poll answers a record they keep
    # current, reading the job once this long after the last news of it (a lost event).
    os.environ.setdefault("STATUS_SAFETY_READ_MINUTES", status_events.SAFETY_READ_MINUTES)
    with LocalDynamoDB(dynamodb_port) as local:
        # The same moto serves every AWS API the AWS connectors call, with the examples' resources.
        endpoints = {"AWS_ENDPOINT_URL_DYNAMODB": local.endpoint_url, "AWS_ENDPOINT_URL": local.endpoint_url}
        os.environ.update(endpoints)
        try:
            from .aws_resources import create_example_resources

            create_example_resources(local.endpoint_url)
            yield Table(f"embedded DynamoDB and AWS APIs (moto) at {local.endpoint_url}", local.endpoint_url)
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


async def serve_with_events(app: Any, host: str, port: int, delivery: status_events.Delivery | None) -> None:
    """Serve ``app``; with ``delivery``, apply its queue's state-change events for as long."""
    consumer = asyncio.create_task(status_events.consume(delivery)) if delivery is not None else None
    try:
        await run_hypercorn(app, host, port)
    finally:
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer


def serve(port: int, dynamodb_port: int) -> None:
    from ..transport import create_app

    configure_logging()
    with task_table(dynamodb_port) as table:
        where = table.where
        settings = Settings.from_env()
        service = build_service(settings, new_client())
        if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
            service.store.create_table()
        delivery = status_events.deliver(table.embedded_aws, service) if table.embedded_aws else None
        categories = ", ".join(
            f"{c.name} (version {c.version})"
            for m in service.registry.list_connectors()
            for c in m.supported_task_categories
        )
        base = f"http://127.0.0.1:{port}"
        print(f"Flyte connector service on {base}  (tasks in {where}, table {settings.tasks_table})")
        print(f"Connect and REST on {base}; gRPC (h2c) on 127.0.0.1:{port} for a Flyte executor")
        print(f"Connectors: {categories}")
        if delivery is not None:
            rules = len(delivery.rules)
            print(
                f"State-change events: the embedded AWS's EventBridge -> SQS queue {status_events.QUEUE} -> this "
                f"server ({rules} rule{'s' if rules != 1 else ''}; a poll reads a job once "
                f"{settings.status_safety_read_minutes:g} min pass without news of it)"
            )
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
            asyncio.run(serve_with_events(create_app(service), "127.0.0.1", port, delivery))
