"""sfn_execution through the served app against moto's Step Functions over HTTP (moto runs the
state machines: {"stepfunctions": {"execute_state_machine": true}})."""

from __future__ import annotations

import json
import pathlib
import uuid

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import types_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws.step_functions import PHASES, SfnExecutionConnector, SfnExecutionMeta
from connectors.dev.aws_resources import ACCOUNT, REGION
from connectors.dev.aws_resources.sfn_execution import ARN as EXAMPLE_ARN
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import FLOAT, INT, STR

TYPE = "sfn_execution"
INTS = types_pb2.LiteralType(collection_type=INT)
STRUCT = types_pb2.LiteralType(simple=types_pb2.STRUCT)
EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "sfn_execution.json"
MACHINES = {
    "echo": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    "wait": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "End": True}}},
    "fail": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "the enrichment broke"}}},
    "timeout": {"StartAt": "W", "TimeoutSeconds": 1, "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}},
    "list": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": [1, 2, 3], "End": True}}},
}


@pytest.fixture(scope="module")
def machines(aws_endpoint):
    """State machines of this module's own, by kind: their ARNs."""
    from connectors.dev.aws_resources import client_factory, ensure_role

    clients = client_factory(aws_endpoint)
    role = ensure_role(clients, "flyte-sfn-tests", "states.amazonaws.com")
    suffix = uuid.uuid4().hex[:6]
    return {
        kind: clients("stepfunctions").create_state_machine(
            name=f"flyte-test-{kind}-{suffix}", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        for kind, definition in MACHINES.items()
    }


def execution(world, handle: bytes) -> dict:
    meta = SfnExecutionMeta.decode(world.record(handle).resource_meta)
    return world.boto("stepfunctions").describe_execution(executionArn=meta.execution_arn)


def executions(world, machine: str) -> set[str]:
    return {
        e["executionArn"] for e in world.boto("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    }


def test_an_execution_runs_to_success_and_its_output_object_gives_the_declared_outputs(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    request = world.request(
        TYPE,
        {"state_machine_arn": machines["echo"], "input": {"mode": "full", "limit": 3, "day": "x"}},
        inputs={"day": (STR, "2026-01-02"), "rows": (INT, 7), "ratio": (FLOAT, 0.5)},
        outputs={"day": STR, "rows": INT, "mode": STR, "limit": INT},
        run="rsfn",
        action="enrich",
    )
    handle = world.create(request)
    started = execution(world, handle)
    assert json.loads(started["input"]) == {"mode": "full", "limit": 3, "day": "2026-01-02", "rows": 7, "ratio": 0.5}
    assert '"limit":3,' in started["input"]  # the custom input's 3 stays 3, not the Struct's 3.0
    token = TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()
    assert started["name"] == f"rsfn-enrich-{token}"
    assert (
        started["executionArn"] == machines["echo"].replace(":stateMachine:", ":execution:") + f":rsfn-enrich-{token}"
    )
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert world.outputs(resource, {"day": STR, "rows": INT, "mode": STR, "limit": INT}) == {
        "day": "2026-01-02",
        "rows": 7,
        "mode": "full",
        "limit": 3,
    }
    assert (
        resource.custom_info["execution_arn"] == started["executionArn"]
        and resource.custom_info["status"] == "SUCCEEDED"
    )
    assert resource.log_links[0].uri.startswith("https://") and started["executionArn"] in resource.log_links[0].uri
    world.delete(handle, TYPE)  # a finished execution: delete is accepted and changes nothing
    assert execution(world, handle)["status"] == "SUCCEEDED"


def test_a_single_declared_output_takes_an_output_that_is_not_an_object_holding_it(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(world.request(TYPE, {"state_machine_arn": machines["list"]}, outputs={"values": INTS}))
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert world.outputs(resource, {"values": INTS}) == {"values": [1, 2, 3]}  # the whole output
    handle = world.create(
        world.request(TYPE, {"state_machine_arn": machines["echo"]}, inputs={"n": (INT, 4)}, outputs={"result": STRUCT})
    )
    resource = world.wait(handle, TYPE)
    assert world.outputs(resource, {"result": STRUCT}) == {"result": {"n": 4}}  # an object without "result"
    handle = world.create(
        world.request(TYPE, {"state_machine_arn": machines["echo"]}, inputs={"n": (INT, 4)}, outputs={"n": INT})
    )
    assert world.outputs(world.wait(handle, TYPE), {"n": INT}) == {"n": 4}  # an object holding "n"


def test_an_output_that_does_not_fit_its_declared_type_fails_the_task_naming_it(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(world.request(TYPE, {"state_machine_arn": machines["list"]}, outputs={"values": STR}))
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.FAILED and "'values'" in resource.message


def test_an_output_missing_from_the_execution_output_fails_the_task_naming_it(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(
        world.request(
            TYPE,
            {"state_machine_arn": machines["echo"]},
            inputs={"rows": (INT, 7)},
            outputs={"rows": INT, "summary": STR},
        )
    )
    resource = world.wait(handle, TYPE)
    # the connector reports what the output holds; the service, finding a declared output
    # without a value, fails the task naming it rather than answer a success that cannot finish
    assert resource.phase == TaskExecution.FAILED
    assert "no value for the declared output(s) 'summary'" in resource.message
    assert world.record(handle).phase == TaskExecution.FAILED


def test_a_failed_execution_is_failed_with_its_error_and_cause(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(world.request(TYPE, {"state_machine_arn": machines["fail"]}))
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.FAILED and resource.message == "Boom: the enrichment broke"
    world.delete(handle, TYPE)  # quiet: it has ended
    assert execution(world, handle)["status"] == "FAILED"


def test_a_timed_out_execution_is_failed(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(world.request(TYPE, {"state_machine_arn": machines["timeout"]}))
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.FAILED and resource.custom_info["status"] == "TIMED_OUT"
    assert "timed out" in resource.message or "Timeout" in resource.message


def test_a_running_execution_is_stopped_by_delete_and_one_stopped_elsewhere_is_failed(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    handle = world.create(world.request(TYPE, {"state_machine_arn": machines["wait"]}))
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING
    world.delete(handle, TYPE)
    assert execution(world, handle)["status"] == "ABORTED"
    world.delete(handle, TYPE)  # again: accepted
    other = world.create(world.request(TYPE, {"state_machine_arn": machines["wait"]}))
    world.boto("stepfunctions").stop_execution(executionArn=execution(world, other)["executionArn"])
    resource = world.wait(other, TYPE)
    # stopped, but not by this service (no DeleteTask, no canceller): a failure with AWS's word,
    # not ABORTED, which the executor reads as the user's abort (issue 17)
    assert resource.phase == TaskExecution.FAILED and "aborted" in resource.message.lower()
    assert "not by this service" in resource.message


@pytest.mark.parametrize("kind", ["echo", "wait"])
def test_a_create_retried_after_a_crash_starts_one_execution(aws_world, machines, kind):
    """A closed execution: StartExecution answers ExecutionAlreadyExists and the connector adopts
    it; a running one: StartExecution answers the same execution (same name, same input)."""
    world = aws_world(SfnExecutionConnector())
    request = world.request(TYPE, {"state_machine_arn": machines[kind]}, inputs={"day": (STR, "2026-01-02")})
    before = executions(world, machines[kind])
    first = world.first_try(SfnExecutionConnector(), request, {"day": "2026-01-02"})
    if kind == "echo":
        world.wait(world.create(request), TYPE)  # finished before the retry reached AWS
    else:
        world.create(request)
    assert executions(world, machines[kind]) - before == {first.execution_arn}
    record = world.records(request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name)[0]
    assert SfnExecutionMeta.decode(record.resource_meta).execution_arn == first.execution_arn
    if kind == "wait":
        world.boto("stepfunctions").stop_execution(executionArn=first.execution_arn)


def test_a_newer_attempt_stops_the_older_attempts_execution(aws_world, machines):
    world = aws_world(SfnExecutionConnector())
    run = f"sfn-supersede-{uuid.uuid4().hex[:8]}"
    first = world.create(world.request(TYPE, {"state_machine_arn": machines["wait"]}, run=run))
    second = world.create(world.request(TYPE, {"state_machine_arn": machines["wait"]}, run=run, attempt=1))
    assert execution(world, first)["status"] == "ABORTED"
    assert (
        execution(world, second)["status"] == "RUNNING"
        and execution(world, second)["name"] != execution(world, first)["name"]
    )
    world.delete(second, TYPE)


@pytest.mark.parametrize(
    "custom, needle",
    [
        ({}, "template.custom.state_machine_arn is required"),
        ({"state_machine_arn": "flyte-example"}, "template.custom.state_machine_arn must be a state machine ARN"),
        ({"state_machine_arn": EXAMPLE_ARN.replace(":stateMachine:", ":activity:")}, "must be a state machine ARN"),
        ({"state_machine_arn": EXAMPLE_ARN, "input": ["a"]}, "template.custom.input must be an object"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, custom, needle):
    world = aws_world(SfnExecutionConnector())
    error = world.error(world.create, world.request(TYPE, custom))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_an_unknown_state_machine_is_not_found_with_awss_message(aws_world):
    world = aws_world(SfnExecutionConnector())
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:no-such-machine"
    error = world.error(world.create, world.request(TYPE, {"state_machine_arn": arn}))
    assert error.code == Code.NOT_FOUND and "State Machine Does Not Exist" in error.message
    assert "stepfunctions DescribeStateMachine" in error.message  # looked at before it starts (EXPRESS is refused)


def test_the_phase_table_covers_every_execution_status():
    assert {
        word: PHASES.phase(word)
        for word in ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
    } == {
        "RUNNING": TaskExecution.RUNNING,
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,
        "TIMED_OUT": TaskExecution.FAILED,
        "ABORTED": TaskExecution.ABORTED,
        "PENDING_REDRIVE": TaskExecution.QUEUED,
    }
    assert set(SfnExecutionConnector.iam_actions) == {"create", "get", "delete"}


def test_the_example_runs_to_success(aws_world):
    world = aws_world(SfnExecutionConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    handle = world.create(request)
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert world.outputs(resource, {"summary": STR, "rows": INT, "mode": STR}) == {
        "summary": "42 rows on 2026-01-01",
        "rows": 42,
        "mode": "full",
    }


def test_an_express_state_machine_is_refused_before_anything_starts(aws_world, aws_endpoint):
    """botocore's model: StartExecution "isn't idempotent for EXPRESS workflows", and neither
    DescribeExecution nor StopExecution supports them: a retry could start it twice, and no poll
    or cancel could ever reach it. invalid_argument, and no execution."""
    from connectors.dev.aws_resources import client_factory, ensure_role

    clients = client_factory(aws_endpoint)
    role = ensure_role(clients, "flyte-sfn-tests", "states.amazonaws.com")
    machine = clients("stepfunctions").create_state_machine(
        name=f"flyte-test-express-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(MACHINES["wait"]),
        roleArn=role,
        type="EXPRESS",
    )["stateMachineArn"]
    world = aws_world(SfnExecutionConnector())
    error = world.error(world.create, world.request(TYPE, {"state_machine_arn": machine}))
    assert error.code == Code.INVALID_ARGUMENT and "EXPRESS" in error.message and "STANDARD" in error.message
    assert executions(world, machine) == set()
