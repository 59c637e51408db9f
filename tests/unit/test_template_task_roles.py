"""template.yaml's per-project identity (TaskRoleArnPattern): what the functions keep, what the
project roles get, and the trust those roles need.

Evaluated as CloudFormation would (tests/unit/test_template_aws_connectors.py's Stack): with the
pattern set, the functions may assume only roles matching it (its placeholders as ``*``, as
connectors/task_role_pattern.py computes it too) and an explicit Deny takes every other action from them
but DynamoDB, their own secrets and Lambda's own needs, the AWS connectors' grants included. Each
connector has a managed policy for project roles granting exactly what its function policies grant,
existing while the connector is Enabled, and an output naming it; the trust policy output names the
functions that act for tasks.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from connectors.task_role_pattern import RolePattern, parse_pattern
from tests.unit.test_template_aws_connectors import (
    DEFAULTS,
    FULL,
    FUNCTION_OPERATIONS,
    SCOPES,
    SWITCHES,
    TAG_SCOPES,
    TEMPLATE,
    Stack,
    action_resources,
    as_list,
)

PATTERN = "arn:aws:iam::123456789012:role/flyte-{project}-{domain}"
WITH_ROLES = Stack(**SCOPES, SageMakerJobLogs="Enabled", TaskRoleArnPattern=PATTERN)
# The tag-scoped lists left empty under another tag, every other list named (clusters without
# database users): each choice a deployment can make is in one of DEFAULTS, FULL and this.
MIXED = Stack(
    **{name: value for name, value in SCOPES.items() if name not in TAG_SCOPES and name != "RedshiftDbUsers"},
    ConnectorTagKey="team",
    ConnectorTagValue="data",
    SageMakerJobLogs="Enabled",
)
STACKS = {"defaults": DEFAULTS, "every list named": FULL, "tags and lists": MIXED, "with the pattern": WITH_ROLES}
# The functions that call connectors, and so act for tasks (GetTaskMetrics too: a connector may serve metrics).
ACTING = {name for name, operations in FUNCTION_OPERATIONS.items() if operations}
MANAGED_POLICY_LIMIT = 6_144  # IAM: characters (no whitespace) of one managed policy
# What an AWS Lambda function's role is used for by Lambda itself: AWSLambdaBasicExecutionRole and
# X-Ray's write access (SAM adds them), AWSLambdaVPCAccessExecutionRole should it run in a VPC.
LAMBDA_OWN = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
}
SECRETS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:flyte-connectors/*"
PARAMETERS = "arn:aws:ssm:us-east-1:123456789012:parameter/flyte-connectors/*"


def policy_name(switch: str) -> str:
    return switch.removesuffix("Connector") + "TaskRolePolicy"


def service_policy(stack: Stack) -> dict[str, Any]:
    return stack.value(stack.resources()["TaskRolesServicePolicy"]["Properties"])


def function_statements(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """function -> every Allow statement given to its role (SAM's inline policies, every AWS::IAM::Policy)."""
    found: dict[str, list[dict[str, Any]]] = {function: [] for function in FUNCTION_OPERATIONS}
    for name, resource in stack.resources().items():
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in resource["Properties"].get("Policies") or []:
                found[name] += stack.value(policy)["Statement"]
        elif resource["Type"] == "AWS::IAM::Policy":
            for role in stack.value(resource["Properties"]["Roles"]):
                found[role.removesuffix("Role")] += stack.document(resource)["Statement"]
    return found


def denied(deny: list[dict[str, Any]], action: str, resource: str) -> bool:
    for statement in deny:
        if "NotAction" in statement:
            hit = not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["NotAction"]))
        else:
            hit = any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"]))
        if "NotResource" in statement:
            hit = hit and not any(
                fnmatch.fnmatchcase(resource, pattern) for pattern in as_list(statement["NotResource"])
            )
        if hit:
            return True
    return False


# -- the parameter ----------------------------------------------------------------------------------


def test_the_parameter_is_optional_and_takes_what_the_service_accepts() -> None:
    parameter = TEMPLATE["Parameters"]["TaskRoleArnPattern"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    allowed = re.compile(parameter["AllowedPattern"])
    for text in ("", PATTERN, "arn:aws:iam::123456789012:role/flyte/{domain}/{org}-{project}"):
        assert allowed.fullmatch(text), text
        parse_pattern(text)  # the functions' cold start takes it too
    for text in ("arn:aws:iam::123456789012:role/flyte-*", "flyte-{project}", "arn:aws:iam::1234:role/x"):
        assert not allowed.fullmatch(text), text
    assert TEMPLATE["Conditions"]["TaskRolesOn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "TaskRoleArnPattern"}, ""]}]}


# -- the functions' own roles -----------------------------------------------------------------------


def test_without_the_pattern_nothing_changes_for_the_functions() -> None:
    for stack in (DEFAULTS, FULL):
        assert "TaskRolesServicePolicy" not in stack.resources()
        for function, statements in function_statements(stack).items():
            assert not [s for s in statements if any(a.startswith("sts:") for a in as_list(s["Action"]))], function
    assert FULL.grants() == WITH_ROLES.grants()  # the connectors' policies are the same resources either way


@pytest.mark.parametrize(
    ("pattern", "resource"),
    [
        (PATTERN, "arn:aws:iam::123456789012:role/flyte-*-*"),
        ("arn:aws:iam::123456789012:role/flyte/{org}/{domain}-{project}", "arn:aws:iam::123456789012:role/flyte/*/*-*"),
        ("arn:aws:iam::123456789012:role/one-role", "arn:aws:iam::123456789012:role/one-role"),
    ],
)
def test_with_the_pattern_the_functions_may_assume_only_roles_matching_it(pattern: str, resource: str) -> None:
    policy = service_policy(Stack(TaskRoleArnPattern=pattern))
    assert {role.removesuffix("Role") for role in policy["Roles"]} == ACTING
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert sorted(allow["Action"]) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert allow["Resource"] == resource == RolePattern(pattern).iam_resource()


def test_with_the_pattern_the_functions_keep_dynamodb_their_secrets_and_lambdas_own_needs_only() -> None:
    """Every action any policy of the template allows a function's role, the AWS connectors' own
    included, is denied but DynamoDB and the secrets under SecretsPrefix; Lambda's own are not."""
    deny = [s for s in service_policy(WITH_ROLES)["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    kept: set[tuple[str, str]] = set()
    for function, statements in function_statements(WITH_ROLES).items():
        if function not in ACTING:
            continue
        for action, resources in action_resources(statements).items():
            kept |= {
                (action.partition(":")[0], resource) for resource in resources if not denied(deny, action, resource)
            }
    assert {service for service, _ in kept} == {"dynamodb", "secretsmanager", "ssm"}
    assert {resource for service, resource in kept if service == "secretsmanager"} == {SECRETS}
    assert {resource for service, resource in kept if service == "ssm"} == {PARAMETERS}
    for connector_statements in WITH_ROLES.grants().values():  # every connector action is gone
        for statements in connector_statements.values():
            for action, resources in action_resources(statements).items():
                assert all(denied(deny, action, resource) for resource in resources), action
    for action in LAMBDA_OWN | {"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}:
        assert not denied(deny, action, "*"), action
    assert not denied(deny, "secretsmanager:GetSecretValue", SECRETS.replace("*", "athena_query/key"))
    assert denied(deny, "secretsmanager:GetSecretValue", SCOPES["RedshiftSecretArns"][0])


# -- the project roles' policies --------------------------------------------------------------------


def grants_of(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) of every Allow: what the statements grant, however grouped."""
    found = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        condition = json.dumps(statement.get("Condition", {}), sort_keys=True)
        for action in as_list(statement["Action"]):
            found |= {(action, resource, condition) for resource in as_list(statement["Resource"])}
    return found


def create_policy_condition(switch: str) -> str:
    return TEMPLATE["Resources"][f"{switch.removesuffix('Connector')}CreatePolicy"]["Condition"]


@pytest.mark.parametrize("switch", sorted(SWITCHES))
@pytest.mark.parametrize("stack_name", sorted(STACKS))
def test_each_connector_has_a_project_role_policy_granting_what_its_functions_get(switch: str, stack_name: str) -> None:
    stack = STACKS[stack_name]
    resource = TEMPLATE["Resources"][policy_name(switch)]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy" and resource["Condition"] == create_policy_condition(switch)
    assert "Roles" not in resource["Properties"] and "ManagedPolicyName" not in resource["Properties"]
    functions: list[dict[str, Any]] = []
    for by_switch in stack.grants().values():
        functions += by_switch.get(switch, [])
    if policy_name(switch) not in stack.resources():
        assert not functions, f"{switch} is on in {stack_name} but has no project role policy"
        return
    assert functions, f"{switch} is off in {stack_name} but has a project role policy"
    document = stack.document(stack.resources()[policy_name(switch)])
    assert grants_of(document["Statement"]) == grants_of(functions)
    size = len(json.dumps(document, separators=(",", ":")))
    assert size < MANAGED_POLICY_LIMIT, (switch, size)


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_a_disabled_connector_has_no_project_role_policy_and_no_output(switch: str) -> None:
    stack = Stack(**SCOPES, **{switch: "Disabled"})
    assert policy_name(switch) not in stack.resources()
    assert {name for name in SWITCHES if policy_name(name) in stack.resources()} == set(SWITCHES) - {switch}
    output = TEMPLATE["Outputs"][f"{policy_name(switch)}Arn"]
    assert output["Condition"] == create_policy_condition(switch) and output["Value"] == {"Ref": policy_name(switch)}


def test_the_trust_policy_output_lets_the_acting_functions_assume_tag_and_name_the_session() -> None:
    document = json.loads(WITH_ROLES.value(TEMPLATE["Outputs"]["TaskRoleTrustPolicy"]["Value"]))
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert {principal.removesuffix("Role.Arn") for principal in statement["Principal"]["AWS"]} == ACTING
    assert "Condition" not in TEMPLATE["Outputs"]["TaskRoleTrustPolicy"]  # ready before the pattern is set
