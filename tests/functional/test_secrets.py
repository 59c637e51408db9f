"""Connection secrets reach the connector and nothing else: not the table, not a log line.

CreateTask, GetTask and DeleteTask carry ``connection.secrets`` with unique values, over Connect
(proto and JSON), REST and a Lambda handler, against connectors that succeed and connectors that
raise (with messages of their own that do not include the secret), with every logger at DEBUG,
botocore's included (it logs each request's parameters at DEBUG). Then the table, the captured
log records (message, arguments, tracebacks), the process's stdout/stderr and the answers
are searched for every secret value sent.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from connectrpc.codec import proto_json_codec
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors import Resource
from connectors.builtin import EchoConnector
from connectors.dev.events import http_api_event
from connectors.errors import Code
from connectors.registry import ConnectorRegistry
from connectors.runtime import configure_logging
from connectors.transport import create_app
from tests.conftest import LambdaContext, ServedApp, make_service, scan_table
from tests.flyte_requests import ECHO, echo_request
from tests.sample_connectors import CountingConnector, FailingConnector, JobMeta

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
LOGGERS = ["", "botocore", "boto3", "urllib3", "connectors", "mangum", "uvicorn", "uvicorn.error", "httpx", "httpcore"]


class BrokenRemoteConnector(CountingConnector):
    """Starts jobs, then fails every get and delete with a message of its own (no secret in it).

    As the counting connector it is, it keeps the keyword arguments of every call.
    """

    name = "Broken Remote Connector"
    task_type_name = "broken_remote"

    async def get(self, resource_meta: JobMeta, **kwargs) -> Resource:
        await super().get(resource_meta, **kwargs)
        raise RuntimeError(f"the remote API answered 503 for {resource_meta.job_id}")

    async def delete(self, resource_meta: JobMeta, **kwargs) -> None:
        await super().delete(resource_meta, **kwargs)
        raise ConnectionError("the remote API closed the connection")


class Secrets:
    """Unique secret values, each remembered, so that the tests can look for all of them."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def new(self, label: str) -> dict[str, str]:
        value = f"SeCrEt-{label}-{uuid.uuid4().hex}"
        self.values.append(value)
        return {"api_key": value, "password": f"pw-{value}"}

    def found_in(self, text: str) -> list[str]:
        return [value for value in self.values if value in text]


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(scope="module")
def broken() -> BrokenRemoteConnector:
    return BrokenRemoteConnector()


@pytest.fixture(scope="module")
def counting() -> CountingConnector:
    return CountingConnector()


@pytest.fixture(scope="module")
def served(settings, dynamodb_client, broken, counting) -> Iterator[ServedApp]:
    registry = ConnectorRegistry([EchoConnector(), counting, FailingConnector(), broken])
    with ServedApp(create_app(make_service(settings, dynamodb_client, registry))) as server:
        yield server


@pytest.fixture
def debug_logs(caplog, monkeypatch) -> Iterator[pytest.LogCaptureFixture]:
    """LOG_LEVEL=DEBUG as the service configures it, then every logger forced to DEBUG."""
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging()
    all_debug()
    caplog.handler.setLevel(logging.DEBUG)
    yield caplog
    for name, level in saved.items():  # as they were before configure_logging, for later tests
        logging.getLogger(name).setLevel(level)


def all_debug() -> None:
    """configure_logging keeps botocore at WARNING; this test wants every line there is."""
    for name in LOGGERS:
        logging.getLogger(name or None).setLevel(logging.DEBUG)


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts += [record.name, record.getMessage(), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


def table_text(client: Any, table: str) -> str:
    items = scan_table(client, table)
    return json.dumps(items, default=lambda value: bytes(value).decode("latin-1"))


def expect_error(code: Code, call: Any, *args: Any) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_secrets_reach_connectors_but_no_table_and_no_log_line(
    served, settings, dynamodb_client, secrets, broken, counting, debug_logs, capfd
):
    answers: list[str] = []  # what the callers were told, error messages included
    for codec in (None, proto_json_codec()):
        client = AsyncConnectorServiceClientSync(served.url, codec=codec)
        label = "json" if codec else "proto"

        # echo and counting: the happy path, create -> get -> delete -> get.
        for task_type, category in (("echo", ECHO), ("counting", pb.TaskCategory(name="counting"))):
            connection = secrets.new(f"{label}-{task_type}-create")
            request = echo_request(task_type=task_type, secrets=connection, configs={"region": "eu-west-1"})
            handle = client.create_task(request).resource_meta
            get_secrets = secrets.new(f"{label}-{task_type}-get")
            get = pb.GetTaskRequest(resource_meta=handle, task_category=category, connection={"secrets": get_secrets})
            answers.append(str(client.get_task(get)))
            delete = pb.DeleteTaskRequest(
                resource_meta=handle,
                task_category=category,
                connection={"secrets": secrets.new(f"{label}-{task_type}-delete")},
            )
            client.delete_task(delete)
            client.delete_task(delete)  # idempotent, and still says nothing
            answers.append(str(client.get_task(get)))

        # A connector that raises at create (its message has no secret): internal, with its message.
        error = expect_error(
            Code.INTERNAL,
            client.create_task,
            echo_request(task_type="failing", secrets=secrets.new(f"{label}-failing-create")),
        )
        answers.append(error.message)

        # A connector whose get and delete raise, after a create that worked.
        category = pb.TaskCategory(name="broken_remote")
        handle = client.create_task(
            echo_request(task_type="broken_remote", secrets=secrets.new(f"{label}-broken-create"))
        ).resource_meta
        for call, message in (
            (
                client.get_task,
                pb.GetTaskRequest(
                    resource_meta=handle,
                    task_category=category,
                    connection={"secrets": secrets.new(f"{label}-broken-get")},
                ),
            ),
            (
                client.delete_task,
                pb.DeleteTaskRequest(
                    resource_meta=handle,
                    task_category=category,
                    connection={"secrets": secrets.new(f"{label}-broken-delete")},
                ),
            ),
        ):
            answers.append(expect_error(Code.INTERNAL, call, message).message)

        # Bad input that carries secrets: refused, and the refusal logs nothing of them.
        bad = echo_request(secrets=secrets.new(f"{label}-bad-create"))
        bad.template.interface.outputs.variables[0].key = "missing"
        answers.append(expect_error(Code.INVALID_ARGUMENT, client.create_task, bad).message)
        answers.append(
            expect_error(
                Code.NOT_FOUND,
                client.create_task,
                echo_request(task_type="nope", secrets=secrets.new(f"{label}-unknown-type")),
            ).message
        )

    # REST: the JSON body and the answers.
    rest_secrets = secrets.new("rest-create")
    body = json_format.MessageToJson(echo_request(secrets=rest_secrets))
    response = httpx.post(
        f"{served.url}/api/v1/connector/task", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    handle = base64.b64decode(response.json()["resourceMeta"])
    meta = base64.urlsafe_b64encode(handle).decode().rstrip("=")
    answers.append(httpx.get(f"{served.url}/api/v1/connector/task/echo/0/{meta}").text)
    # A malformed body with a secret in it.
    malformed = body.replace('"template": {', '"template": {"type": 5, "bogus": {').encode()
    response = httpx.post(
        f"{served.url}/api/v1/connector/task", content=malformed, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    response = httpx.post(
        f"{served.url}{ASYNC}/CreateTask", content=malformed, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400

    # The connectors did receive the secrets, as keyword arguments.
    received = json.dumps(broken.kwargs + counting.kwargs)
    assert len(secrets.found_in(received)) >= 8, "the secrets never reached the connectors"

    # ... and nothing else kept them.
    assert debug_logs.records, "nothing was logged: the capture is not working"
    assert any(
        record.name.startswith("botocore") and record.levelno == logging.DEBUG for record in debug_logs.records
    ), "botocore's DEBUG records were not captured"
    # A connector's failure is logged with its stack trace, written into the line with the
    # request's secret values cut out (connector_calls.redact).
    assert any(
        record.name.startswith("connectors") and "Traceback (most recent call last)" in record.getMessage()
        for record in debug_logs.records
    ), "the connector failures were not logged with their stack traces"
    # botocore's DEBUG lines carry the request parameters: what the table stores shows up in them
    # (the output_prefix here), so a secret written to the table would have shown up as well.
    assert "s3://bucket/outputs/prefix" in everything_logged(debug_logs), (
        "botocore's request parameters were not captured"
    )
    leaks = {
        "table": secrets.found_in(table_text(dynamodb_client, settings.tasks_table)),
        "logs": secrets.found_in(everything_logged(debug_logs)),
        "stdout/stderr": secrets.found_in("".join(capfd.readouterr())),
        "answers": secrets.found_in("\n".join(answers)),
    }
    assert not any(leaks.values()), f"secret values leaked: {leaks}"


def test_secrets_through_a_lambda_handler_at_debug(lambda_environment, dynamodb_client, secrets, debug_logs, capfd):
    """The deployed path: API Gateway event -> Mangum -> the create_task and get_task handlers."""
    create = importlib.import_module("handlers.create_task")
    get = importlib.import_module("handlers.get_task")
    all_debug()  # importing the handlers configured logging again
    request = echo_request(secrets=secrets.new("lambda-create"))
    response = create.handler(
        http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString()), LambdaContext()
    )
    assert response["statusCode"] == 200
    handle = pb.CreateTaskResponse.FromString(base64.b64decode(response["body"])).resource_meta
    get_request = pb.GetTaskRequest(
        resource_meta=handle, task_category=ECHO, connection={"secrets": secrets.new("lambda-get")}
    )
    response = get.handler(http_api_event("POST", f"{ASYNC}/GetTask", get_request.SerializeToString()), LambdaContext())
    assert response["statusCode"] == 200
    resource = pb.GetTaskResponse.FromString(base64.b64decode(response["body"])).resource
    assert resource.phase == TaskExecution.SUCCEEDED
    assert "s3://bucket/outputs/prefix" in everything_logged(debug_logs), (
        "botocore's request parameters were not captured"
    )
    leaks = {
        "table": secrets.found_in(table_text(dynamodb_client, lambda_environment)),
        "logs": secrets.found_in(everything_logged(debug_logs)),
        "stdout/stderr": secrets.found_in("".join(capfd.readouterr())),
    }
    assert not any(leaks.values()), f"secret values leaked: {leaks}"
