"""template.yaml grants each AWS connector exactly what its class declares, and a switch takes it away.

The connector classes come from one place: every module of connectors/builtin/aws/ that defines a
concrete AwsConnector subclass. For each one, every function's IAM policies grant the actions the
class declares (``iam_actions``) for the operations that function performs, plus what AWS needs
of the caller on its behalf (Athena's S3 and Glue reads), and no other AWS-connector action.
The template is evaluated here as CloudFormation would (parameters, conditions, ``!If``,
``!Join``/``!Split``/``!Sub``, a policy document given as JSON text), so a connector switched off
is checked to keep no grant at all and to be named in DISABLED_CONNECTORS, and each resource list
is checked as it resolves.

And a deployment with the default parameters touches nothing the operator did not name or tag
(issue 18, docs/security.md): no statement of any policy grants a start, run-as, credential or
data action on every resource of a kind without a condition on the stack's tag, and each
connector is either scoped by that tag or off.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import connectors.builtin.aws as aws_package
from connectors.builtin import builtin_connector_classes, disabled_task_types
from connectors.builtin.aws import AWS_CONNECTORS
from connectors.builtin.aws.base import AwsConnector
from connectors.connector import AsyncConnector
from connectors.dev.invoke import load_template
from tests.unit.test_template import PARAMETER_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")

# The connector operations (ConnectorCalls' names) each function performs: connectors/service.py,
# cancel.py and reaper.py. CreateTask creates, deletes a job it cannot keep and supersedes older
# attempts (delete, or create replayed with an older attempt's token to find its job); DeleteTask
# deletes an active task only (its job is known); the reaper deletes and replays create.
# tests/functional/test_iam_matches_calls.py checks these against the calls each function makes.
FUNCTION_OPERATIONS: dict[str, frozenset[str]] = {
    "CreateTaskFunction": frozenset({"create", "delete"}),
    "GetTaskFunction": frozenset({"get"}),
    "DeleteTaskFunction": frozenset({"delete"}),
    "GetTaskMetricsFunction": frozenset({"get_metrics"}),
    "GetTaskLogsFunction": frozenset({"get_logs"}),
    "ConnectorMetadataFunction": frozenset(),
    "AbandonedTaskReaperFunction": frozenset({"create", "delete"}),
    # Reads each event's detail with the connector's code, never its remote: no AWS-connector grant.
    "StatusEventsFunction": frozenset(),
}
# An operation's key in a connector's iam_actions (an AWS connector serves no metrics).
IAM_KEY = {"create": "create", "get": "get", "delete": "delete", "get_logs": "logs", "get_metrics": "metrics"}

# The switch of each connector: the parameter named after its class, and the task type it turns off.
SWITCHES = {
    "AthenaQueryConnector": "athena_query",
    "RedshiftQueryConnector": "redshift_query",
    "AwsBatchJobConnector": "aws_batch_job",
    "SfnExecutionConnector": "sfn_execution",
    "EmrServerlessJobConnector": "emr_serverless_job",
    "SageMakerTrainingJobConnector": "sagemaker_training_job",
    "SageMakerProcessingJobConnector": "sagemaker_processing_job",
    "GlueJobConnector": "glue_job",
}

# What AWS does with the caller's permissions, granted beside the connector's own calls.
ON_BEHALF: dict[str, dict[str, frozenset[str]]] = {
    # Athena runs the query as StartQueryExecution's caller: result files, data, catalog metadata.
    "athena_query": {
        "create": frozenset(
            {
                "s3:GetBucketLocation",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:GetObject",
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
                "glue:GetDatabase",
                "glue:GetDatabases",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
            }
        )
    },
}
# The service each connector passes a role to (iam:PassedToService).
PASSED_TO = {
    "emr_serverless_job": "emr-serverless.amazonaws.com",
    "sagemaker_training_job": "sagemaker.amazonaws.com",
    "sagemaker_processing_job": "sagemaker.amazonaws.com",
}

R, A = "us-east-1", "123456789012"  # the stand-ins for AWS::Region and AWS::AccountId
# A value for every resource parameter, shaped as a deployment would give it.
SCOPES: dict[str, list[str]] = {
    "AthenaWorkGroupArns": [f"arn:aws:athena:{R}:{A}:workgroup/flyte"],
    "AthenaResultsBucketArns": ["arn:aws:s3:::results-a", "arn:aws:s3:::results-b"],
    "AthenaDataBucketArns": ["arn:aws:s3:::lake"],
    "AthenaGlueCatalogArns": [f"arn:aws:glue:{R}:{A}:database/sales", f"arn:aws:glue:{R}:{A}:table/sales/*"],
    "RedshiftClusterArns": [f"arn:aws:redshift:{R}:{A}:cluster:main", f"arn:aws:redshift:{R}:{A}:cluster:adhoc"],
    "RedshiftDbUsers": ["flyte", "reports"],
    "RedshiftWorkgroupArns": [f"arn:aws:redshift-serverless:{R}:{A}:workgroup/0f1e"],
    "RedshiftSecretArns": [f"arn:aws:secretsmanager:{R}:{A}:secret:redshift-AbCdEf"],
    "BatchJobQueueArns": [f"arn:aws:batch:{R}:{A}:job-queue/flyte"],
    "BatchJobDefinitionArns": [f"arn:aws:batch:{R}:{A}:job-definition/train:*"],
    "BatchLogGroupArns": [f"arn:aws:logs:{R}:{A}:log-group:/flyte/batch"],
    "StateMachineArns": [f"arn:aws:states:{R}:{A}:stateMachine:etl", f"arn:aws:states:{R}:{A}:stateMachine:report"],
    "EmrServerlessApplicationArns": [f"arn:aws:emr-serverless:{R}:{A}:/applications/00f1"],
    "SageMakerJobArns": [
        f"arn:aws:sagemaker:{R}:{A}:training-job/flyte-*",
        f"arn:aws:sagemaker:{R}:{A}:processing-job/flyte-*",
    ],
    "GlueJobArns": [f"arn:aws:glue:{R}:{A}:job/nightly"],
    "GlueLogGroupArns": [f"arn:aws:logs:{R}:{A}:log-group:/flyte/glue/output"],
    "ConnectorExecutionRoleArns": [f"arn:aws:iam::{A}:role/flyte-jobs"],
}
# Left empty, these grant the resources tagged ConnectorTagKey: ConnectorTagValue (the stack's name).
TAG_SCOPES = {
    "AthenaWorkGroupArns",
    "BatchJobQueueArns",
    "BatchJobDefinitionArns",
    "EmrServerlessApplicationArns",
    "SageMakerJobArns",
    "GlueJobArns",
    "ConnectorExecutionRoleArns",
}
# Left empty, the others grant nothing, and so do the actions only they grant (for the two
# connectors IAM cannot scope by tags, the whole connector is off: OFF_UNTIL_NAMED).
OPTIONAL_SCOPES = set(SCOPES) - TAG_SCOPES
OFF_UNTIL_NAMED = {"RedshiftQueryConnector", "SfnExecutionConnector"}
# What a default deployment leaves out of the connectors that are on: Athena's reads and writes of
# S3 (no bucket named), and GetTaskLogs (no log group named; SageMakerJobLogs Disabled).
ABSENT_BY_DEFAULT: dict[str, set[str]] = {
    "AthenaQueryConnector": {action for action in ON_BEHALF["athena_query"]["create"] if action.startswith("s3:")},
}
NO_LOGS_BY_DEFAULT = {
    "AwsBatchJobConnector",
    "GlueJobConnector",
    "SageMakerTrainingJobConnector",
    "SageMakerProcessingJobConnector",
}
# The parameters that are neither a switch nor a resource list: the scope tag, and SageMaker's logs.
TAG_PARAMETERS = {"ConnectorTagKey": "flyte-connectors", "ConnectorTagValue": ""}
OTHER_PARAMETERS = {**TAG_PARAMETERS, "SageMakerJobLogs": "Disabled"}
STACK_NAME = "flyte-staging"  # the stand-in for AWS::StackName: the tag value by default

# Every (connector, action) with the resources it resolves to when every parameter of SCOPES is given.
# "*": the action has no resource-level permissions. Fixed ARNs: resources a parameter cannot narrow
# (job ids not known ahead, the account's Glue catalog, SageMaker's own log groups).
SM, LOGS = f"arn:aws:sagemaker:{R}:{A}", f"arn:aws:logs:{R}:{A}:log-group"
SCOPED_RESOURCES: dict[tuple[str, str], set[str]] = {
    ("AthenaQueryConnector", "athena:StartQueryExecution"): {f"arn:aws:athena:{R}:{A}:workgroup/flyte"},
    ("AthenaQueryConnector", "athena:GetQueryExecution"): {f"arn:aws:athena:{R}:{A}:workgroup/flyte"},
    ("AthenaQueryConnector", "athena:StopQueryExecution"): {f"arn:aws:athena:{R}:{A}:workgroup/flyte"},
    ("AthenaQueryConnector", "s3:GetBucketLocation"): {
        "arn:aws:s3:::results-a",
        "arn:aws:s3:::results-b",
        "arn:aws:s3:::lake",
    },
    ("AthenaQueryConnector", "s3:ListBucket"): {
        "arn:aws:s3:::results-a",
        "arn:aws:s3:::results-b",
        "arn:aws:s3:::lake",
    },
    ("AthenaQueryConnector", "s3:ListBucketMultipartUploads"): {"arn:aws:s3:::results-a", "arn:aws:s3:::results-b"},
    ("AthenaQueryConnector", "s3:GetObject"): {
        "arn:aws:s3:::results-a/*",
        "arn:aws:s3:::results-b/*",
        "arn:aws:s3:::lake/*",
    },
    **{
        ("AthenaQueryConnector", action): {"arn:aws:s3:::results-a/*", "arn:aws:s3:::results-b/*"}
        for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
    },
    **{
        ("AthenaQueryConnector", action): {
            f"arn:aws:glue:{R}:{A}:catalog",
            f"arn:aws:glue:{R}:{A}:database/sales",
            f"arn:aws:glue:{R}:{A}:table/sales/*",
        }
        for action in ON_BEHALF["athena_query"]["create"]
        if action.startswith("glue:")
    },
    ("RedshiftQueryConnector", "redshift-data:ExecuteStatement"): {
        f"arn:aws:redshift:{R}:{A}:cluster:main",
        f"arn:aws:redshift:{R}:{A}:cluster:adhoc",
        f"arn:aws:redshift-serverless:{R}:{A}:workgroup/0f1e",
    },
    ("RedshiftQueryConnector", "redshift-serverless:GetCredentials"): {
        f"arn:aws:redshift-serverless:{R}:{A}:workgroup/0f1e"
    },
    ("RedshiftQueryConnector", "redshift:GetClusterCredentials"): {  # dbuser: only RedshiftDbUsers (a condition)
        f"arn:aws:redshift:{R}:{A}:dbuser:main/*",
        f"arn:aws:redshift:{R}:{A}:dbuser:adhoc/*",
        f"arn:aws:redshift:{R}:{A}:dbname:main/*",
        f"arn:aws:redshift:{R}:{A}:dbname:adhoc/*",
    },
    ("RedshiftQueryConnector", "redshift:GetClusterCredentialsWithIAM"): {
        f"arn:aws:redshift:{R}:{A}:dbname:main/*",
        f"arn:aws:redshift:{R}:{A}:dbname:adhoc/*",
    },
    ("RedshiftQueryConnector", "secretsmanager:GetSecretValue"): {
        f"arn:aws:secretsmanager:{R}:{A}:secret:redshift-AbCdEf"
    },
    ("RedshiftQueryConnector", "redshift-data:DescribeStatement"): {"*"},
    ("RedshiftQueryConnector", "redshift-data:CancelStatement"): {"*"},
    ("AwsBatchJobConnector", "batch:ListJobs"): {"*"},
    ("AwsBatchJobConnector", "batch:SubmitJob"): {
        f"arn:aws:batch:{R}:{A}:job/*",  # the new job: only carrying the stack's tag (aws:RequestTag)
        f"arn:aws:batch:{R}:{A}:job-queue/flyte",
        f"arn:aws:batch:{R}:{A}:job-definition/train:*",
    },
    ("AwsBatchJobConnector", "batch:TagResource"): {f"arn:aws:batch:{R}:{A}:job/*"},  # aws:RequestTag
    ("AwsBatchJobConnector", "batch:DescribeJobs"): {"*"},
    ("AwsBatchJobConnector", "batch:TerminateJob"): {f"arn:aws:batch:{R}:{A}:job/*"},  # aws:ResourceTag
    ("AwsBatchJobConnector", "logs:FilterLogEvents"): {f"{LOGS}:/flyte/batch", f"{LOGS}:/flyte/batch:*"},
    **{
        ("SfnExecutionConnector", action): {
            f"arn:aws:states:{R}:{A}:stateMachine:etl",
            f"arn:aws:states:{R}:{A}:stateMachine:report",
        }
        for action in ("states:StartExecution", "states:DescribeStateMachine")  # EXPRESS refused first
    },
    **{
        ("SfnExecutionConnector", action): {
            f"arn:aws:states:{R}:{A}:execution:etl:*",
            f"arn:aws:states:{R}:{A}:execution:report:*",
        }
        for action in ("states:DescribeExecution", "states:StopExecution")
    },
    ("EmrServerlessJobConnector", "emr-serverless:StartJobRun"): {f"arn:aws:emr-serverless:{R}:{A}:/applications/00f1"},
    **{
        ("EmrServerlessJobConnector", action): {f"arn:aws:emr-serverless:{R}:{A}:/applications/00f1/jobruns/*"}
        for action in ("emr-serverless:TagResource", "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun")
    },
    ("EmrServerlessJobConnector", "iam:PassRole"): {f"arn:aws:iam::{A}:role/flyte-jobs"},
    **{
        ("SageMakerTrainingJobConnector", action): {f"{SM}:training-job/flyte-*", f"{SM}:processing-job/flyte-*"}
        for action in (
            "sagemaker:DescribeTrainingJob",
            "sagemaker:ListTags",
            "sagemaker:CreateTrainingJob",
            "sagemaker:AddTags",
            "sagemaker:StopTrainingJob",
        )
    },
    ("SageMakerTrainingJobConnector", "iam:PassRole"): {f"arn:aws:iam::{A}:role/flyte-jobs"},
    ("SageMakerTrainingJobConnector", "logs:FilterLogEvents"): {
        f"{LOGS}:/aws/sagemaker/TrainingJobs",
        f"{LOGS}:/aws/sagemaker/TrainingJobs:*",
    },
    **{
        ("SageMakerProcessingJobConnector", action): {f"{SM}:training-job/flyte-*", f"{SM}:processing-job/flyte-*"}
        for action in (
            "sagemaker:DescribeProcessingJob",
            "sagemaker:ListTags",
            "sagemaker:CreateProcessingJob",
            "sagemaker:AddTags",
            "sagemaker:StopProcessingJob",
        )
    },
    ("SageMakerProcessingJobConnector", "iam:PassRole"): {f"arn:aws:iam::{A}:role/flyte-jobs"},
    ("SageMakerProcessingJobConnector", "logs:FilterLogEvents"): {
        f"{LOGS}:/aws/sagemaker/ProcessingJobs",
        f"{LOGS}:/aws/sagemaker/ProcessingJobs:*",
    },
    **{
        ("GlueJobConnector", action): {f"arn:aws:glue:{R}:{A}:job/nightly"}
        for action in ("glue:GetJobRuns", "glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun")
    },
    ("GlueJobConnector", "logs:FilterLogEvents"): {f"{LOGS}:/flyte/glue/output", f"{LOGS}:/flyte/glue/output:*"},
}
INLINE_POLICY_LIMIT = 10_240  # IAM: characters (no whitespace) of all of a role's inline policies together


# -- the connector classes ------------------------------------------------------------------------


def connector_classes() -> dict[str, type[AwsConnector[Any]]]:
    """Every concrete AwsConnector class defined in a module of connectors/builtin/aws/, by class name."""
    found: dict[str, type[AwsConnector[Any]]] = {}
    for module_info in pkgutil.iter_modules(aws_package.__path__):
        module = importlib.import_module(f"{aws_package.__name__}.{module_info.name}")
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, AwsConnector)
                and cls.__module__ == module.__name__
                and getattr(cls, "task_type_name", None)
            ):
                found[cls.__name__] = cls
    return found


CLASSES = connector_classes()


def connector(switch: str) -> type[AwsConnector[Any]]:
    assert switch in CLASSES, f"no module of connectors/builtin/aws/ defines {switch}"
    return CLASSES[switch]


def expected_actions(switch: str, function: str, by_default: bool = False) -> set[str]:
    """What ``function`` needs for the connector of ``switch``: the declared actions of its
    operations, and AWS's on-behalf needs; ``by_default``: less what a default deployment leaves out."""
    cls = connector(switch)
    actions: set[str] = set()
    for operation in FUNCTION_OPERATIONS[function]:
        key = IAM_KEY[operation]
        if by_default and key == "logs" and switch in NO_LOGS_BY_DEFAULT:
            continue
        actions |= set(cls.iam_actions.get(key, ())) | ON_BEHALF.get(cls.task_type_name, {}).get(key, frozenset())
    return actions - ABSENT_BY_DEFAULT.get(switch, set()) if by_default else actions


# -- the template, evaluated as CloudFormation would ------------------------------------------------

NO_VALUE = object()


class Stack:
    """template.yaml with parameter values (the Defaults, less ``values``): conditions and intrinsics resolved."""

    def __init__(self, **values: Any) -> None:
        self.template = TEMPLATE
        self.parameters: dict[str, Any] = {}
        for name, parameter in TEMPLATE["Parameters"].items():
            value = values.pop(name, parameter.get("Default"))
            if parameter["Type"] == "CommaDelimitedList" and isinstance(value, str):
                value = value.split(",")
            self.parameters[name] = value
        assert not values, f"no such parameters: {sorted(values)}"
        self.pseudo = {
            "AWS::Region": R,
            "AWS::AccountId": A,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::NoValue": NO_VALUE,
        }

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.pseudo[arg] if arg in self.pseudo else self.parameters.get(arg, arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(arg))
            if key == "Fn::Or":
                return any(self.value(arg))
            if key == "Fn::Join":
                items = self.value(arg[1])
                assert isinstance(arg[0], str) and all(isinstance(item, str) for item in items), node
                return arg[0].join(items)
            if key == "Fn::Split":
                return self.value(arg[1]).split(arg[0])
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
                return re.sub(
                    r"\$\{([^}!]+)\}", lambda m: str(extra[m[1]] if m[1] in extra else self.value({"Ref": m[1]})), text
                )
            if key == "Fn::GetAtt":
                return ".".join(arg)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def resources(self) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def document(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A policy's document as IAM gets it: CloudFormation parses one given as (JSON) text."""
        document = self.value(resource["Properties"]["PolicyDocument"])
        return json.loads(document) if isinstance(document, str) else document

    def policies(self) -> dict[str, dict[str, Any]]:
        """Every IAM policy the stack makes, by name (its functions' inline ones as <Function>Policies):
        the documents, resolved."""
        found: dict[str, dict[str, Any]] = {}
        for name, resource in self.resources().items():
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                found[name] = self.document(resource)
            elif resource["Type"] == "AWS::Serverless::Function":  # SAM's inline statements
                policies = resource["Properties"].get("Policies") or []
                statements = [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]
                found[f"{name}Policies"] = {"Statement": self.value(statements)}
            elif resource["Type"] == "AWS::IAM::Role":
                for policy in self.value(resource["Properties"].get("Policies") or []):
                    document = policy["PolicyDocument"]
                    found[f"{name}/{policy['PolicyName']}"] = (
                        json.loads(document) if isinstance(document, str) else document
                    )
        return found

    def tag(self) -> tuple[str, str]:
        """The tag the connectors' grants are scoped by: ConnectorTagKey, and ConnectorTagValue or the stack's name."""
        return self.parameters["ConnectorTagKey"], self.parameters["ConnectorTagValue"] or STACK_NAME

    def disabled_connectors_text(self) -> str:
        """DISABLED_CONNECTORS as every function gets it."""
        return self.value(self.template["Globals"]["Function"]["Environment"]["Variables"]["DISABLED_CONNECTORS"])

    def disabled_connectors(self) -> set[str]:
        return disabled_task_types(self.disabled_connectors_text())

    def grants(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """function -> connector switch -> the statements its policies give that function's role."""
        found: dict[str, dict[str, list[dict[str, Any]]]] = {function: {} for function in FUNCTION_OPERATIONS}
        for name, resource in self.resources().items():
            if resource["Type"] != "AWS::IAM::Policy" or name in SERVICE_POLICIES:
                continue
            switch = switch_of(name)
            for role in self.value(resource["Properties"]["Roles"]):
                function = role.removesuffix("Role")
                assert role.endswith("Role") and function in FUNCTION_OPERATIONS, f"{name} is on {role}"
                statements = self.document(resource)["Statement"]
                found[function].setdefault(switch, []).extend(statements)
        return found


# Policies of the service itself, not of one AWS connector (checked on their own below).
SERVICE_POLICIES = {"ConnectorSecretsPolicy"}


def switches_in(condition: str) -> set[str]:
    """The connector switches a condition tests (through the conditions it names): each as its
    own ``<switch>Enabled``, which must be required (``Fn::And``), never an alternative."""
    test = TEMPLATE["Conditions"][condition]
    if (
        test.keys() == {"Fn::Equals"}
        and test["Fn::Equals"][1] == "Enabled"
        and test["Fn::Equals"][0].get("Ref") in SWITCHES
    ):
        return {test["Fn::Equals"][0]["Ref"]}
    if test.keys() == {"Fn::And"}:
        return set().union(*(switches_in(part["Condition"]) for part in test["Fn::And"] if "Condition" in part))
    return set()


def switch_of(policy: str) -> str:
    """The switch whose condition a policy's existence hangs on (every AWS-connector policy has one)."""
    condition = TEMPLATE["Resources"][policy].get("Condition")
    assert condition, f"{policy} exists whatever the switches say"
    switches = switches_in(condition)
    assert len(switches) == 1, f"{policy} hangs on {condition}, which requires no single connector switch"
    return switches.pop()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        found |= set(as_list(statement["Action"]))
    return found


def action_resources(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            found.setdefault(action, set()).update(as_list(statement["Resource"]))
    return found


FULL = Stack(**SCOPES, SageMakerJobLogs="Enabled")  # every resource parameter given, every grant on
DEFAULTS = Stack()


# -- the parameters ---------------------------------------------------------------------------------


def test_the_aws_parameters_are_a_switch_per_connector_its_resource_lists_and_the_scope_tag() -> None:
    parameters = TEMPLATE["Parameters"]
    assert set(parameters) == set(PARAMETER_DEFAULTS) | set(SWITCHES) | set(SCOPES) | set(OTHER_PARAMETERS)
    for switch, task_type in SWITCHES.items():
        assert parameters[switch]["Type"] == "String"
        assert parameters[switch]["Default"] == "Enabled" and parameters[switch]["AllowedValues"] == [
            "Enabled",
            "Disabled",
        ]
        assert TEMPLATE["Conditions"][f"{switch}Enabled"] == {"Fn::Equals": [{"Ref": switch}, "Enabled"]}
        assert task_type in parameters[switch]["Description"]
    for name in SCOPES:
        assert parameters[name]["Type"] == "CommaDelimitedList" and parameters[name]["Default"] == "", name
        description = parameters[name]["Description"]
        assert ("Empty: none" in description) == (name in OPTIONAL_SCOPES), name
        assert ("ConnectorTagKey" in description) == (name in TAG_SCOPES), name
    assert {name: parameters[name]["Default"] for name in OTHER_PARAMETERS} == OTHER_PARAMETERS


@pytest.mark.parametrize("text", ["flyte-connectors", "team:data/ml", "a b_c.d=e+f@g", ""])
def test_the_scope_tag_parameters_keep_quotes_and_backslashes_out_of_the_policies_json(text: str) -> None:
    """The tag's key and value are written into policy documents given as JSON text."""
    for name, parameter in ((name, TEMPLATE["Parameters"][name]) for name in TAG_PARAMETERS):
        pattern = re.compile(parameter["AllowedPattern"])
        assert bool(pattern.fullmatch(text)) == (bool(text) or name == "ConnectorTagValue"), (name, text)
        for bad in ('"', "\\", "x" * 257):
            assert not pattern.fullmatch(bad), (name, bad)


def references(node: Any) -> set[str]:
    """Every name a Ref or a ${...} of a Sub names in ``node``."""
    if isinstance(node, list):
        return set().union(*map(references, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set().union(*map(references, node.values())) if node else set()
    if "Ref" in node and isinstance(node["Ref"], str):
        found.add(node["Ref"])
    if "Fn::Sub" in node:
        text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
        found |= set(re.findall(r"\$\{([^}!.]+)\}", text))
    return found


def test_every_parameter_is_used() -> None:
    used = references({key: value for key, value in TEMPLATE.items() if key != "Parameters"})
    assert not set(TEMPLATE["Parameters"]) - used
    unused = set(TEMPLATE["Conditions"]) - set(
        json.dumps(TEMPLATE["Resources"]).split('"')
        + json.dumps(TEMPLATE["Globals"]).split('"')
        + json.dumps(list(TEMPLATE["Conditions"].values())).split('"')
    )
    assert not unused, f"conditions no resource or value uses: {sorted(unused)}"


def test_the_functions_get_the_scope_tag_the_policies_test() -> None:
    """CONNECTOR_TAG_KEY and CONNECTOR_TAG_VALUE (connectors/builtin/aws/base.py scope_tag) are the
    key and value the tag conditions name: the stack's name unless ConnectorTagValue is given."""
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for stack in (DEFAULTS, Stack(ConnectorTagKey="team", ConnectorTagValue="ml")):
        assert (stack.value(variables["CONNECTOR_TAG_KEY"]), stack.value(variables["CONNECTOR_TAG_VALUE"])) == (
            stack.tag()
        )
    assert DEFAULTS.tag() == ("flyte-connectors", STACK_NAME)


# -- switches ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_connector_class_has_its_switch_and_declares_its_operations(switch: str) -> None:
    cls = connector(switch)
    assert cls.task_type_name == SWITCHES[switch]
    assert set(cls.iam_actions) <= {"create", "get", "delete", "logs"} and cls.iam_actions["create"]
    assert ("logs" in cls.iam_actions) == (cls.get_logs is not AsyncConnector.get_logs), (
        f"{switch} declares logs actions only if it serves GetTaskLogs"
    )
    assert cls.get_metrics is AsyncConnector.get_metrics, f"{switch} serves metrics: GetTaskMetrics needs its grants"
    assert ("iam:PassRole" in cls.iam_actions["create"]) == (cls.task_type_name in PASSED_TO)


def test_connector_modules_are_the_ones_the_template_switches_and_registers() -> None:
    assert set(CLASSES) == set(SWITCHES), (
        f"connectors without a switch: {sorted(set(CLASSES) - set(SWITCHES))}, "
        f"switches without a connector: {sorted(set(SWITCHES) - set(CLASSES))}"
    )
    assert {task_type: spec.path for task_type, spec in AWS_CONNECTORS.items()} == {
        cls.task_type_name: f"{cls.__module__.rpartition('.')[2]}:{name}" for name, cls in CLASSES.items()
    }


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_a_switched_off_connector_is_left_out_at_cold_start(switch: str) -> None:
    """The value DISABLED_CONNECTORS resolves to is one the service accepts (a name it does not
    know fails the cold start) and leaves out exactly that connector."""
    stack = Stack(**SCOPES, **{switch: "Disabled"})
    kept = {cls.__name__ for cls in builtin_connector_classes(stack.disabled_connectors_text())}
    assert kept == {cls.__name__ for cls in builtin_connector_classes("")} - {switch}


def test_every_connector_named_is_on_and_all_disabled_disables_every_aws_connector() -> None:
    assert FULL.disabled_connectors() == set()
    assert Stack(**dict.fromkeys(SWITCHES, "Disabled")).disabled_connectors() == set(SWITCHES.values())
    none_left = Stack(**SCOPES, **dict.fromkeys(SWITCHES, "Disabled")).grants()
    assert all(not by_switch for by_switch in none_left.values()), none_left


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_a_disabled_connector_keeps_no_grant_and_is_named_in_disabled_connectors(switch: str) -> None:
    stack = Stack(**SCOPES, SageMakerJobLogs="Enabled", **{switch: "Disabled"})
    assert stack.disabled_connectors() == {SWITCHES[switch]}
    grants, everything = stack.grants(), FULL.grants()
    for function in FUNCTION_OPERATIONS:
        assert switch not in grants[function], f"{function} keeps {switch}'s grants"
        # The others' grants stay as they were.
        assert grants[function] == {k: v for k, v in everything[function].items() if k != switch}


@pytest.mark.parametrize(
    ("switch", "targets"),
    [
        ("RedshiftQueryConnector", ["RedshiftClusterArns", "RedshiftWorkgroupArns"]),
        ("SfnExecutionConnector", ["StateMachineArns"]),
    ],
)
def test_a_connector_iam_cannot_scope_by_tags_is_off_until_its_resources_are_named(
    switch: str, targets: list[str]
) -> None:
    """Off as the switch puts it off: not registered at cold start, and no grant left."""
    for stack in (DEFAULTS, Stack(**{name: value for name, value in SCOPES.items() if name not in targets})):
        assert SWITCHES[switch] in stack.disabled_connectors()
        assert all(switch not in by_switch for by_switch in stack.grants().values())
    for target in targets:
        stack = Stack(**{target: SCOPES[target]})
        assert SWITCHES[switch] not in stack.disabled_connectors()
        assert switch in stack.grants()["CreateTaskFunction"]


# -- grants -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_function_has_exactly_the_actions_its_operations_declare(switch: str) -> None:
    full, defaults = FULL.grants(), DEFAULTS.grants()
    for function in FUNCTION_OPERATIONS:
        assert actions(full[function].get(switch, [])) == expected_actions(switch, function), function
        # By default: what needs nothing named, scoped by the tag; the rest is gone, not widened.
        expected = set() if switch in OFF_UNTIL_NAMED else expected_actions(switch, function, by_default=True)
        assert actions(defaults[function].get(switch, [])) == expected, function


def test_metrics_and_metadata_get_no_aws_connector_grant() -> None:
    for stack in (FULL, DEFAULTS):
        grants = stack.grants()
        assert grants["GetTaskMetricsFunction"] == {} and grants["ConnectorMetadataFunction"] == {}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_action_acts_on_the_resources_its_parameter_names(switch: str) -> None:
    by_action: dict[str, set[str]] = {}
    for by_switch in FULL.grants().values():
        for action, resources in action_resources(by_switch.get(switch, [])).items():
            by_action.setdefault(action, set()).update(resources)
    assert by_action == {
        action: resources for (owner, action), resources in SCOPED_RESOURCES.items() if owner == switch
    }


def test_the_jobs_the_connectors_start_are_created_and_stopped_only_with_the_stacks_tag() -> None:
    """Batch jobs, EMR Serverless runs and SageMaker jobs carry the tag from their creation (the
    connectors put it on), so IAM lets the service create only such jobs, and stop and look up only
    those: also when the queues, applications or job names are named (Batch jobs)."""
    tagged = {
        ("batch:SubmitJob", "job/*"): "aws:RequestTag",
        ("batch:TagResource", "job/*"): "aws:RequestTag",
        ("batch:TerminateJob", "job/*"): "aws:ResourceTag",
    }
    for stack in (DEFAULTS, FULL):
        for by_switch in stack.grants().values():
            for statement in by_switch.get("AwsBatchJobConnector", []):
                for action in as_list(statement["Action"]):
                    for resource in as_list(statement["Resource"]):
                        kind = tagged.get((action, resource.rpartition(":")[2]))
                        if kind:
                            assert tag_condition(statement, stack) == {kind}, statement
    default_kinds = {
        "emr-serverless:StartJobRun": {"aws:ResourceTag", "aws:RequestTag"},
        "emr-serverless:TagResource": {"aws:RequestTag"},
        "emr-serverless:GetJobRun": {"aws:ResourceTag"},
        "emr-serverless:CancelJobRun": {"aws:ResourceTag"},
        "sagemaker:CreateTrainingJob": {"aws:RequestTag"},
        "sagemaker:CreateProcessingJob": {"aws:RequestTag"},
        "sagemaker:AddTags": {"aws:RequestTag"},
        "sagemaker:StopTrainingJob": {"aws:ResourceTag"},
        "sagemaker:StopProcessingJob": {"aws:ResourceTag"},
    }
    for function, by_switch in DEFAULTS.grants().items():
        for statements in by_switch.values():
            for statement in statements:
                for action in set(as_list(statement["Action"])) & set(default_kinds):
                    assert tag_condition(statement, DEFAULTS) == default_kinds[action], (function, statement)


def test_sagemaker_tags_a_job_only_as_it_creates_it() -> None:
    """AddTags only within CreateTrainingJob or CreateProcessingJob (sagemaker:TaggingAction): the
    role cannot put the stack's tag on a job it did not create, and then stop it. (With
    SageMakerJobArns named, stop and describe are scoped by those names, not by the tag.)"""
    for stack in (DEFAULTS, Stack(ConnectorTagValue="ml-platform")):
        for by_switch in stack.grants().values():
            for switch, statements in by_switch.items():
                for statement in statements:
                    if "sagemaker:AddTags" in as_list(statement["Action"]):
                        assert as_list(statement["Action"]) == ["sagemaker:AddTags"]
                        creator = "CreateTrainingJob" if "Training" in switch else "CreateProcessingJob"
                        assert statement["Condition"]["StringEquals"]["sagemaker:TaggingAction"] == creator


def test_redshift_credentials_are_for_the_named_database_users_only() -> None:
    statements = FULL.grants()["CreateTaskFunction"]["RedshiftQueryConnector"]
    for statement in statements:
        if any(":dbuser:" in resource for resource in as_list(statement["Resource"])):
            assert statement["Condition"] == {"StringEquals": {"redshift:DbUser": SCOPES["RedshiftDbUsers"]}}
    without_users = Stack(**{**SCOPES, "RedshiftDbUsers": ""}).grants()["CreateTaskFunction"]["RedshiftQueryConnector"]
    assert "redshift:GetClusterCredentials" not in actions(without_users)
    assert "redshift:GetClusterCredentialsWithIAM" in actions(without_users)


def test_every_resource_is_this_account_and_regions() -> None:
    for stack in (DEFAULTS, FULL):
        for function, by_switch in stack.grants().items():
            for switch, statements in by_switch.items():
                for action, resources in action_resources(statements).items():
                    for resource in resources:
                        if resource == "*":
                            assert SCOPED_RESOURCES[(switch, action)] == {"*"}
                        elif resource.startswith("arn:aws:s3:::"):  # S3 ARNs name no account: the bucket does
                            assert stack is FULL, resource
                        elif resource.startswith("arn:aws:iam::"):  # IAM ARNs name no region
                            assert resource.startswith(f"arn:aws:iam::{A}:role/"), resource
                        else:
                            assert resource.startswith("arn:aws:") and f":{R}:{A}:" in resource, (
                                function,
                                action,
                                resource,
                            )


def test_roles_are_passed_only_to_the_enabled_connectors_services() -> None:
    def passed(stack: Stack) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for by_switch in stack.grants().values():
            for switch, statements in by_switch.items():
                for statement in statements:
                    if "iam:PassRole" in as_list(statement["Action"]):
                        assert as_list(statement["Action"]) == ["iam:PassRole"]
                        tests = statement["Condition"]["StringEquals"]
                        if stack.parameters["ConnectorExecutionRoleArns"] == [""]:  # the roles tagged
                            assert statement["Resource"] == f"arn:aws:iam::{A}:role/*"
                            assert tag_condition(statement, stack) == {"aws:ResourceTag"}
                        else:
                            assert statement["Resource"] == SCOPES["ConnectorExecutionRoleArns"]
                            assert set(tests) == {"iam:PassedToService"}
                        service = tests["iam:PassedToService"]
                        assert service == PASSED_TO[SWITCHES[switch]], switch
                        found.setdefault(switch, set()).add(service)
        return found

    passing = {switch for switch, task_type in SWITCHES.items() if task_type in PASSED_TO}
    assert set(passed(FULL)) == passing
    assert set(passed(DEFAULTS)) == passing  # the roles tagged for the stack, to each service its own
    assert set(passed(Stack(**SCOPES, EmrServerlessJobConnector="Disabled"))) == passing - {"EmrServerlessJobConnector"}


def test_each_roles_inline_policies_fit_iams_limit() -> None:
    """IAM caps the inline policies of one role at 10,240 characters in all (SAM puts the DynamoDB
    statements there too). CreateTask's and the reaper's roles hold about 6,700 with the defaults
    (the tag-scoped documents) and about 7,700 with every list given (SCOPES): that leaves 2,500 for
    longer lists (an ARN is ~60, and a state machine's or SageMaker job pattern's appears in up to
    four statements of one role)."""
    for stack in (DEFAULTS, FULL):
        sizes = dict.fromkeys(FUNCTION_OPERATIONS, 0)
        for name, resource in stack.resources().items():
            if resource["Type"] == "AWS::IAM::Policy":
                text = json.dumps(stack.document(resource), separators=(",", ":"))
                for role in stack.value(resource["Properties"]["Roles"]):
                    sizes[role.removesuffix("Role")] += len(text) + len(resource["Properties"]["PolicyName"])
            elif resource["Type"] == "AWS::Serverless::Function":
                for policy in resource["Properties"].get("Policies") or []:
                    sizes[name] += len(json.dumps(stack.value(policy), separators=(",", ":"))) + 40
        assert max(sizes.values()) < INLINE_POLICY_LIMIT - 2_500, sizes


def test_the_functions_that_call_connectors_read_secrets_only_under_the_prefix() -> None:
    policy = TEMPLATE["Resources"]["ConnectorSecretsPolicy"]
    assert "Condition" not in policy  # every connector may take secrets, the AWS ones or not
    roles = {role["Ref"].removesuffix("Role") for role in policy["Properties"]["Roles"]}
    assert roles == {name for name, operations in FUNCTION_OPERATIONS.items() if operations} | {
        "GetTaskMetricsFunction",
        "GetTaskLogsFunction",
    }
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Action"], s["Resource"]["Fn::Sub"]) for s in statements] == [
        (
            "secretsmanager:GetSecretValue",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}/*",
        ),
        ("ssm:GetParameter", "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${SecretsPrefix}/*"),
    ]


# -- what a default deployment may touch (issue 18, docs/security.md) ---------------------------------

# The actions that start something, run as a role, hand out credentials or read or write data:
# granted on every resource of a kind, they are what issue 18 is about.
START_ACTIONS = {
    "athena:StartQueryExecution",
    "batch:SubmitJob",
    "emr-serverless:StartJobRun",
    "glue:StartJobRun",
    "redshift-data:ExecuteStatement",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "states:StartExecution",
}
RUN_AS_ACTIONS = {"iam:PassRole", "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:TagSession"}
CREDENTIAL_ACTIONS = {
    "redshift:GetClusterCredentials",
    "redshift:GetClusterCredentialsWithIAM",
    "redshift-serverless:GetCredentials",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "kms:Decrypt",
}
DATA_ACTIONS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
}
SENSITIVE_ACTIONS = START_ACTIONS | RUN_AS_ACTIONS | CREDENTIAL_ACTIONS | DATA_ACTIONS


def every_one_of_a_kind(resource: str) -> bool:
    """``resource`` is a pattern over every resource of its kind in an account (or more): "*", an
    ARN whose region or account is a wildcard, or whose resource part is ``<type>/*``,
    ``<type>:*``, ``/<type>/*``, ``<type>:*/*``... (a wildcard right after its type). One bucket's
    objects, one log group's streams or a name prefix (``secret:<prefix>/*``) are not."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return "*" in resource  # not an ARN: a resource of the stack (!GetAtt), or a pattern
    service, region, account, rest = parts[2], parts[3], parts[4], parts[5]
    if "*" in region or "*" in account:
        return True
    if service == "s3":  # arn:aws:s3:::BUCKET[/KEY]: no type, the bucket is the name
        return rest.startswith("*")
    kind_and_name = re.match(r"/?[A-Za-z-]+[:/](.*)", rest)
    return rest.startswith("*") or (kind_and_name is not None and kind_and_name[1].startswith("*"))


def tag_condition(statement: dict[str, Any], stack: Stack) -> set[str]:
    """Which of aws:ResourceTag / aws:RequestTag the statement requires to be the stack's tag."""
    key, value = stack.tag()
    found = set()
    for operator, tests in (statement.get("Condition") or {}).items():
        if operator not in ("StringEquals", "ForAllValues:StringEquals"):
            continue
        for condition_key, expected in tests.items():
            kind, _, tag_key = condition_key.partition("/")
            if kind in ("aws:ResourceTag", "aws:RequestTag") and tag_key == key and as_list(expected) == [value]:
                found.add(kind)
    return found


@pytest.mark.parametrize(
    ("resource", "wide"),
    [
        ("*", True),
        (f"arn:aws:athena:{R}:{A}:workgroup/*", True),
        (f"arn:aws:redshift:{R}:{A}:dbuser:*/*", True),
        (f"arn:aws:glue:{R}:{A}:table/*/*", True),
        (f"arn:aws:emr-serverless:{R}:{A}:/applications/*/jobruns/*", True),
        (f"arn:aws:batch:{R}:{A}:job-definition/*:*", True),
        (f"arn:aws:states:{R}:{A}:execution:*:*", True),
        (f"arn:aws:iam::{A}:role/*", True),
        (f"arn:aws:glue:*:{A}:job/nightly", True),
        ("arn:aws:s3:::*", True),
        ("arn:aws:s3:::aws-athena-query-results-1-us-east-1/*", False),
        (f"arn:aws:athena:{R}:{A}:workgroup/flyte", False),
        (f"arn:aws:redshift:{R}:{A}:dbuser:main/*", False),
        (f"arn:aws:secretsmanager:{R}:{A}:secret:flyte-connectors/*", False),
        (f"arn:aws:logs:{R}:{A}:log-group:/aws/batch/job:*", False),
        (f"arn:aws:iam::{A}:role/flyte-*", False),
    ],
)
def test_what_counts_as_every_resource_of_a_kind(resource: str, wide: bool) -> None:
    assert every_one_of_a_kind(resource) == wide


@pytest.mark.parametrize("values", [{}, {"ConnectorTagKey": "team", "ConnectorTagValue": "ml-platform"}])
def test_a_default_deployment_grants_nothing_sensitive_on_every_resource_of_a_kind_without_the_tag(
    values: dict[str, str],
) -> None:
    """No statement of any IAM policy the stack makes (the connectors', the service's own, the
    functions' inline ones) grants a start, run-as, credential or data action on every resource
    of a kind, unless it requires the stack's tag on that resource or request."""
    stack = Stack(**values)
    offending = []
    for name, document in stack.policies().items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
            granted = {action for action in as_list(statement["Action"]) if action in SENSITIVE_ACTIONS}
            granted |= {a for a in as_list(statement["Action"]) if a.endswith(":*") or a == "*"}
            wide = [resource for resource in as_list(statement["Resource"]) if every_one_of_a_kind(resource)]
            if granted and wide and not tag_condition(statement, stack):
                offending.append((name, sorted(granted), wide))
    assert not offending, offending


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_connector_is_scoped_by_the_tag_or_off_by_default(switch: str) -> None:
    """Off: named in DISABLED_CONNECTORS and without a grant. On: every start or run-as action it
    is granted on every resource of a kind requires the stack's tag, and it has at least one."""
    grants = DEFAULTS.grants()
    statements = [s for by_switch in grants.values() for s in by_switch.get(switch, [])]
    if SWITCHES[switch] in DEFAULTS.disabled_connectors():
        assert switch in OFF_UNTIL_NAMED and not statements
        return
    starting = [s for s in statements if set(as_list(s["Action"])) & (START_ACTIONS | RUN_AS_ACTIONS)]
    assert starting, f"{switch} is on by default but can start nothing"
    for statement in starting:
        assert all(every_one_of_a_kind(resource) for resource in as_list(statement["Resource"])), statement
        assert tag_condition(statement, DEFAULTS), statement
