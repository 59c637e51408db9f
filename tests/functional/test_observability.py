"""What the people on call read: a handler invoked in-process with a Lambda context writes JSON log
lines carrying the request id, task type, run, action and attempt, and CloudWatch EMF documents
with flyte's metric names; the reaper writes its own. Traces go to an X-Ray daemon (a UDP socket
here) from a fresh process with tracing on."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb

from connectors.dev.events import http_api_event
from connectors.observability import metrics, tracing
from connectors.runtime import configure_logging, default_service
from tests.conftest import NAMESPACE, LambdaContext
from tests.flyte_requests import ECHO, echo_request

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
ROOT = Path(__file__).resolve().parents[2]


class ReaperContext(LambdaContext):
    """The reaper's invocation: five minutes to spend."""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


def output(capsys) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """stdout's JSON log lines and EMF documents (every line must be JSON)."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return [line for line in lines if "_aws" not in line], [line for line in lines if "_aws" in line]


def emf(documents: list[dict[str, Any]], name: str, **dimensions: str) -> list[dict[str, Any]]:
    """The documents that hold metric ``name`` with these dimension values."""
    found = []
    for document in documents:
        directive = document["_aws"]["CloudWatchMetrics"][0]
        if name in [m["Name"] for m in directive["Metrics"]] and all(
            document.get(k) == v for k, v in dimensions.items()
        ):
            found.append(document)
    return found


def value(document: dict[str, Any], name: str) -> float:
    """A metric's value in a document (EMF takes a number or a list of them)."""
    found = document[name]
    return sum(found) if isinstance(found, list) else found


def test_a_create_task_invocation_logs_json_lines_and_emf_metrics(in_lambda, capsys):
    create = importlib.import_module("handlers.create_task")
    run, secret = f"obs-{uuid.uuid4().hex[:8]}", f"SeCrEt-{uuid.uuid4().hex}"
    request = echo_request(run=run, action="obs-action", attempt=0, secrets={"api_key": secret})
    capsys.readouterr()
    response = create.handler(
        http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString()), LambdaContext()
    )
    assert response["statusCode"] == 200
    out = capsys.readouterr().out
    assert secret not in out
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    logs = [r for r in records if "_aws" not in r]
    documents = [r for r in records if "_aws" in r]

    created = [line for line in logs if line["message"].startswith("created echo task")]
    assert len(created) == 1, logs
    line = created[0]
    assert line["level"] == "INFO" and line["service"] == "flyte-connectors-test"
    assert line["function_request_id"] == LambdaContext.aws_request_id
    assert line["function_name"] == LambdaContext.function_name
    assert (line["operation"], line["task_type"], line["run"], line["action"], line["attempt"]) == (
        "create",
        "echo",
        run,
        "obs-action",
        0,
    )

    for document in documents:
        directive = document["_aws"]["CloudWatchMetrics"]
        assert directive[0]["Namespace"] == NAMESPACE and isinstance(document["_aws"]["Timestamp"], int)
        dimensions = {name for names in directive[0]["Dimensions"] for name in names}
        assert "run" not in dimensions and "action" not in dimensions and run not in json.dumps(directive)
        assert document["service"] == "flyte-connectors-test"
        assert document["function_request_id"] == LambdaContext.aws_request_id  # a key, not a dimension
        assert "function_request_id" not in dimensions
    [success] = emf(documents, metrics.REQUESTS_SUCCESS, task_type="echo", operation="create")
    directive = success["_aws"]["CloudWatchMetrics"][0]
    assert sorted(directive["Dimensions"][0]) == ["operation", "service", "task_type"]
    # One document per dimension set: the connector's call shares the request's (operation "create").
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        metrics.REQUESTS_SUCCESS: "Count",
        metrics.REQUEST_LATENCY: "Seconds",
        metrics.CALL_LATENCY: "Milliseconds",
    }
    assert value(success, metrics.REQUESTS_SUCCESS) == 1 and 0 < value(success, metrics.REQUEST_LATENCY) < 10
    assert 0 < value(success, metrics.CALL_LATENCY) < 1000 * value(success, metrics.REQUEST_LATENCY)
    [created_metric] = emf(documents, metrics.TASKS_CREATED, task_type="echo")
    assert value(created_metric, metrics.TASKS_CREATED) == 1

    # A failure counts by its Connect code, under an unknown task type when none was found.
    get = importlib.import_module("handlers.get_task")
    bad = pb.GetTaskRequest(resource_meta=b"not a handle", task_category=ECHO)
    get.handler(http_api_event("POST", f"{ASYNC}/GetTask", bad.SerializeToString()), LambdaContext())
    _, documents = output(capsys)
    [failure] = emf(documents, metrics.REQUESTS_FAILURE, operation="get")
    assert failure["task_type"] == "unknown" and failure["error_code"] in ("invalid_argument", "not_found")
    assert sorted(failure["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == [
        "error_code",
        "operation",
        "service",
        "task_type",
    ]


def test_the_reaper_emits_its_metrics(in_lambda, capsys, monkeypatch):
    service = default_service()
    create = importlib.import_module("handlers.create_task")
    reaper = importlib.import_module("handlers.reap_abandoned")
    run = f"obs-reaped-{uuid.uuid4().hex[:8]}"
    long_ago = time.time() - 3 * 3600
    monkeypatch.setattr(service.store, "clock", lambda: long_ago)  # its last poll was three hours ago
    request = echo_request(run=run, action="left-behind")
    response = create.handler(
        http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString()), LambdaContext()
    )
    assert response["statusCode"] == 200
    monkeypatch.undo()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", LambdaContext.function_name)  # undo() took the fixture's too
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flyte-connectors-test")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    capsys.readouterr()

    result = reaper.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, ReaperContext())
    assert result["cancelled"] >= 1
    logs, documents = output(capsys)
    [line] = [line for line in logs if line["message"].startswith("cancelled") and line.get("run") == run]
    assert (line["operation"], line["task_type"], line["action"], line["attempt"]) == ("reap", "echo", "left-behind", 0)
    assert line["function_request_id"] == LambdaContext.aws_request_id
    [reaped] = emf(documents, metrics.TASKS_REAPED, task_type="echo")
    assert value(reaped, metrics.TASKS_REAPED) >= 1
    [failures] = emf(documents, metrics.REAPER_FAILURES)
    assert value(failures, metrics.REAPER_FAILURES) == result["failed"]
    assert failures["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]  # one series: an alarm's


def test_make_serve_keeps_text_lines_and_writes_no_metrics(lambda_environment, monkeypatch, capsys):
    """Outside Lambda (``make serve``, ``connectors invoke``): plain lines on stderr, no EMF."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    configure_logging()
    assert not metrics.enabled() and not tracing.enabled()
    create = importlib.import_module("handlers.create_task")
    capsys.readouterr()
    response = create.handler(
        http_api_event("POST", f"{ASYNC}/CreateTask", echo_request().SerializeToString()), LambdaContext()
    )
    assert response["statusCode"] == 200
    out = capsys.readouterr().out
    assert "_aws" not in out and "function_request_id" not in out


def test_tracing_sends_connector_and_store_subsegments_to_the_daemon(lambda_environment):
    """A fresh process (a cold start) with tracing on, as Lambda runs it: the X-Ray SDK sends the
    subsegments to the daemon address Lambda gives (a UDP socket here)."""
    pytest.importorskip("aws_xray_sdk")
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    address = f"127.0.0.1:{daemon.getsockname()[1]}"
    trace_id = "1-67891233-abcdef012345678912345678"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "connectors-test",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_XRAY_DAEMON_ADDRESS": address,
        "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "FLYTE_SDK_CONNECTORS": "none",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    script = (
        "import sys; from connectors.dev.events import http_api_event; from tests.conftest import LambdaContext\n"
        "from tests.flyte_requests import echo_request; import handlers.create_task as h\n"
        f"r = h.handler(http_api_event('POST', '{ASYNC}/CreateTask', echo_request(secrets={{'api_key': 'SeCrEt-xray-1'}})"
        ".SerializeToString()), LambdaContext()); assert r['statusCode'] == 200, r\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    documents = []
    try:
        while True:
            header, _, body = daemon.recv(65536).decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    except TimeoutError:
        pass
    finally:
        daemon.close()
    assert "SeCrEt-xray-1" not in json.dumps(documents)
    names = {d["name"]: d for d in documents}
    assert all(d["trace_id"] == trace_id for d in documents)
    connector = names["connector create"]
    assert connector["annotations"] == {"task_type": "echo", "operation": "create"}
    assert "store update_item" in names and "store query" in names
    # botocore, patched: each DynamoDB call is an AWS subsegment under its store subsegment
    ids = {d["id"]: d for d in documents}
    calls = [d for d in documents if d.get("namespace") == "aws" and d["name"] == "dynamodb"]
    assert calls and all(ids[d["parent_id"]]["name"].startswith("store ") for d in calls)
