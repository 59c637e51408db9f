"""Adversarial review of issue 11 (logs, metrics, traces, the relay's retries and metrics, `connectors
tasks`). Each break found was an ``xfail(strict=True)`` test until it was fixed (its comment names it); the other
tests are attacks that held. Everything runs against moto over HTTP and in-process handlers."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import logging
import uuid
from contextlib import redirect_stdout
from typing import Any

import grpc
import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import Resource
from connectors.dev.events import http_api_event
from connectors.dev.tasks import run as tasks_run
from connectors.errors import ConnectError
from connectors.observability import metrics
from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.relay.errors import error_from_response
from connectors.relay.metrics import MAX_TASK_TYPES, MAX_UNCONFIRMED_TASK_TYPES, RelayMetrics
from connectors.relay.retry import RetryPolicy, retry_reason
from connectors.settings import Settings
from connectors.store import TaskHandle
from tests.conftest import NAMESPACE, LambdaContext, make_service
from tests.flyte_requests import ECHO, echo_request
from tests.sample_connectors import CountingConnector, JobMeta

ASYNC = "/flyteidl2.connector.AsyncConnectorService"


def output(capsys) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return [line for line in lines if "_aws" not in line], [line for line in lines if "_aws" in line]


def emf(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in documents if name in [m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]]]


# -- 1. a secret fetched from Secrets Manager, in a JSON log line and in the answer -------------------

SECRET_TYPE = "vault_sync_logs"


class SyncLogsConnector(CountingConnector):
    """Takes a secret from Secrets Manager; its get_logs is a plain function (it returns a stream)
    that validates first and raises, quoting the token: the case service.get_task_logs catches."""

    name = "Sync Logs Connector"
    task_type_name = SECRET_TYPE
    secret_names = ("api_token",)

    def get_logs(self, resource_meta: JobMeta, **kwargs):  # not async: it raises when called
        raise ValueError(f"the logs API refused token {kwargs.get('api_token')}")


# Was a break, now fixed: service.get_task_logs logs the sync failure with logger.exception (unredacted traceback) and answers internal(f'...{error}') unredacted: the Secrets Manager value reaches the JSON log line's exception and the caller
def test_a_fetched_secret_in_a_get_logs_failure_is_never_logged_nor_answered(aws_world, monkeypatch, caplog):
    prefix = f"flyte-adv-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(SyncLogsConnector())
    token = f"tok-{uuid.uuid4().hex}"
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{SECRET_TYPE}/api_token", SecretString=token)
    handle = world.create(world.request(SECRET_TYPE, {}))
    caplog.set_level(logging.INFO)
    caplog.clear()
    with pytest.raises(ConnectError) as caught:
        world.logs(handle, SECRET_TYPE)
    formatter = logging.Formatter("%(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records)  # with each traceback
    leaks = [where for where, text in (("answer", caught.value.message), ("log", logged)) if token in text]
    assert not leaks, f"the secret is in the {leaks}: {logged[max(0, logged.find(token) - 200) :][:400]}"


# -- 2. a reaper pass that fails as a whole counts no failure ----------------------------------------


class ReaperContext(LambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


# Was a break, now fixed: reap_abandoned's finally emits flyte_connector_reaper_failures_total=0 when the pass itself raised (store/index unreadable): ReaperFailuresAlarm stays OK
def test_a_reaper_pass_that_cannot_read_the_table_counts_a_failure(dynamodb_client, monkeypatch, capsys):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", LambdaContext.function_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    service = make_service(Settings(tasks_table=f"no-such-table-{uuid.uuid4().hex[:6]}"), dynamodb_client)
    from connectors.runtime import invocation

    capsys.readouterr()
    with pytest.raises(ConnectError), invocation(ReaperContext()):
        asyncio.run(reap_abandoned(service.canceller))
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and "_aws" in line
    ]
    failures = [
        v
        for d in emf(documents, metrics.REAPER_FAILURES)
        for v in (
            d[metrics.REAPER_FAILURES] if isinstance(d[metrics.REAPER_FAILURES], list) else [d[metrics.REAPER_FAILURES]]
        )
    ]
    assert failures and sum(failures) > 0, f"the failed pass reported reaper failures {failures}"


# -- 3. `connectors tasks show` prints a connector's message raw to the operator's terminal ----------

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mall good"


class EscapingConnector(CountingConnector):
    name = "Escaping Connector"
    task_type_name = "escaping"

    async def get(self, resource_meta: JobMeta, **kwargs) -> Resource:
        return Resource(phase=TaskExecution.RUNNING, message=ESCAPES)  # what a remote's error text may hold


def _tasks(*argv: str, table: str) -> str:
    parser = argparse.Namespace(
        tasks_command=argv[0],
        json=False,
        table=table,
        active=False,
        run=None,
        limit=None,
        handles=False,
        handle=argv[1] if len(argv) > 1 else None,
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert tasks_run(parser) == 0
    return out.getvalue()


# Was a break, now fixed: connectors tasks show/list print a record's message (a remote's text) with its terminal escape sequences raw: the remote controls the operator's terminal
def test_tasks_show_does_not_pass_terminal_escapes_through(dynamodb_client):
    service = make_service(
        Settings(tasks_table=_table(dynamodb_client)), dynamodb_client, ConnectorRegistry([EscapingConnector()])
    )
    request = echo_request(run="run-escapes")
    request.template.type = "escaping"
    handle = asyncio.run(service.create_task(request)).resource_meta
    asyncio.run(
        service.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name="escaping")))
    )
    shown = _tasks("show", handle.decode(), table=service.settings.tasks_table)
    listed = _tasks("list", table=service.settings.tasks_table)
    assert "\x1b" not in shown and "\x07" not in shown, repr(shown)
    assert "\x1b" not in listed, repr(listed)


def _table(client) -> str:
    from tests.conftest import make_table

    return make_table(client, "adv11")


# -- 4. the relay's task-type cap can be filled by refused task types --------------------------------


def test_task_types_the_api_refused_do_not_take_the_label_slots_of_real_ones():
    relay = RelayMetrics()
    relay.answered("get", "athena_query", grpc.StatusCode.UNAVAILABLE, 0.02)  # real, failing: its own label
    for i in range(MAX_TASK_TYPES):
        code = grpc.StatusCode.NOT_FOUND if i % 2 else grpc.StatusCode.RESOURCE_EXHAUSTED  # refused, or throttled
        relay.answered("create", f"junk-{i}", code, 0.01)
    relay.answered("create", "echo", None, 0.02)
    sample = relay.registry.get_sample_value
    assert sample("flyte_connector_requests_success_total", {"task_type": "echo", "operation": "create"}) == 1
    failure = {"task_type": "athena_query", "operation": "get", "error_code": "unavailable"}
    assert sample("flyte_connector_requests_failure_total", failure) == 1
    # the first ones that only failed keep labels of their own (a task type an executor routes here
    # by mistake is seen by name); past MAX_UNCONFIRMED_TASK_TYPES they are "other"
    refused = {"operation": "create", "error_code": "not_found"}
    assert sample("flyte_connector_requests_failure_total", {**refused, "task_type": "junk-1"}) == 1
    others = sum(
        sample("flyte_connector_requests_failure_total", {**refused, "error_code": code, "task_type": "other"}) or 0
        for code in ("not_found", "resource_exhausted")
    )
    assert others == MAX_TASK_TYPES - (MAX_UNCONFIRMED_TASK_TYPES - 1)
    relay.answered("create", "junk-1", None, 0.02)  # deployed since: answered, under its own name still
    assert sample("flyte_connector_requests_success_total", {"task_type": "junk-1", "operation": "create"}) == 1
    for i in range(MAX_TASK_TYPES - 2):  # real ones, answered: the slots are theirs
        relay.answered("get", f"real-{i}", None, 0.01)
    assert sample("flyte_connector_requests_success_total", {"task_type": f"real-{i}", "operation": "get"}) == 1


def test_relay_task_type_labels_stay_bounded():
    relay = RelayMetrics()
    for i in range(MAX_TASK_TYPES + 500):
        relay.answered("get", f"t{i}" + "x" * 500, grpc.StatusCode.NOT_FOUND, 0.01)
    values = {
        s.labels["task_type"]
        for m in relay.registry.collect()
        if m.name == "flyte_connector_requests_failure"
        for s in m.samples
    }
    assert len(values) <= MAX_TASK_TYPES + 1 and max(len(v) for v in values) <= 100


# -- attacks that held: relay retries ----------------------------------------------------------------


@pytest.mark.parametrize(
    "status,body,retried",
    [
        (503, b'{"code":"internal","message":"bug"}', False),  # a Connect-coded 5xx is the service's answer
        (429, b'{"code":"resource_exhausted","message":"x"}', False),  # a limit the service set on purpose
        (504, b'{"code":"deadline_exceeded"}', False),
        (503, b'{"code":"unavailable","message":"store busy"}', True),
        (503, b'{"message":"Service Unavailable"}', True),  # API Gateway's own
        (429, b'{"message":"Too Many Requests"}', True),
        (400, b'{"message":"Bad Request"}', False),
    ],
)
def test_the_relay_retries_only_what_says_try_again(status, body, retried):
    assert (error_from_response(status, body).retry_reason is not None) is retried
    assert retry_reason(200, "Unavailable ") == "unavailable"


def test_the_relay_backoff_is_bounded_and_never_passes_the_deadline():
    policy = RetryPolicy(max_attempts=10_000)
    assert max(policy.backoff(n) for n in range(1, 2000)) <= policy.max_delay
    for attempt in range(1, 200):
        for remaining in (0.0, 0.1, 0.25, 0.5, 1.0, 3.0):
            delay, _ = policy.next_delay(attempt, remaining)
            assert delay is None or remaining - delay >= policy.margin


# -- attacks that held: the Lambda side's dimensions and keys -----------------------------------------


def test_an_unknown_task_type_is_counted_as_unknown_and_keys_do_not_outlive_an_invocation(in_lambda, capsys):
    create = importlib.import_module("handlers.create_task")
    get = importlib.import_module("handlers.get_task")
    run = f"adv-{uuid.uuid4().hex[:8]}"
    ok = create.handler(
        http_api_event("POST", f"{ASYNC}/CreateTask", echo_request(run=run).SerializeToString()), LambdaContext()
    )
    assert ok["statusCode"] == 200
    capsys.readouterr()
    for i in range(3):  # attacker-chosen task types
        request = echo_request(run=f"{run}-{i}")
        request.template.type = f"attacker-{uuid.uuid4().hex}"
        create.handler(http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString()), LambdaContext())
    bad = pb.GetTaskRequest(resource_meta=b"junk", task_category=ECHO)
    get.handler(http_api_event("POST", f"{ASYNC}/GetTask", bad.SerializeToString()), LambdaContext())
    logs, documents = output(capsys)
    types = {d.get("task_type") for d in documents if "task_type" in d}
    assert types == {"unknown"}, types
    assert all(len(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) <= 30 for d in documents)
    assert all(len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) <= 100 for d in documents)
    get_lines = [line for line in logs if line.get("operation") == "get"]
    assert all(line.get("run") in (None,) for line in get_lines), get_lines  # no run from an earlier invocation
    assert not any(line.get("run") == run for line in logs)


def test_concurrent_requests_keep_their_own_log_keys(lambda_environment, dynamodb_client):
    """Two CreateTasks on one event loop (``connectors serve``): each one's lines carry its own run."""
    from connectors.observability import logs as obs_logs

    service = make_service(Settings(tasks_table=_table(dynamodb_client)), dynamodb_client)
    seen: list[tuple[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("created echo task"):
                seen.append((record.getMessage(), obs_logs.request_key("run")))

    handler = Capture()
    logging.getLogger("connectors.service").addHandler(handler)
    try:

        async def both():
            await asyncio.gather(
                *(service.create_task(echo_request(run=f"conc-{i}", custom={"delay_seconds": 0})) for i in range(6))
            )

        asyncio.run(both())
    finally:
        logging.getLogger("connectors.service").removeHandler(handler)
    assert len(seen) == 6
    for message, run in seen:
        assert f"{run}/" in message, (message, run)


def test_a_huge_reaper_pass_writes_valid_emf(monkeypatch, capsys):
    """Hundreds of values of one metric in one invocation: every document keeps to EMF's 100."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)

    class Ctx(LambdaContext):
        pass

    with metrics.collecting(Ctx()):
        for i in range(350):
            metrics.connector_call("echo", "delete", 0.001 * (i + 1))
            metrics.task_cancelled("echo", "abandoned", ok=True)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    values = []
    for document in documents:
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            found = document[metric["Name"]]
            found = found if isinstance(found, list) else [found]
            assert len(found) <= 100
            if metric["Name"] == metrics.CALL_LATENCY:
                values += found
    assert len(values) == 350
    assert (
        sum(
            value
            for d in emf(documents, metrics.TASKS_REAPED)
            for value in (
                [d[metrics.TASKS_REAPED]] if not isinstance(d[metrics.TASKS_REAPED], list) else d[metrics.TASKS_REAPED]
            )
        )
        == 350
    )


def test_the_handle_secret_is_not_in_tasks_list(dynamodb_client):
    service = make_service(Settings(tasks_table=_table(dynamodb_client)), dynamodb_client)
    handle = asyncio.run(service.create_task(echo_request(run="run-handle", name="input-never-shown"))).resource_meta
    listed = _tasks("list", table=service.settings.tasks_table)
    secret = TaskHandle.decode(handle).secret
    assert handle.decode() not in listed and secret.hex() not in listed and "input-never-shown" not in listed
