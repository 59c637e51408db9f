"""template.yaml's status events (issue 19): a rule per AWS connector, the queue, the function.

Each AWS connector class that declares ``job_events`` (connectors/job_events.py) has exactly one
EventBridge rule on the default bus with exactly that pattern, which exists only while both its
connector's switch and StatusEvents are Enabled; the rules send to the status-events queue (SSE,
a dead-letter queue, a policy that lets only those rules send); the StatusEventsFunction may
touch only the tasks table (and its by-job-key index) and consume only that queue; the table's
index is the one the store creates; the alarms and the dashboard watch the queue's age and the
dead-letter queue. The template is evaluated as CloudFormation would (the Stack of
tests/unit/test_template_aws_connectors.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors import store
from tests.unit.test_template import _SchemaRecorder
from tests.unit.test_template_aws_connectors import CLASSES, SWITCHES, TEMPLATE, Stack, as_list
from tests.unit.test_template_observability import _widget, dashboard_body

RESOURCES = TEMPLATE["Resources"]
FUNCTION = "StatusEventsFunction"
QUEUE, DEAD_LETTER = "StatusEventsQueue", "StatusEventsDeadLetterQueue"
QUEUE_ARN, DEAD_LETTER_ARN = f"{QUEUE}.Arn", f"{DEAD_LETTER}.Arn"  # as Stack resolves Fn::GetAtt
TABLE_ARN = "TasksTable.Arn"

# The state-change events each AWS service publishes on the default bus for the jobs the connector
# starts (each service's EventBridge documentation): (source, detail-type).
EXPECTED_EVENTS: dict[str, tuple[str, str]] = {
    "AthenaQueryConnector": ("aws.athena", "Athena Query State Change"),
    "RedshiftQueryConnector": ("aws.redshift-data", "Redshift Data Statement Status Change"),
    "AwsBatchJobConnector": ("aws.batch", "Batch Job State Change"),
    "SfnExecutionConnector": ("aws.states", "Step Functions Execution Status Change"),
    "EmrServerlessJobConnector": ("aws.emr-serverless", "EMR Serverless Job Run State Change"),
    "SageMakerTrainingJobConnector": ("aws.sagemaker", "SageMaker Training Job State Change"),
    "SageMakerProcessingJobConnector": ("aws.sagemaker", "SageMaker Processing Job State Change"),
    "GlueJobConnector": ("aws.glue", "Glue Job State Change"),
}
# The connectors whose job_events come with another branch of issue 19 (only Batch declares them
# on this one). Their rules are checked against EXPECTED_EVENTS meanwhile; the test that each
# class declares them is expected to fail for these, strictly: once a class declares its events
# that test passes, strict xfail reports it, and its name must be taken out of this set.

DEFAULTS = Stack()


def status_rules(template_resources: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The EventBridge rules that send to the status-events queue, by logical id."""
    resources = RESOURCES if template_resources is None else template_resources
    return {
        name: r
        for name, r in resources.items()
        if r["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == {"Fn::GetAtt": [QUEUE, "Arn"]} for t in r["Properties"].get("Targets", []))
    }


def rule_switch(rule: dict[str, Any]) -> str:
    """The connector switch a rule's condition joins StatusEvents with (and nothing else)."""
    condition = TEMPLATE["Conditions"][rule["Condition"]]
    (both,) = condition.values()
    assert set(condition) == {"Fn::And"} and len(both) == 2, condition
    assert {"Condition": "StatusEventsEnabled"} in both, condition
    [switch_condition] = [c["Condition"] for c in both if c != {"Condition": "StatusEventsEnabled"}]
    switch = switch_condition.removesuffix("Enabled")
    assert switch in SWITCHES and TEMPLATE["Conditions"][switch_condition] == {
        "Fn::Equals": [{"Ref": switch}, "Enabled"]
    }
    return switch


# -- the rules against the connector classes ----------------------------------------------------------


def test_each_connector_declaring_job_events_has_exactly_one_rule_with_its_pattern_on_its_switch() -> None:
    """The drift check: a class's declared events and its rule never differ."""
    rules = status_rules()
    declaring = {name: cls for name, cls in CLASSES.items() if cls.job_events is not None}
    assert "AwsBatchJobConnector" in declaring  # at least the first one, from the start
    for name, cls in declaring.items():
        pattern = cls.job_events.pattern()
        matching = [rule for rule, r in rules.items() if r["Properties"]["EventPattern"] == pattern]
        assert len(matching) == 1, f"{name} declares {pattern}: rules with that pattern: {matching}"
        assert rule_switch(rules[matching[0]]) == name


def test_there_is_one_rule_per_aws_connector_for_the_events_its_service_publishes() -> None:
    rules = status_rules()
    by_switch = {rule_switch(r): r for r in rules.values()}
    assert len(by_switch) == len(rules) == 8
    assert set(by_switch) == set(SWITCHES) == set(EXPECTED_EVENTS)
    for switch, (source, detail_type) in EXPECTED_EVENTS.items():
        properties = by_switch[switch]["Properties"]
        assert properties["EventPattern"] == {"source": [source], "detail-type": [detail_type]}, switch
        assert "EventBusName" not in properties  # the default bus, where AWS services put their events
        assert properties["State"] == "ENABLED"
        [target] = properties["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [QUEUE, "Arn"]}
        assert "Input" not in target and "InputPath" not in target and "InputTransformer" not in target
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [DEAD_LETTER, "Arn"]}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600


@pytest.mark.parametrize("switch", sorted(EXPECTED_EVENTS))
def test_each_aws_connector_declares_the_events_its_rule_matches(switch: str) -> None:
    events = CLASSES[switch].job_events
    assert events is not None, f"{switch} declares no job_events: its rule feeds it nothing"
    assert (events.source, events.detail_type) == EXPECTED_EVENTS[switch]


# -- what each switch leaves ----------------------------------------------------------------------------

STATUS_EVENTS_RESOURCES = {
    QUEUE,
    DEAD_LETTER,
    "StatusEventsQueuePolicy",
    "StatusEventsDeadLetterQueuePolicy",
    FUNCTION,
    "StatusEventsSource",
    "StatusEventsDeadLetterAlarm",
    "StatusEventsQueueAgeAlarm",
}


def deployed(stack: Stack) -> set[str]:
    return {name for name in stack.resources() if name in STATUS_EVENTS_RESOURCES or name in status_rules()}


def safety_minutes(stack: Stack) -> Any:
    return stack.value(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["STATUS_SAFETY_READ_MINUTES"])


def test_the_parameters() -> None:
    parameters = TEMPLATE["Parameters"]
    assert parameters["StatusEvents"]["AllowedValues"] == ["Enabled", "Disabled"]
    assert parameters["StatusEvents"]["Default"] == "Enabled"
    minutes = parameters["StatusSafetyReadMinutes"]
    assert minutes["Type"] == "Number" and minutes["Default"] == 5 and minutes["MinValue"] == 0
    assert {name: r["Condition"] for name, r in RESOURCES.items() if name in STATUS_EVENTS_RESOURCES} == dict.fromkeys(
        STATUS_EVENTS_RESOURCES, "StatusEventsOn"
    )


def test_by_default_everything_is_deployed_and_polls_trust_events_for_the_safety_interval() -> None:
    assert deployed(DEFAULTS) == STATUS_EVENTS_RESOURCES | set(status_rules())
    assert safety_minutes(DEFAULTS) == 5
    assert safety_minutes(Stack(StatusSafetyReadMinutes=2)) == 2


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_a_disabled_connector_loses_its_rule_and_only_its_rule(switch: str) -> None:
    stack = Stack(**{switch: "Disabled"})
    rules = {rule_switch(status_rules()[name]): name for name in deployed(stack) if name in status_rules()}
    assert set(rules) == set(SWITCHES) - {switch}
    assert deployed(stack) >= STATUS_EVENTS_RESOURCES
    assert safety_minutes(stack) == 5


@pytest.mark.parametrize(
    "values",
    [{"StatusEvents": "Disabled"}, dict.fromkeys(SWITCHES, "Disabled")],
    ids=["StatusEvents Disabled", "every AWS connector Disabled"],
)
def test_without_events_nothing_is_deployed_and_every_poll_reads(values: dict[str, str]) -> None:
    stack = Stack(**values)
    assert deployed(stack) == set()
    assert safety_minutes(stack) == "0"  # connectors/settings.py: no events delivered
    outputs = {
        name for name, o in TEMPLATE["Outputs"].items() if "Condition" not in o or stack.condition(o["Condition"])
    }
    assert not {name for name in outputs if name.startswith("StatusEvents")}


# -- the queues ------------------------------------------------------------------------------------------


def test_the_queue_is_encrypted_outlasts_a_batch_and_dead_letters_after_five_receives() -> None:
    queue = RESOURCES[QUEUE]["Properties"]
    dead_letter = RESOURCES[DEAD_LETTER]["Properties"]
    function = RESOURCES[FUNCTION]["Properties"]
    timeout = function.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])
    assert queue["SqsManagedSseEnabled"] is True and dead_letter["SqsManagedSseEnabled"] is True
    assert "KmsMasterKeyId" not in queue  # a KMS key would need its own grant to EventBridge
    # AWS's advice for an SQS event source: a visibility timeout of at least 6 times the function's.
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [DEAD_LETTER, "Arn"]}, "maxReceiveCount": 5}
    # A message's age counts from its first enqueue: the dead-letter queue must keep it longer.
    assert dead_letter["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert "QueueName" not in queue and "QueueName" not in dead_letter  # several stacks can coexist


@pytest.mark.parametrize("disabled", [None, "AwsBatchJobConnector", "SfnExecutionConnector"])
def test_only_this_stacks_enabled_rules_may_send_to_the_queues(disabled: str | None) -> None:
    stack = Stack(**({disabled: "Disabled"} if disabled else {}))
    enabled_rules = {f"{name}.Arn" for name in deployed(stack) if name in status_rules()}
    for policy, queue in (("StatusEventsQueuePolicy", QUEUE), ("StatusEventsDeadLetterQueuePolicy", DEAD_LETTER)):
        properties = stack.value(RESOURCES[policy]["Properties"])
        assert properties["Queues"] == [queue]
        [statement] = properties["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == f"{queue}.Arn"
        assert set(statement["Condition"]) == {"ArnEquals"}
        assert set(statement["Condition"]["ArnEquals"]) == {"aws:SourceArn"}
        assert set(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == enabled_rules


# -- the function ----------------------------------------------------------------------------------------


def test_the_function_touches_only_the_table_and_consumes_only_its_queue() -> None:
    function = DEFAULTS.value(RESOURCES[FUNCTION])
    properties = function["Properties"]
    assert properties["Handler"] == "handlers.status_events.handler"
    assert "Role" not in properties and "Events" not in properties  # a SAM SQS event adds a managed
    # policy (AWSLambdaSQSQueueExecutionRole) on every queue of the account: the mapping is its own
    grants: set[tuple[str, str]] = set()
    for policy in properties["Policies"]:
        assert set(policy) == {"Statement"}
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and "Condition" not in statement
            for action in as_list(statement["Action"]):
                grants |= {(action, resource) for resource in as_list(statement["Resource"])}
    assert grants == {
        ("dynamodb:Query", f"{TABLE_ARN}/index/{store.JOB_INDEX}"),
        ("dynamodb:GetItem", TABLE_ARN),
        ("dynamodb:UpdateItem", TABLE_ARN),
        ("sqs:ReceiveMessage", QUEUE_ARN),
        ("sqs:DeleteMessage", QUEUE_ARN),
        ("sqs:GetQueueAttributes", QUEUE_ARN),
    }
    # No AWS connector's policy and no secrets policy is on its role.
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::Policy":
            assert f"{FUNCTION}Role" not in json.dumps(resource["Properties"]["Roles"]), name


def test_the_queue_invokes_the_functions_alias_in_batches_reporting_each_failure() -> None:
    source = RESOURCES["StatusEventsSource"]
    assert source["Type"] == "AWS::Lambda::EventSourceMapping"
    properties = source["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": [QUEUE, "Arn"]}
    assert properties["FunctionName"] == {"Ref": f"{FUNCTION}.Alias"}  # "live", as the API calls
    assert 1 <= properties["BatchSize"] <= 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A maximum concurrency, not a reserved one (which would throttle the poller's invocations and
    # send batches back towards the dead-letter queue).
    assert 2 <= properties["ScalingConfig"]["MaximumConcurrency"] <= 20
    assert "ReservedConcurrentExecutions" not in RESOURCES[FUNCTION]["Properties"]


def test_the_tables_job_index_is_the_one_the_store_creates() -> None:
    recorder = _SchemaRecorder()
    store.TaskTable("tasks", recorder).create_table()
    created = recorder.calls["create_table"]
    properties = RESOURCES["TasksTable"]["Properties"]
    [from_store] = [i for i in created["GlobalSecondaryIndexes"] if i["IndexName"] == store.JOB_INDEX]
    [from_template] = [i for i in properties["GlobalSecondaryIndexes"] if i["IndexName"] == store.JOB_INDEX]
    assert from_template == from_store
    assert {"AttributeName": "job_key", "AttributeType": "S"} in properties["AttributeDefinitions"]
    assert {"AttributeName": "job_key", "AttributeType": "S"} in created["AttributeDefinitions"]


# -- alarms and the dashboard -------------------------------------------------------------------------------


def test_the_dead_letter_alarm_fires_on_any_message() -> None:
    alarm = RESOURCES["StatusEventsDeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [DEAD_LETTER, "QueueName"]}}]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1


def test_the_queue_age_alarm_fires_when_events_wait_minutes() -> None:
    alarm = RESOURCES["StatusEventsQueueAgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [QUEUE, "QueueName"]}}]
    assert alarm["Statistic"] == "Maximum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # Normally seconds old: a few minutes means the function fails, is throttled or lags.
    assert 120 <= alarm["Threshold"] <= 900


def test_the_dashboard_shows_the_queues_age_the_dead_letter_queue_and_the_outcomes() -> None:
    queues = _widget("Status events: age")["metrics"]
    assert ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "SUB-StatusEventsQueueName"] in [
        m[:4] for m in queues
    ]
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "SUB-StatusEventsDeadLetterQueueName"] in [
        m[:4] for m in queues
    ]
    outcomes = json.dumps(_widget("Status events by outcome")["metrics"])
    assert "SUM(flyte_connector_status_events_total) FROM FlyteConnectors GROUP BY outcome" in outcomes
    assert '"Errors", "FunctionName", "SUB-StatusEventsFunctionName"' in outcomes
    body, _ = dashboard_body()
    assert "StatusEventsQueue}" not in body  # only through the variables: the queue may not exist
