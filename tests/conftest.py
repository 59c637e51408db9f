"""Fixtures shared by every test: a real moto DynamoDB server, tables, the service, a served app.

The DynamoDB server is a child process on 127.0.0.1 (a free port), started once per session.
Each test module gets its own table, so tests can count records without seeing each other's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.dev.background_server import BackgroundServer
from connectors.dev.local_dynamodb import LOCAL_ENV, LocalDynamoDB
from connectors.observability import tracing
from connectors.runtime import build_service, configure_logging
from connectors.service import ConnectorService
from connectors.settings import Settings
from connectors.store import TaskStore, new_client

# Fixtures that live beside the helpers they build on: the AWS world (moto for every AWS API) and
# the fuzz harness. Listed here, every test module sees them without importing them.
pytest_plugins = ["tests.aws_world", "tests.fuzz_client", "tests.docs_world"]

for _key, _value in LOCAL_ENV.items():
    os.environ[_key] = _value  # never reach for real AWS credentials from a test


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB() as server:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint_url
        yield server


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb: LocalDynamoDB) -> Any:
    return new_client(dynamodb.endpoint_url)


def make_table(client: Any, prefix: str = "tasks") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    TaskStore(name, client).create_table()
    return name


def make_indexed_table(client: Any, prefix: str, index_key: str, sort_key: str | None = None) -> str:
    """A table keyed ``pk`` (string; and ``sort_key``, a number, when named) with a keys-only
    global index ``by-<index_key>`` on the string ``index_key``."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    keys = [("pk", "S", "HASH")] + ([(sort_key, "N", "RANGE")] if sort_key else [])
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t, _ in [*keys, (index_key, "S", "")]],
        KeySchema=[{"AttributeName": a, "KeyType": k} for a, _, k in keys],
        GlobalSecondaryIndexes=[
            {
                "IndexName": f"by-{index_key}",
                "KeySchema": [{"AttributeName": index_key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    return name


@pytest.fixture(scope="module")
def table_name(dynamodb_client: Any) -> str:
    return make_table(dynamodb_client)


@pytest.fixture(scope="module")
def settings(table_name: str) -> Settings:
    return Settings(tasks_table=table_name, connector_timeout_seconds=2.0)


make_service = build_service  # (settings, client, registry=None): the service as handlers build it


@pytest.fixture(scope="module")
def service(settings: Settings, dynamodb_client: Any) -> ConnectorService:
    return make_service(settings, dynamodb_client)


ServedApp = BackgroundServer  # the app on a loopback port, in a thread (connectors.dev)


@pytest.fixture(scope="module")
def served(service: ConnectorService) -> Iterator[ServedApp]:
    from connectors.transport import create_app

    with ServedApp(create_app(service)) as server:
        yield server


def scan_table(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(scope="session")
def lambda_environment(dynamodb: LocalDynamoDB, dynamodb_client: Any) -> str:
    """Environment for importing handlers/: one table for the process (handlers build once)."""
    table = os.environ.get("TASKS_TABLE_FOR_HANDLERS") or make_table(dynamodb_client, "lambda-tasks")
    os.environ["TASKS_TABLE_FOR_HANDLERS"] = table
    os.environ["TASKS_TABLE"] = table
    return table


class LambdaContext:
    """The attributes of a Lambda context object that handlers may read."""

    function_name = "connectors-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:connectors-test"
    memory_limit_in_mb = 512
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/connectors-test"
    log_stream_name = "2026/11/25/[$LATEST]abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


NAMESPACE = "FlyteConnectorsTest"  # the metrics namespace in_lambda sets


@pytest.fixture
def in_lambda(lambda_environment, monkeypatch):
    """The environment Lambda and the template give a function; logging configured for it."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", LambdaContext.function_name)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flyte-connectors-test")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    tracing.reset()
    configure_logging()
    yield
    monkeypatch.undo()
    tracing.reset()
    configure_logging()  # text again, for later tests
