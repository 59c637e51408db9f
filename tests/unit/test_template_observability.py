"""template.yaml's observability and cold-start parts: the dashboard, the alarms, X-Ray and SnapStart.

The template is evaluated for given parameter values (conditions and Fn::If resolved) as
CloudFormation would; the SAM transform itself is run when the SAM CLI's venv is there, and
cfn-lint and ``sam validate --lint`` run on a copy with SnapStart Enabled by default.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.dev.invoke import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
CFN_LINT = ROOT / ".venv" / "bin" / "cfn-lint"

TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = sorted(name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
# The functions every stack has: the per-function widgets and alarms list them. The
# StatusEventsFunction exists only with StatusEvents on: its own widget and alarms (the queue's
# age and dead-letter queue, which its failures and throttles show in) are checked below.
STATUS_EVENTS_FUNCTION = "StatusEventsFunction"
ALWAYS_FUNCTIONS = [name for name in FUNCTIONS if "Condition" not in RESOURCES[name]]
API_FUNCTIONS = [name for name in ALWAYS_FUNCTIONS if name != "AbandonedTaskReaperFunction"]
# The values of the metrics' `operation` dimension (connectors/observability/metrics.py: flyte's
# own, then the operations flyte's server does not count), each with a p99 latency series.
OPERATIONS = ["create", "get", "delete", "get_metrics", "get_logs", "get_connector", "list_connectors"]
NAMESPACE = "FlyteConnectors"
NO_VALUE = object()


# -- evaluating the template for parameter values ------------------------------------------------


def parameter_values(**overrides: Any) -> dict[str, Any]:
    values = {name: p.get("Default") for name, p in TEMPLATE["Parameters"].items()}
    values.update(overrides)
    return values


def evaluate(node: Any, params: dict[str, Any]) -> Any:
    """``node`` with Ref (of a parameter), Fn::Join, Fn::Equals, Fn::Not and Fn::If resolved as
    CloudFormation would for ``params``; other intrinsics are kept."""
    if isinstance(node, list):
        return [v for v in (evaluate(item, params) for item in node) if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and value == "AWS::NoValue":
            return NO_VALUE
        if key == "Ref" and value in params:
            return params[value]
        if key == "Fn::Join":
            parts = evaluate(value[1], params)
            if all(isinstance(p, str) for p in parts):
                return value[0].join(parts)
        if key == "Fn::Equals":
            left, right = (evaluate(v, params) for v in value)
            return left == right
        if key == "Fn::Not":
            return not evaluate(value[0], params)
        if key == "Fn::And":
            return all(evaluate(item, params) for item in value)
        if key == "Fn::Or":
            return any(evaluate(item, params) for item in value)
        if key == "Condition":
            return condition(value, params)
        if key == "Fn::If":
            chosen = value[1] if condition(value[0], params) else value[2]
            return evaluate(chosen, params)
    out = {k: evaluate(v, params) for k, v in node.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


def condition(name: str, params: dict[str, Any]) -> bool:
    result = evaluate(TEMPLATE["Conditions"][name], params)
    assert isinstance(result, bool), (name, result)
    return result


# -- the dashboard --------------------------------------------------------------------------------


def dashboard_variables() -> dict[str, Any]:
    """The body's own variables (the Status events resources, which a stack may not have)."""
    sub = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return {} if isinstance(sub, str) else sub[1]


def dashboard_body() -> tuple[str, dict[str, Any]]:
    sub = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = sub if isinstance(sub, str) else sub[0]
    assert isinstance(body, str)
    variables = set(re.findall(r"\$\{([^}!]+)\}", body))
    substituted = re.sub(r"\$\{([^}!]+)\}", lambda m: f"SUB-{m.group(1).replace(':', '-')}", body)
    return body, {"variables": variables, "json": json.loads(substituted)}


def test_the_dashboard_body_is_json_once_substituted_and_names_only_known_variables() -> None:
    _, parsed = dashboard_body()
    for name in parsed["variables"]:
        assert name in RESOURCES or name in ("AWS::Region", "AWS::StackName") or name in dashboard_variables(), name
    for name, value in dashboard_variables().items():
        # A resource that exists only with StatusEvents on, "none" (a widget without data) otherwise.
        [switch, present, absent] = value["Fn::If"]
        assert switch == "StatusEventsOn" and absent == "none", name
        target = present.get("Ref") or present["Fn::GetAtt"][0]
        assert RESOURCES[target]["Condition"] == switch, name
    widgets = parsed["json"]["widgets"]
    assert widgets and all({"type", "x", "y", "width", "height", "properties"} <= set(w) for w in widgets)
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24


def _widget(title_part: str) -> dict[str, Any]:
    _, parsed = dashboard_body()
    found = [w for w in parsed["json"]["widgets"] if title_part in w["properties"].get("title", "")]
    assert len(found) == 1, title_part
    return found[0]["properties"]


def test_the_dashboard_shows_requests_errors_and_p99_latency_of_every_operation() -> None:
    requests = json.dumps(_widget("Requests by operation")["metrics"])
    assert "flyte_connector_requests_success_total" in requests and "GROUP BY operation" in requests
    errors = json.dumps(_widget("Errors by operation")["metrics"])
    assert "flyte_connector_requests_failure_total" in errors and "GROUP BY operation, error_code" in errors
    latency = _widget("p99 latency")
    assert latency["stat"] == "p99"
    expressions = [m[0]["expression"] for m in latency["metrics"]]
    for operation in OPERATIONS:
        [expression] = [e for e in expressions if f'operation=\\"{operation}\\"' in json.dumps(e)]
        assert "flyte_connector_request_latency_seconds" in expression and "'p99'" in expression
        assert f'Namespace="{NAMESPACE}"' in expression


def test_the_dashboard_shows_tasks_throttles_lambda_errors_and_cold_starts() -> None:
    tasks = json.dumps(_widget("Tasks:")["metrics"])
    for metric in ("tasks_created", "tasks_superseded", "tasks_reaped"):
        assert f"SUM(flyte_connector_{metric}_total) FROM {NAMESPACE}" in tasks
    assert "WHERE operation = 'delete'" in tasks  # cancelled by the executor
    failures = json.dumps(_widget("Reaper and cancel failures")["metrics"])
    assert "flyte_connector_reaper_failures_total" in failures and "flyte_connector_cancel_failures_total" in failures
    assert "flyte_connector_suspected_orphans_total" in failures
    dynamodb = _widget("DynamoDB throttled")["metrics"]
    assert {m[5] for m in dynamodb} == {"GetItem", "PutItem", "UpdateItem", "Query"}
    assert all(m[:4] == ["AWS/DynamoDB", "ThrottledRequests", "TableName", "SUB-TasksTable"] for m in dynamodb)
    for title, metric in (("Lambda errors", "Errors"), ("Lambda throttles", "Throttles")):
        series = _widget(title)["metrics"]
        assert {m[3] for m in series} == {f"SUB-{f}" for f in ALWAYS_FUNCTIONS}
        assert all(m[:3] == ["AWS/Lambda", metric, "FunctionName"] for m in series)
    assert 'MetricName=\\"ColdStart\\"' in json.dumps(_widget("Cold starts (Powertools")["metrics"])
    logs = _widget("Cold starts per function")
    for function in ALWAYS_FUNCTIONS:
        assert f"SOURCE '/aws/lambda/SUB-{function}'" in logs["query"]
    assert "@initDuration" in logs["query"] and "Restore Duration" in logs["query"]


# -- the alarms -----------------------------------------------------------------------------------

ALARMS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _check_metric_math(metrics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_id = {m["Id"]: m for m in metrics}
    assert len(by_id) == len(metrics)
    assert sum(1 for m in metrics if m.get("ReturnData")) == 1
    assert sum(1 for m in metrics if "MetricStat" in m) <= 10  # CloudWatch's limit per alarm
    for m in metrics:
        expression = m.get("Expression", "")
        if expression and not expression.startswith("SELECT"):
            for name in re.findall(r"\b([a-z][A-Za-z0-9_]*)\b", expression):
                if name not in ("FILL", "MAX", "SUM", "IF"):
                    assert name in by_id, (name, expression)
        if expression.startswith("SELECT"):
            assert m["Period"] == 300 and f"FROM {NAMESPACE}" in expression
    return by_id


def test_the_internal_error_rate_alarm_divides_internal_failures_by_all_requests() -> None:
    alarm = ALARMS["InternalErrorRateAlarm"]["Properties"]
    by_id = _check_metric_math(alarm["Metrics"])
    assert by_id["internal"]["Expression"].endswith(
        "SUM(flyte_connector_requests_failure_total) FROM FlyteConnectors WHERE error_code = 'internal'"
    )
    assert "flyte_connector_requests_failure_total" in by_id["failures"]["Expression"]
    assert "flyte_connector_requests_success_total" in by_id["successes"]["Expression"]
    rate = by_id["rate"]
    assert rate["ReturnData"] and rate["Expression"].startswith("100 * FILL(internal, 0) /")
    assert "successes" in rate["Expression"] and "failures" in rate["Expression"]
    assert alarm["Threshold"] == {"Ref": "InternalErrorRatePercent"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_throttling_alarms_sum_every_function_and_every_table_operation() -> None:
    lambda_alarm = ALARMS["LambdaThrottlesAlarm"]["Properties"]
    by_id = _check_metric_math(lambda_alarm["Metrics"])
    stats = [m["MetricStat"] for m in by_id.values() if "MetricStat" in m]
    assert {s["Metric"]["MetricName"] for s in stats} == {"Throttles"}
    assert {s["Metric"]["Dimensions"][0]["Value"]["Ref"] for s in stats} == set(ALWAYS_FUNCTIONS)
    assert (
        by_id["throttles"]["Expression"]
        == "SUM([" + ", ".join(sorted((i for i in by_id if "MetricStat" in by_id[i]), key=lambda i: int(i[1:]))) + "])"
    )

    table_alarm = ALARMS["DynamoDBThrottlesAlarm"]["Properties"]
    by_id = _check_metric_math(table_alarm["Metrics"])
    stats = [m["MetricStat"]["Metric"] for m in by_id.values() if "MetricStat" in m]
    assert {s["MetricName"] for s in stats} == {"ThrottledRequests"}
    assert {s["Namespace"] for s in stats} == {"AWS/DynamoDB"}
    assert {s["Dimensions"][1]["Value"] for s in stats} == {"GetItem", "PutItem", "UpdateItem", "Query"}
    assert all(s["Dimensions"][0] == {"Name": "TableName", "Value": {"Ref": "TasksTable"}} for s in stats)

    errors = ALARMS["LambdaErrorsAlarm"]["Properties"]
    by_id = _check_metric_math(errors["Metrics"])
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in by_id.values() if "MetricStat" in m} == {"Errors"}


def test_the_reaper_failures_alarm() -> None:
    alarm = ALARMS["ReaperFailuresAlarm"]["Properties"]
    [query] = alarm["Metrics"]
    _check_metric_math(alarm["Metrics"])
    assert query["Expression"] == "SELECT SUM(flyte_connector_reaper_failures_total) FROM FlyteConnectors"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_suspected_orphans_alarm() -> None:
    alarm = ALARMS["SuspectedOrphansAlarm"]["Properties"]
    [query] = alarm["Metrics"]
    _check_metric_math(alarm["Metrics"])
    assert query["Expression"] == "SELECT SUM(flyte_connector_suspected_orphans_total) FROM FlyteConnectors"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_without_a_topic_the_alarms_have_no_actions_and_with_one_they_notify_it() -> None:
    assert set(ALARMS) == {
        "InternalErrorRateAlarm",
        "LambdaThrottlesAlarm",
        "DynamoDBThrottlesAlarm",
        "LambdaErrorsAlarm",
        "ReaperFailuresAlarm",
        "SuspectedOrphansAlarm",
        "StatusEventsDeadLetterAlarm",
        "StatusEventsQueueAgeAlarm",
    }
    topic = "arn:aws:sns:us-east-1:123456789012:on-call"
    for name, alarm in ALARMS.items():
        quiet = evaluate(alarm["Properties"], parameter_values(AlarmTopicArn=""))
        assert "AlarmActions" not in quiet and "OKActions" not in quiet, name
        loud = evaluate(alarm["Properties"], parameter_values(AlarmTopicArn=topic))
        assert loud["AlarmActions"] == [topic] and loud["OKActions"] == [topic], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    pattern = TEMPLATE["Parameters"]["AlarmTopicArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, topic)
    assert not re.fullmatch(pattern, "on-call")


# -- X-Ray and SnapStart in the template ----------------------------------------------------------


def test_tracing_follows_its_parameter_in_lambda_and_in_powertools() -> None:
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Tracing"] == {"Ref": "Tracing"}
    assert TEMPLATE["Parameters"]["Tracing"]["AllowedValues"] == ["Active", "PassThrough", "Disabled"]
    for value, disabled in (("Active", "false"), ("PassThrough", "false"), ("Disabled", "true")):
        env = evaluate(globals_["Environment"]["Variables"], parameter_values(Tracing=value))
        assert env["POWERTOOLS_TRACE_DISABLED"] == disabled


@pytest.mark.parametrize("switch", ["Enabled", "Disabled"])
def test_every_function_publishes_versions_behind_an_alias_with_snapstart_as_switched(switch: str) -> None:
    params = parameter_values(SnapStart=switch)
    globals_ = evaluate(TEMPLATE["Globals"]["Function"], params)
    assert globals_["AutoPublishAlias"] == "live"
    assert globals_["SnapStart"] == {"ApplyOn": "PublishedVersions" if switch == "Enabled" else "None"}
    for name in FUNCTIONS:
        properties = RESOURCES[name]["Properties"]
        assert properties.get("AutoPublishAliasAllProperties") is True, name
        assert "SnapStart" not in properties and "AutoPublishAlias" not in properties, name  # Globals' apply
    assert RESOURCES["DependenciesLayer"]["Properties"]["PublishLambdaVersion"] is True


def sam_transform(**parameters: str) -> dict[str, Any]:
    script = r"""
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class ManagedPolicies:
    def load(self):
        return {"AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}

template = yaml_parse(open(sys.argv[1]).read())
template["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::LayerVersion":
        resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
print(json.dumps(transform(template, json.loads(sys.argv[2]), ManagedPolicies())))
"""
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", script, str(TEMPLATE_PATH), json.dumps(parameters)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


needs_sam = pytest.mark.skipif(
    not SAM_PYTHON.exists(), reason="the SAM CLI venv (.tools/sam, `make lint-template`) is missing"
)


@needs_sam
def test_with_snapstart_enabled_the_api_and_the_schedule_call_each_function_s_alias() -> None:
    params = {"SnapStart": "Enabled"}
    out = sam_transform(**params)
    resources = out["Resources"]
    values = parameter_values(**params)
    aliases = {}
    for name in FUNCTIONS:
        function = resources[name]
        assert function["Type"] == "AWS::Lambda::Function"
        assert evaluate(function["Properties"]["SnapStart"], values) == {"ApplyOn": "PublishedVersions"}
        [version] = [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::Lambda::Version" and r["Properties"]["FunctionName"] == {"Ref": name}
        ]
        alias = f"{name}Aliaslive"
        assert resources[alias]["Type"] == "AWS::Lambda::Alias"
        assert resources[alias]["Properties"]["Name"] == "live"
        assert resources[alias]["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
        aliases[name] = alias
    paths = resources["HttpApi"]["Properties"]["Body"]["paths"]
    targets = {}
    for path, methods in paths.items():
        for method, operation in methods.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            [target] = re.findall(r"/functions/\$\{([^}]+)\}/invocations$", uri)
            targets[(method, path)] = target
    assert len(targets) >= 2 * len(API_FUNCTIONS)
    assert set(targets.values()) == {aliases[name] for name in API_FUNCTIONS}  # never $LATEST
    permissions = [
        r["Properties"]["FunctionName"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert permissions and all(p in [{"Ref": a} for a in aliases.values()] for p in permissions)
    [rule] = [
        r for name, r in resources.items() if r["Type"] == "AWS::Events::Rule" and not name.endswith("StatusEventsRule")
    ]
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": aliases["AbandonedTaskReaperFunction"]}
    [source] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert source["Properties"]["FunctionName"] == {"Ref": aliases[STATUS_EVENTS_FUNCTION]}


@needs_sam
@pytest.mark.parametrize("tracing", ["Active", "Disabled"])
def test_tracing_grants_xray_only_when_on(tracing: str) -> None:
    resources = sam_transform(Tracing=tracing)["Resources"]
    for name in FUNCTIONS:
        config = resources[name]["Properties"].get("TracingConfig")
        role = resources[f"{name}Role"]["Properties"]
        xray = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess" in json.dumps(role.get("ManagedPolicyArns", []))
        assert (config is not None) == xray == (tracing == "Active"), name


def _lint_copy(tmp_path: Path, snapstart: str) -> Path:
    text = TEMPLATE_PATH.read_text()
    old = "  SnapStart:\n    Type: String\n    Default: Disabled\n"
    assert old in text
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace(old, old.replace("Disabled", snapstart)))
    return copy


@pytest.mark.skipif(not CFN_LINT.exists(), reason="cfn-lint is not installed in .venv")
def test_cfn_lint_is_clean_with_snapstart_enabled(tmp_path: Path) -> None:
    copy = _lint_copy(tmp_path, "Enabled")
    result = subprocess.run([str(CFN_LINT), str(copy)], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_sam
def test_sam_validate_lint_is_clean_with_snapstart_enabled(tmp_path: Path) -> None:
    copy = _lint_copy(tmp_path, "Enabled")
    result = subprocess.run(
        [str(SAM_PYTHON.parent / "sam"), "validate", "--lint", "--region", "us-east-1", "--template-file", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_and_alarms_read_the_names_the_service_emits() -> None:
    """The metric names and namespace connectors/observability/metrics.py writes are the ones read here."""
    metrics = pytest.importorskip("connectors.observability.metrics")
    text = TEMPLATE_PATH.read_text()
    assert metrics.NAMESPACE == NAMESPACE
    for name in (
        "REQUESTS_SUCCESS",
        "REQUESTS_FAILURE",
        "REQUEST_LATENCY",
        "TASKS_CREATED",
        "TASKS_SUPERSEDED",
        "TASKS_REAPED",
        "CANCEL_FAILURES",
        "REAPER_FAILURES",
        "SUSPECTED_ORPHANS",
        "COLD_START",
        "STATUS_EVENTS",
    ):
        assert getattr(metrics, name) in text, name
    documented = metrics.__doc__ or ""
    for operation in OPERATIONS[3:]:
        assert operation in documented, operation
