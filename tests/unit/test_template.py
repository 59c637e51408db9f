"""template.yaml (and samconfig.toml, the Makefile's SAM build targets) say what the service needs.

Routes and their functions, IAM auth on every route (also after the SAM transform, when the SAM
CLI's venv is there to run it), least-privilege DynamoDB actions per function, the table's
safety settings, the environment, and handlers that exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from connectors import store
from connectors.dev.invoke import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"

CONNECT = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"
TASK_PATH = "{name}/{version}/{resource_meta}"

ROUTES = {
    "CreateTaskFunction": {("POST", f"{CONNECT}/CreateTask"), ("POST", "/api/v1/connector/task")},
    "GetTaskFunction": {("POST", f"{CONNECT}/GetTask"), ("GET", f"/api/v1/connector/task/{TASK_PATH}")},
    "DeleteTaskFunction": {
        ("POST", f"{CONNECT}/DeleteTask"),
        ("DELETE", f"/api/v1/connector/task_executions/{TASK_PATH}"),
    },
    "GetTaskMetricsFunction": {
        ("POST", f"{CONNECT}/GetTaskMetrics"),
        ("GET", f"/api/v1/connector/task/metrics/{TASK_PATH}"),
    },
    "GetTaskLogsFunction": {("POST", f"{CONNECT}/GetTaskLogs"), ("GET", f"/api/v1/connector/task/logs/{TASK_PATH}")},
    "ConnectorMetadataFunction": {
        ("POST", f"{METADATA}/GetConnector"),
        ("POST", f"{METADATA}/ListConnectors"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/connector/{name}"),
        ("GET", "/api/v1/connectors"),
    },
    "AbandonedTaskReaperFunction": set(),
    "StatusEventsFunction": set(),  # the status-events queue's consumer (tests/unit/test_template_status_events.py)
}

HANDLERS = {
    "CreateTaskFunction": "handlers.create_task.handler",
    "GetTaskFunction": "handlers.get_task.handler",
    "DeleteTaskFunction": "handlers.delete_task.handler",
    "GetTaskMetricsFunction": "handlers.get_task_metrics.handler",
    "GetTaskLogsFunction": "handlers.get_task_logs.handler",
    "ConnectorMetadataFunction": "handlers.connector_metadata.handler",
    "AbandonedTaskReaperFunction": "handlers.reap_abandoned.handler",
    "StatusEventsFunction": "handlers.status_events.handler",
}

TABLE = {"Fn::GetAtt": ["TasksTable", "Arn"]}
ACTIVE_INDEX = {"Fn::Sub": f"${{TasksTable.Arn}}/index/{store.ACTIVE_INDEX}"}
JOB_INDEX = {"Fn::Sub": f"${{TasksTable.Arn}}/index/{store.JOB_INDEX}"}
# (action, resource) pairs each function may use, and nothing else: exactly the calls its code
# makes (tests/functional/test_iam_matches_calls.py records them).
DYNAMODB_GRANTS = {
    "CreateTaskFunction": {(a, json.dumps(TABLE)) for a in ("PutItem", "UpdateItem", "Query")},
    "GetTaskFunction": {(a, json.dumps(TABLE)) for a in ("GetItem", "UpdateItem")},
    "DeleteTaskFunction": {(a, json.dumps(TABLE)) for a in ("GetItem", "UpdateItem")},
    "GetTaskMetricsFunction": {("GetItem", json.dumps(TABLE))},
    "GetTaskLogsFunction": {("GetItem", json.dumps(TABLE))},
    "ConnectorMetadataFunction": set(),
    "AbandonedTaskReaperFunction": {("Query", json.dumps(ACTIVE_INDEX)), ("UpdateItem", json.dumps(TABLE))},
    "StatusEventsFunction": {
        ("Query", json.dumps(JOB_INDEX)),
        ("GetItem", json.dumps(TABLE)),
        ("UpdateItem", json.dumps(TABLE)),
    },
}
# Beside DynamoDB, only the status-events queue's consumer reads (and deletes from) its queue: the
# actions Lambda's event source needs, on that queue only (tests/unit/test_template_status_events.py).
QUEUE_CONSUMER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
STATUS_EVENTS_QUEUE = {"Fn::GetAtt": ["StatusEventsQueue", "Arn"]}

ENVIRONMENT = {
    "TASKS_TABLE": {"Ref": "TasksTable"},
    "CONNECTOR_MODULES": {"Ref": "ConnectorModules"},
    "LOG_LEVEL": {"Ref": "LogLevel"},
    "CONNECTOR_TIMEOUT_SECONDS": {"Ref": "ConnectorTimeoutSeconds"},
    "CREATE_CLAIM_SECONDS": {"Ref": "CreateClaimSeconds"},
    "TERMINAL_RETENTION_DAYS": {"Ref": "TerminalRetentionDays"},
    "ABANDONED_AFTER_MINUTES": {"Ref": "AbandonedAfterMinutes"},
    "STATUS_STALE_AFTER_MINUTES": {"Ref": "StatusStaleAfterMinutes"},
    "REPLAY_WINDOW_MINUTES": {"Ref": "ReplayWindowMinutes"},
    "STATUS_READ_INTERVAL_SECONDS": {"Ref": "StatusReadIntervalSeconds"},
    # Only with the status-events resources deployed (tests/unit/test_template_status_events.py).
    "STATUS_SAFETY_READ_MINUTES": {"Fn::If": ["StatusEventsOn", {"Ref": "StatusSafetyReadMinutes"}, "0"]},
    "MAX_REQUEST_BYTES": {"Ref": "MaxRequestBytes"},
    "IDEMPOTENCY_TOKEN_SALT": {"Ref": "AWS::StackName"},
    "SECRETS_PREFIX": {"Ref": "SecretsPrefix"},
    "FLYTE_DATABRICKS_ALLOWED_INSTANCES": {"Ref": "DatabricksInstances"},
    "DATABRICKS_ALLOWED_SUBMIT_FIELDS": {"Ref": "DatabricksAllowedSubmitFields"},
    # Per-project identity (tests/unit/test_template_task_roles.py).
    "TASK_ROLE_ARN_PATTERN": {"Ref": "TaskRoleArnPattern"},
    "FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS": {"Ref": "SnowflakeAccounts"},
    "FLYTE_SLURM_ALLOWED_HOSTS": {"Ref": "SlurmHosts"},
    "GLUE_ALLOWED_CODE_ARGUMENTS": {"Ref": "GlueAllowedCodeArguments"},
    "BATCH_ALLOWED_OVERRIDES": {"Ref": "BatchAllowedOverrides"},
    "REDSHIFT_ALLOWED_DB_USERS": {"Fn::Join": [",", {"Ref": "RedshiftDbUsers"}]},
    # X-Ray: the Powertools tracer follows the Tracing parameter (tests/unit/test_template_observability.py).
    "POWERTOOLS_TRACE_DISABLED": {"Fn::If": ["TracingEnabled", "false", "true"]},
    "AWS_ENDPOINT_URL_DYNAMODB": {"Fn::If": ["UseLocalEndpoint", {"Ref": "LocalEndpointUrl"}, {"Ref": "AWS::NoValue"}]},
    "AWS_ENDPOINT_URL": {"Fn::If": ["UseLocalEndpoint", {"Ref": "LocalEndpointUrl"}, {"Ref": "AWS::NoValue"}]},
}
PARAMETER_DEFAULTS = {
    "ConnectorModules": "",
    "LogLevel": "INFO",
    "ConnectorTimeoutSeconds": 8,
    "CreateClaimSeconds": 60,
    "TerminalRetentionDays": 30,
    "AbandonedAfterMinutes": 60,
    "StatusStaleAfterMinutes": 30,
    "ReplayWindowMinutes": 180,
    "StatusReadIntervalSeconds": 5,
    # Status events (tests/unit/test_template_status_events.py).
    "StatusEvents": "Enabled",
    "StatusSafetyReadMinutes": 5,
    "MaxRequestBytes": 4194304,
    "MemorySize": 512,
    "ReaperSchedule": "rate(5 minutes)",
    "SecretsPrefix": "flyte-connectors",
    "DatabricksInstances": "",
    "DatabricksAllowedSubmitFields": "",
    "SnowflakeAccounts": "",
    "SlurmHosts": "",
    "GlueAllowedCodeArguments": "",
    "BatchAllowedOverrides": "",
    "RedshiftDbUsers": "",
    # Observability and cold start (tests/unit/test_template_observability.py).
    "LogRetentionDays": 90,  # tests/unit/test_template_logs.py
    "Tracing": "Disabled",
    "LocalEndpointUrl": "",
    "SnapStart": "Disabled",
    "AlarmTopicArn": "",
    "InternalErrorRatePercent": 5,
    # Per-project identity (tests/unit/test_template_task_roles.py).
    "TaskRoleArnPattern": "",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def http_events(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["Properties"] for e in (function["Properties"].get("Events") or {}).values() if e["Type"] == "HttpApi"]


def test_one_function_per_operation_with_its_handler(template: dict[str, Any]) -> None:
    found = {name: f["Properties"]["Handler"] for name, f in functions(template).items()}
    assert found == HANDLERS


def test_every_handler_named_exists(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
        assert path.is_file(), f"{logical_id}'s handler module {module} has no {path.relative_to(ROOT)}"
        assert re.search(rf"^{attribute}\s*[:=]|^def {attribute}\(", path.read_text(), re.M), (
            f"{path.relative_to(ROOT)} defines no {attribute}"
        )


def test_each_function_serves_its_own_routes_only(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        events = http_events(function)
        assert {(e["Method"].upper(), e["Path"]) for e in events} == ROUTES[name], name
        for event in events:
            assert event["ApiId"] == {"Ref": "HttpApi"}, f"{name} {event['Path']} is not on the HttpApi"
            assert event.get("PayloadFormatVersion", "2.0") == "2.0"


def test_every_route_requires_iam_auth(template: dict[str, Any]) -> None:
    apis = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::HttpApi"}
    assert list(apis) == ["HttpApi"]
    auth = apis["HttpApi"]["Properties"]["Auth"]
    assert auth["EnableIamAuthorizer"] is True  # without it SAM does not treat AWS_IAM as SigV4
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    for name, function in functions(template).items():
        for event in http_events(function):
            # A route may only restate the default, never switch auth off or to another authorizer.
            assert event.get("Auth", {}).get("Authorizer", "AWS_IAM") == "AWS_IAM", f"{name} {event['Path']}"
    # No other way in: no function URLs, no REST Api, no other API resource.
    types = {v["Type"] for v in template["Resources"].values()}
    assert not types & {"AWS::Serverless::Api", "AWS::Lambda::Url", "AWS::ApiGatewayV2::Route"}
    for function in functions(template).values():
        assert "FunctionUrlConfig" not in function["Properties"]


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="the SAM CLI venv (.tools/sam, `make lint-template`) is missing")
def test_every_route_is_aws_iam_after_the_sam_transform() -> None:
    """Run SAM's own translator and read the HTTP API definition it generates."""
    script = r"""
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
# SAM validates CodeUri/ContentUri as S3 locations once built and packaged.
template["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::LayerVersion":
        resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", script, str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    resources = json.loads(result.stdout)["Resources"]
    apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert len(apis) == 1
    body = apis[0]["Properties"]["Body"]
    schemes = body["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    routes = {
        (method.upper(), path): operation
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
    }
    assert set(routes) == set().union(*ROUTES.values())
    for route, operation in routes.items():
        assert operation.get("security") == [{"AWS_IAM": []}], route
        assert operation["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    # Nothing else routes to the functions: no $default route, no stray API Gateway routes.
    assert not [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]


def dynamodb_grants(function: dict[str, Any]) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    for policy in function["Properties"].get("Policies") or []:
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"only explicit statements, got {policy}"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                service, _, verb = action.partition(":")
                if service == "sqs":
                    assert action in QUEUE_CONSUMER_ACTIONS and resources == [STATUS_EVENTS_QUEUE], statement
                    continue
                assert service == "dynamodb" and "*" not in verb, action
                grants |= {(verb, json.dumps(r)) for r in resources}
    return grants


@pytest.mark.parametrize("logical_id", sorted(DYNAMODB_GRANTS))
def test_each_function_has_only_its_operations_dynamodb_actions(template: dict[str, Any], logical_id: str) -> None:
    function = template["Resources"][logical_id]
    assert "Role" not in function["Properties"]
    assert dynamodb_grants(function) == DYNAMODB_GRANTS[logical_id]
    globals_ = template["Globals"]["Function"]
    assert "Policies" not in globals_ and "Role" not in globals_


def test_table_keys_index_and_safety_settings(template: dict[str, Any]) -> None:
    table = template["Resources"]["TasksTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert "TableName" not in properties  # CloudFormation names it: several stacks can coexist
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["KeySchema"] == [
        {"AttributeName": "action_id", "KeyType": "HASH"},
        {"AttributeName": "attempt", "KeyType": "RANGE"},
    ]
    attributes = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert attributes == {"action_id": "S", "attempt": "N", "active_shard": "S", "heartbeat_at": "N", "job_key": "S"}
    index, job_index = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "active-by-heartbeat" == store.ACTIVE_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "active_shard", "KeyType": "HASH"},
        {"AttributeName": "heartbeat_at", "KeyType": "RANGE"},
    ]
    # The reaper reads keys and the heartbeat only; a heartbeat write then touches a small index item.
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # A state-change event finds its task by the key it names the job by; KEYS_ONLY: the receiver
    # reads the record itself (strongly consistent), and only create and the end write the index.
    assert job_index == {
        "IndexName": store.JOB_INDEX,
        "KeySchema": [{"AttributeName": "job_key", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


class _SchemaRecorder:
    """Stands in for the DynamoDB client: keeps what TaskTable.create_table asks for."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.calls["create_table"] = kwargs

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.calls["update_time_to_live"] = kwargs

    def get_waiter(self, name: str) -> Any:
        class Waiter:
            def wait(self, **kwargs: Any) -> None:
                pass

        return Waiter()


def test_table_matches_the_schema_the_store_creates(template: dict[str, Any]) -> None:
    """template.yaml and TaskTable.create_table (local runs and tests) define one table."""
    recorder = _SchemaRecorder()
    store.TaskTable("tasks", recorder).create_table()
    created = recorder.calls["create_table"]
    properties = template["Resources"]["TasksTable"]["Properties"]

    def by_name(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {item[key]: item for item in items}

    assert created["BillingMode"] == properties["BillingMode"]
    assert by_name(created["AttributeDefinitions"], "AttributeName") == by_name(
        properties["AttributeDefinitions"], "AttributeName"
    )
    assert created["KeySchema"] == properties["KeySchema"]
    assert by_name(created["GlobalSecondaryIndexes"], "IndexName") == by_name(
        properties["GlobalSecondaryIndexes"], "IndexName"
    )
    ttl = recorder.calls["update_time_to_live"]["TimeToLiveSpecification"]
    assert {"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]} == properties["TimeToLiveSpecification"]


def test_runtime_environment_and_parameters(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["MemorySize"] == {"Ref": "MemorySize"}
    variables = dict(globals_["Environment"]["Variables"])
    # Built from the AWS connectors' switches, as are their parameters and IAM policies: those are
    # checked in tests/unit/test_template_aws_connectors.py (which also checks that no other
    # parameter is there).
    assert variables.pop("DISABLED_CONNECTORS")
    assert variables.pop("CONNECTOR_TAG_KEY") and variables.pop("CONNECTOR_TAG_VALUE")  # the scope tag, likewise
    assert variables == ENVIRONMENT
    parameters = template["Parameters"]
    assert {name: parameters[name]["Default"] for name in PARAMETER_DEFAULTS} == PARAMETER_DEFAULTS
    # A connector call must end before the executor's 10 s CreateTask deadline and the function's timeout.
    assert PARAMETER_DEFAULTS["ConnectorTimeoutSeconds"] < 10
    assert parameters["ConnectorTimeoutSeconds"]["MaxValue"] < globals_["Timeout"]
    for name, function in functions(template).items():
        properties = function["Properties"]
        assert "Environment" not in properties, f"{name} should take the environment from Globals"
        assert function["Metadata"]["BuildMethod"] == "makefile"
        timeout = properties.get("Timeout", globals_["Timeout"])
        assert timeout == {"AbandonedTaskReaperFunction": 300, "StatusEventsFunction": 30}.get(name, 15), name
    reaper_events = template["Resources"]["AbandonedTaskReaperFunction"]["Properties"]["Events"]
    assert [e["Properties"]["Schedule"] for e in reaper_events.values() if e["Type"] == "Schedule"] == [
        {"Ref": "ReaperSchedule"}
    ]


def test_reaper_runs_never_overlap(template: dict[str, Any]) -> None:
    """One reaper run at a time: reserved concurrency 1, and no other function is limited."""
    for name, function in functions(template).items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == (1 if name == "AbandonedTaskReaperFunction" else None), name
    assert "ReservedConcurrentExecutions" not in template["Globals"]["Function"]


def test_a_create_claim_outlives_the_create_task_function(template: dict[str, Any]) -> None:
    """A claim's lease must outlast the invocation holding it, or a retry could take the claim over
    (and call create again) while the first CreateTask still runs: no value of the parameter allows it."""
    create_task = template["Resources"]["CreateTaskFunction"]["Properties"]
    timeout = create_task.get("Timeout", template["Globals"]["Function"]["Timeout"])
    claim = template["Parameters"]["CreateClaimSeconds"]
    assert claim["MinValue"] > timeout
    assert claim["Default"] >= claim["MinValue"]


def test_dependencies_layer_is_built_for_the_runtime(template: dict[str, Any]) -> None:
    layer = template["Resources"]["DependenciesLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["CompatibleRuntimes"] == [template["Globals"]["Function"]["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == template["Globals"]["Function"]["Architectures"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "DependenciesLayer"}]


def test_makefile_has_a_build_target_for_every_function_and_the_layer(template: dict[str, Any]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^SAM_FUNCTIONS\s*:=\s*((?:.*\\\n)*.*)$", makefile, re.M)
    assert match, "Makefile has no SAM_FUNCTIONS list"
    listed = set(match.group(1).replace("\\\n", " ").split())
    assert listed == set(functions(template))
    assert re.search(r"^build-DependenciesLayer:", makefile, re.M)
    assert re.search(r"^\$\(addprefix build-,\$\(SAM_FUNCTIONS\)\):", makefile, re.M)


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert outputs["TasksTableName"]["Value"] == {"Ref": "TasksTable"}
    assert outputs["ApiInvokePolicyArn"]["Value"] == {"Ref": "ApiInvokePolicy"}
    for name in functions(template):
        assert outputs[f"{name}Arn"]["Value"] == {"Fn::GetAtt": [name, "Arn"]}


def test_invoke_policy_grants_only_invoking_this_api(template: dict[str, Any]) -> None:
    policy = template["Resources"]["ApiInvokePolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert "ManagedPolicyName" not in policy["Properties"]  # CAPABILITY_IAM suffices
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"},
    }


def test_samconfig_makes_sam_deploy_need_no_flags() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"]
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert "region" not in deploy and "region" not in default["global"]["parameters"]  # `--guided` asks
    assert default["build"]["parameters"]["build_in_source"] is True


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="the SAM CLI venv (.tools/sam, `make lint-template`) is missing")
@pytest.mark.timeout(360)  # eight functions and the layer: past 120 s on two loaded cores
def test_sam_build_packages_only_the_runtime(tmp_path: Path) -> None:
    """`sam build` (about 10 s): each function holds connectors/ and handlers/, the layer the dependencies."""
    python = Path(
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python.parent}:{os.environ.get('PATH', '')}"}
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [
            str(SAM_PYTHON.parent / "sam"),
            "build",
            "--build-in-source",
            "--build-dir",
            str(build_dir),
            "--template-file",
            str(TEMPLATE_PATH),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template = load_template(TEMPLATE_PATH)
    for name, function in functions(template).items():
        package = build_dir / name
        assert sorted(p.name for p in package.iterdir()) == ["connectors", "handlers"], name
        module = function["Properties"]["Handler"].rpartition(".")[0]
        assert (package / (module.replace(".", "/") + ".py")).is_file()
        assert not (package / "connectors" / "dev").exists()
        assert not (package / "connectors" / "relay").exists()  # it runs next to the executor
        pycs = list(package.rglob("*.pyc"))
        assert pycs and all(p.name.endswith(".cpython-312.pyc") for p in pycs)
    layer = build_dir / "DependenciesLayer" / "python"
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = {re.sub(r"[-_.]+", "-", p.name.split("-")[0]).lower() for p in layer.glob("*.dist-info")}
    for requirement in dependencies:
        assert re.split(r"[<>=!~\[; ]", requirement)[0].replace("_", "-").lower() in installed, requirement
    native = [p.name for p in layer.rglob("*.so")]
    assert native and all("x86_64" not in n for n in native), "the layer must hold arm64 (aarch64) wheels"
    assert any("aarch64" in n for n in native)
    assert not [p for p in layer.iterdir() if p.name in ("pytest", "moto", "flyte", "uvicorn", "hypothesis")]
