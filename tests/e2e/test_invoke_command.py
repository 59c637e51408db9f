"""`connectors invoke`: template.yaml's handler and environment, an event file, the response.

The invocations run in a child process, as a user runs the command: a handler module builds its
service once per process (a cold start), and the tests must not leave one behind in pytest's.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.dev import invoke as invoke_module
from connectors.dev.invoke import decode_body, function_config, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
LIST_CONNECTORS = "/flyteidl2.connector.ConnectorMetadataService/ListConnectors"

needs_handler = pytest.mark.skipif(
    not (ROOT / "handlers" / "connector_metadata.py").exists(),
    reason="handlers/connector_metadata.py does not exist yet",
)


def http_api_event(
    method: str, path: str, body: bytes = b"", content_type: str = "application/proto"
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, the body base64 as API Gateway sends a binary body."""
    host = "abc123.execute-api.us-east-1.amazonaws.com"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": content_type,
            "content-length": str(len(body)),
            "connect-protocol-version": "1",
            "host": host,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            # Every route requires IAM auth: API Gateway names the signer (a Lambda event without one is refused).
            "authorizer": {
                "iam": {
                    "accountId": "123456789012",
                    "callerId": "AROAEXAMPLE:invoke",
                    "userArn": "arn:aws:sts::123456789012:assumed-role/connectors-test/invoke",
                    "userId": "AROAEXAMPLE:invoke",
                }
            },
            "domainName": host,
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "connectors-test",
            },
            "requestId": "test-request",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "25/Nov/2025:10:00:00 +0000",
            "timeEpoch": 1764064800000,
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "invoke", *args, "--template", str(TEMPLATE)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_handler
def test_invoke_list_connectors_prints_the_response_and_its_decoded_proto(tmp_path: Path) -> None:
    from flyteidl2.connector import connector_pb2

    event = tmp_path / "list_connectors.json"
    event.write_text(
        json.dumps(http_api_event("POST", LIST_CONNECTORS, connector_pb2.ListConnectorsRequest().SerializeToString()))
    )

    result = run_command("ConnectorMetadataFunction", str(event))

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["statusCode"] == 200
    assert shown["headers"]["content-type"] == "application/proto"
    assert shown["isBase64Encoded"] is True
    reply = connector_pb2.ListConnectorsResponse.FromString(base64.b64decode(shown["body"]))
    categories = {(c.name, c.version) for connector in reply.connectors for c in connector.supported_task_categories}
    assert ("echo", 0) in categories
    # The readable form matches the proto.
    decoded_names = {
        c["name"] for connector in shown["decodedBody"]["connectors"] for c in connector["supportedTaskCategories"]
    }
    assert "echo" in decoded_names


@needs_handler
def test_invoke_function_runs_in_process_with_the_template_environment(tmp_path: Path) -> None:
    """invoke() imports the handler with the template's environment; the caller's values win."""
    event = tmp_path / "healthz.json"
    event.write_text(json.dumps(http_api_event("GET", "/healthz", content_type="application/json")))
    script = f"""
import json, os
from connectors.dev.invoke import invoke
seen = {{}}
import connectors.settings as settings
original = settings.Settings.from_env
def spy(cls=settings.Settings):
    seen.update({{k: os.environ.get(k) for k in ("TASKS_TABLE", "LOG_LEVEL", "CONNECTOR_TIMEOUT_SECONDS",
                 "MAX_REQUEST_BYTES", "AWS_LAMBDA_FUNCTION_NAME")}})
    return original()
settings.Settings.from_env = staticmethod(spy)
response = invoke("ConnectorMetadataFunction", {str(event)!r}, {str(TEMPLATE)!r})
after = {{k: os.environ.get(k) for k in ("LOG_LEVEL", "AWS_LAMBDA_FUNCTION_NAME")}}
print(json.dumps({{"response": response, "seen": seen, "after": after}}))
"""
    env = {key: value for key, value in os.environ.items() if key not in ("TASKS_TABLE", "LOG_LEVEL")}
    env["LOG_LEVEL"] = "WARNING"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["response"]["statusCode"] == 200
    assert json.loads(out["response"]["body"])["status"] == "ok"
    assert out["seen"] == {
        "TASKS_TABLE": "connector-tasks",  # !Ref TasksTable, TASKS_TABLE unset
        "LOG_LEVEL": "WARNING",  # the caller's value, not the parameter's INFO
        "CONNECTOR_TIMEOUT_SECONDS": "8",  # !Ref ConnectorTimeoutSeconds -> its Default
        "MAX_REQUEST_BYTES": "4194304",
        "AWS_LAMBDA_FUNCTION_NAME": "ConnectorMetadataFunction",
    }
    # The environment is put back after the call.
    assert out["after"] == {"LOG_LEVEL": "WARNING", "AWS_LAMBDA_FUNCTION_NAME": None}


def test_unknown_function_is_a_usage_error(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(http_api_event("POST", LIST_CONNECTORS)))
    result = run_command("NoSuchFunction", str(event))
    assert result.returncode == 2
    assert "NoSuchFunction is not a function" in result.stderr
    assert "ConnectorMetadataFunction" in result.stderr  # it lists the ones there are


def test_loader_reads_short_form_tags_as_data() -> None:
    template = load_template(TEMPLATE)
    assert template["Globals"]["Function"]["Environment"]["Variables"]["TASKS_TABLE"] == {"Ref": "TasksTable"}
    arns = {v["Value"]["Fn::GetAtt"][0] for k, v in template["Outputs"].items() if k.endswith("FunctionArn")}
    assert "CreateTaskFunction" in arns
    assert "Fn::Sub" in template["Outputs"]["ApiUrl"]["Value"]


def test_function_config_merges_globals_and_resolves_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKS_TABLE", raising=False)
    config = function_config("AbandonedTaskReaperFunction", TEMPLATE)
    assert config["handler"] == "handlers.reap_abandoned.handler"
    assert config["timeout"] == 300  # the function's own value over the Globals' 15
    assert config["memory"] == 512
    assert config["code_dir"] == ROOT
    env = config["environment"]
    assert env["TASKS_TABLE"] == "connector-tasks"
    assert env["CONNECTOR_MODULES"] == ""
    assert env["LOG_LEVEL"] == "INFO"
    assert env["CREATE_CLAIM_SECONDS"] == "60"
    assert env["TERMINAL_RETENTION_DAYS"] == "30"
    assert env["ABANDONED_AFTER_MINUTES"] == "60"

    monkeypatch.setenv("TASKS_TABLE", "my-table")
    assert function_config("GetTaskFunction", TEMPLATE)["environment"]["TASKS_TABLE"] == "my-table"


def test_sub_and_function_level_variables(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("""
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Handler: app.handler
    Environment:
      Variables: {A: global, B: !Ref Stage}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Environment:
        Variables:
          B: own
          C: !Sub "${Stage}-${AWS::Region}"
          D: !Join [":", [x, !Ref Stage]]
""")
    config = function_config("Fn", template)
    assert config["environment"] == {"A": "global", "B": "own", "C": f"dev-{config['region']}", "D": "x:dev"}
    assert config["timeout"] == 5


def test_decode_body_reads_a_connect_stream() -> None:
    from flyteidl2.connector import connector_pb2

    from connectors.connect_envelope import END_STREAM, encode

    header = connector_pb2.GetTaskLogsResponse(header=connector_pb2.GetTaskLogsResponseHeader(token="t1"))
    framed = encode(header.SerializeToString()) + encode(b"{}", END_STREAM)
    response = {
        "statusCode": 200,
        "isBase64Encoded": True,
        "body": base64.b64encode(framed).decode(),
        "headers": {"content-type": "application/connect+proto"},
    }
    decoded = decode_body(response, {"rawPath": "/flyteidl2.connector.AsyncConnectorService/GetTaskLogs"})
    assert decoded == [{"header": {"token": "t1"}}, {}]
    assert decode_body({"statusCode": 200, "body": "{}", "isBase64Encoded": False}) is None
    assert invoke_module._output_type("/not/a/procedure") is None


def test_the_status_events_function_s_config_resolves_its_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    """StatusEventsOn (And, Or, Condition) is evaluated on the parameters' defaults: events on."""
    monkeypatch.delenv("STATUS_SAFETY_READ_MINUTES", raising=False)
    config = function_config("StatusEventsFunction", TEMPLATE)
    assert config["handler"] == "handlers.status_events.handler"
    assert config["timeout"] == 30
    assert config["environment"]["STATUS_SAFETY_READ_MINUTES"] == "5"
