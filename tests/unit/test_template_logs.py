"""template.yaml's attribution (issue 18): the HTTP API's access log, and every log group the stack
writes, each kept LogRetentionDays (docs/security.md)."""

from __future__ import annotations

import json
import re

from tests.unit.test_template_observability import FUNCTIONS, RESOURCES, TEMPLATE, needs_sam, sam_transform

# What CloudWatch Logs accepts as a log group's RetentionInDays.
RETENTIONS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
LOG_GROUPS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Logs::LogGroup"}


def access_log_format() -> dict[str, str]:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    return json.loads(settings["Format"])


def test_log_retention_days_is_a_parameter_cloudwatch_accepts() -> None:
    parameter = TEMPLATE["Parameters"]["LogRetentionDays"]
    assert parameter["Type"] == "Number" and parameter["Default"] == 90
    assert parameter["AllowedValues"] == RETENTIONS


def test_every_log_group_is_kept_log_retention_days() -> None:
    assert LOG_GROUPS, "the template creates no log group"
    for name, group in LOG_GROUPS.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    names = [json.dumps(group["Properties"]["LogGroupName"]) for group in LOG_GROUPS.values()]
    assert len(set(names)) == len(names), names


def test_every_function_logs_to_a_log_group_of_its_own_that_the_stack_creates() -> None:
    seen = set()
    for name in FUNCTIONS:
        logging_config = RESOURCES[name]["Properties"].get("LoggingConfig") or {}
        group = logging_config.get("LogGroup")
        assert isinstance(group, dict) and set(group) == {"Ref"}, f"{name} logs to Lambda's own group: {group}"
        assert group["Ref"] in LOG_GROUPS, f"{name} logs to {group}, not a log group of the template"
        assert name in LOG_GROUPS[group["Ref"]]["Properties"]["LogGroupName"]["Fn::Sub"], name
        seen.add(group["Ref"])
    assert len(seen) == len(FUNCTIONS), "two functions share a log group"
    assert set(LOG_GROUPS) == seen | {"HttpApiAccessLogGroup"}, "a log group nothing writes to"


def test_the_access_log_names_each_calls_id_caller_route_status_latency_and_integration_error() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    fields = access_log_format()
    wanted = {
        "requestId": "$context.requestId",
        "principal": "$context.identity.userArn",
        "caller": "$context.identity.caller",
        "accountId": "$context.identity.accountId",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationRequestId": "$context.integration.requestId",
        "integrationError": "$context.integrationErrorMessage",
    }
    assert {key: fields.get(key) for key in wanted} == wanted


def test_the_access_log_never_holds_a_path_with_a_task_handle() -> None:
    """GetTask, DeleteTask... over REST carry the task's handle in the path: the route template is
    logged instead, as the functions' own lines leave the handle out."""
    variables = set(
        re.findall(r"\$context\.[A-Za-z.]+", RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]["Format"])
    )
    assert not variables & {"$context.path", "$context.resourcePath", "$context.customDomain.basePathMatched"}
    assert all(value.count("$context.") == 1 for value in access_log_format().values())


@needs_sam
def test_after_the_sam_transform_the_stage_logs_access_and_each_function_its_group() -> None:
    resources = sam_transform()["Resources"]
    [stage] = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["Properties"]["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]
    }
    lambdas = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(lambdas) == set(FUNCTIONS)
    for name, function in lambdas.items():
        assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": f"{name}LogGroup"}}, name
