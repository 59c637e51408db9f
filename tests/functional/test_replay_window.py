"""A create whose answer was lost is replayed with the attempt's token to find its job only
within the window its remote honours the key (issue 17): by the same attempt's next CreateTask,
a newer attempt, or the reaper. Past it, nothing is replayed: the record ends saying where the
job, if it started, may be found, with a WARNING line and the suspected-orphans metric.

Driven through the served app and the reaper against the fake AWS; the service's clock (the
store's) is moved on to age a claim. The fake counts each StartQueryExecution by its token, so a
replay shows even though Athena answers it with the query it already has.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.athena import AthenaQueryConnector
from connectors.builtin.aws.step_functions import SfnExecutionConnector
from connectors.dev.aws_resources.athena_query import WORK_GROUP
from connectors.errors import Code, unavailable
from connectors.observability import metrics
from connectors.store import ACTIVE, ENDED
from tests.aws_world import crashes_once

ATHENA = "athena_query"
SFN = "sfn_execution"
HOUR = 3600.0
# The bound for a remote that documents none (REPLAY_WINDOW_MINUTES' default: 180), in seconds.
UNDOCUMENTED = 180 * 60.0
NOT_FOUND = "could not be found safely"


def starts(world: Any, token: str) -> int:
    """How many StartQueryExecution calls carrying ``token`` reached the fake Athena."""
    with urllib.request.urlopen(f"{world.endpoint}/moto-api/fake-aws/calls", timeout=10) as answer:  # noqa: S310 - the test's own moto server
        calls = json.loads(answer.read())
    return sum(c["count"] for c in calls if c["operation"] == "StartQueryExecution" and c["key"] == token)


def loses_answers(connector_class: type[Any], times: int) -> type[Any]:
    """``connector_class`` whose create reaches the remote, then fails as if its answer were lost
    (``unavailable``), ``times`` times; its settle time cut to 0 (Athena has none anyway)."""

    class LosesAnswers(connector_class):  # type: ignore[misc, valid-type]
        lost = 0
        replay_settle_seconds = 0.0

        async def create(self, *args: Any, **kwargs: Any) -> Any:
            meta = await super().create(*args, **kwargs)
            if type(self).lost < times:
                type(self).lost += 1
                raise unavailable(f"the connection broke after {connector_class.__name__} started its job")
            return meta

    return LosesAnswers


def athena_request(world: Any, run: str, attempt: int = 0) -> Any:
    return world.request(ATHENA, {"query": "select 1", "work_group": WORK_GROUP}, run=run, attempt=attempt)


def later(world: Any, seconds: float) -> float:
    """Move the service's clock ``seconds`` on from now; the time it now reads."""
    moved = time.time() + seconds
    world.service.store.clock = lambda: moved
    return moved


def query_ids(world: Any) -> set[str]:
    return set(world.boto("athena").list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"])


def query_state(world: Any, query_id: str) -> str:
    return str(world.boto("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"])


def lost_athena_create(world: Any, run: str) -> tuple[Any, str, str]:
    """Attempt 0's CreateTask, whose answer was lost after Athena started the query: the request,
    its token and the query's id."""
    before = query_ids(world)
    request = athena_request(world, run)
    assert world.error(world.create, request).code == Code.UNAVAILABLE
    token = world.token(request)
    assert starts(world, token) == 1
    [query_id] = query_ids(world) - before
    return request, token, query_id


# -- the reaper -----------------------------------------------------------------------------------


def test_the_reaper_does_not_replay_an_athena_create_past_the_window_and_ends_its_record_saying_where_to_look(
    aws_world, caplog, capsys, monkeypatch
):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    run = f"rpast{uuid.uuid4().hex[:8]}"
    _, token, query_id = lost_athena_create(world, run)
    now = later(world, UNDOCUMENTED + HOUR)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    with caplog.at_level(logging.WARNING), metrics.collecting(None):
        report = world.reap(now=now)
    assert starts(world, token) == 1  # no StartQueryExecution: nothing replayed
    assert query_state(world, query_id) != "CANCELLED"  # nor stopped: it may be running, unobserved
    [record] = world.records(run).values()
    assert record.state == ENDED and record.phase == TaskExecution.ABORTED and record.resource_meta is None
    assert NOT_FOUND in record.message, record.message
    assert token in record.message and WORK_GROUP in record.message and "ClientRequestToken" in record.message
    assert "REPLAY_WINDOW_MINUTES" in record.message and "documents no window" in record.message  # not AWS's bound
    assert any("past its replay window" in note for note in record.notes), record.notes
    assert report.failed == []
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING and NOT_FOUND in r.getMessage()]
    assert run in line.getMessage() and token in line.getMessage()
    documents = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    counted = [d for d in documents if metrics.SUSPECTED_ORPHANS in d and d.get("task_type") == ATHENA]
    assert counted and counted[0][metrics.SUSPECTED_ORPHANS] in (1, [1])


@pytest.mark.parametrize("age", [1.1 * HOUR, UNDOCUMENTED - 60])
def test_the_reaper_replays_an_athena_create_inside_the_window_as_before(aws_world, age):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    world.hold("athena::execution")
    try:
        run = f"rinside{uuid.uuid4().hex[:8]}"
        _, token, query_id = lost_athena_create(world, run)
        report = world.reap(now=later(world, age))
        assert starts(world, token) == 2  # replayed with the token: Athena answered the same query
        [record] = world.records(run).values()
        assert len(report.cancelled) == 1
        assert record.state == ENDED and record.phase == TaskExecution.ABORTED
        assert record.message.startswith("cancelled: no executor polled this task"), record.message
        assert query_state(world, query_id) == "CANCELLED"  # the replay found the first query
    finally:
        world.release("athena::execution")


def test_the_deployment_setting_bounds_a_remote_that_documents_no_window(aws_world):
    world = aws_world(crashes_once(AthenaQueryConnector)(), replay_window_minutes=UNDOCUMENTED / 60 + 120)
    run = f"rsetting{uuid.uuid4().hex[:8]}"
    _, token, _ = lost_athena_create(world, run)
    world.reap(now=later(world, UNDOCUMENTED + HOUR))  # past the default, inside this deployment's
    assert starts(world, token) == 2
    [record] = world.records(run).values()
    assert record.state == ENDED and NOT_FOUND not in record.message


def test_a_step_functions_create_past_the_undocumented_bound_but_within_90_days_is_still_replayed(
    aws_world, aws_endpoint
):
    from connectors.dev.aws_resources import client_factory, ensure_role

    clients = client_factory(aws_endpoint)
    role = ensure_role(clients, "flyte-sfn-tests", "states.amazonaws.com")
    machine = clients("stepfunctions").create_state_machine(
        name=f"flyte-replay-wait-{uuid.uuid4().hex[:6]}",
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    world = aws_world(crashes_once(SfnExecutionConnector)())
    run = f"rsfn{uuid.uuid4().hex[:8]}"
    request = world.request(SFN, {"state_machine_arn": machine}, run=run)
    assert world.error(world.create, request).code == Code.UNAVAILABLE
    [started] = clients("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert started["status"] == "RUNNING"
    report = world.reap(now=later(world, 30 * 24 * HOUR))  # a month on: past the undocumented bound
    assert len(report.cancelled) == 1
    [record] = world.records(run).values()
    assert record.state == ENDED and record.phase == TaskExecution.ABORTED
    assert record.message.startswith("cancelled: no executor polled this task"), record.message
    [stopped] = clients("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert stopped["executionArn"] == started["executionArn"] and stopped["status"] == "ABORTED"


def test_a_create_refused_by_athena_is_not_replayed_past_the_window_and_ends_saying_no_job_started(aws_world):
    world = aws_world(AthenaQueryConnector())
    run = f"rrefused{uuid.uuid4().hex[:8]}"
    request = world.request(ATHENA, {"query": "select 1", "work_group": "no-such-work-group"}, run=run)
    assert world.error(world.create, request).code == Code.INVALID_ARGUMENT
    world.reap(now=later(world, UNDOCUMENTED + HOUR))
    assert starts(world, world.token(request)) == 1
    [record] = world.records(run).values()
    assert record.state == ENDED and NOT_FOUND not in record.message
    assert any("so no job was started" in note for note in record.notes), record.notes


# -- a newer attempt ------------------------------------------------------------------------------


def test_a_newer_attempt_does_not_replay_an_older_athena_create_past_the_window(aws_world):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    run = f"rnewer{uuid.uuid4().hex[:8]}"
    _, older, _ = lost_athena_create(world, run)
    later(world, UNDOCUMENTED + HOUR)
    newer = athena_request(world, run, attempt=1)
    world.create(newer)
    assert starts(world, older) == 1 and starts(world, world.token(newer)) == 1
    records = world.records(run)
    assert records[1].state == ACTIVE
    assert records[0].state == ENDED and NOT_FOUND in records[0].message and older in records[0].message
    assert any(note.startswith("superseded") for note in records[0].notes), records[0].notes


def test_a_newer_attempt_inside_the_window_replays_the_older_create_as_before(aws_world):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    run = f"rnewerin{uuid.uuid4().hex[:8]}"
    _, older, _ = lost_athena_create(world, run)
    later(world, 2 * HOUR)
    world.create(athena_request(world, run, attempt=1))
    assert starts(world, older) == 2
    record = world.records(run)[0]
    assert record.state == ENDED and NOT_FOUND not in record.message


# -- the same attempt's next CreateTask -------------------------------------------------------------


def test_the_same_attempts_retry_past_the_window_starts_nothing_and_answers_why(aws_world):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    run = f"rretry{uuid.uuid4().hex[:8]}"
    request, token, _ = lost_athena_create(world, run)
    later(world, UNDOCUMENTED + HOUR)
    error = world.error(world.create, request)
    assert error.code == Code.FAILED_PRECONDITION and NOT_FOUND in error.message and token in error.message
    assert starts(world, token) == 1
    [record] = world.records(run).values()
    assert record.state == ENDED and NOT_FOUND in record.message
    again = world.error(world.create, request)  # and so on every retry, from the record
    assert again.code == Code.FAILED_PRECONDITION and NOT_FOUND in again.message
    assert starts(world, token) == 1


def test_the_window_counts_from_the_first_try_not_from_a_retry_that_took_the_claim_over(aws_world):
    world = aws_world(loses_answers(AthenaQueryConnector, 2)())
    run = f"rfirst{uuid.uuid4().hex[:8]}"
    request, token, _ = lost_athena_create(world, run)
    first = world.records(run)[0].created_at
    later(world, UNDOCUMENTED - HOUR)  # inside: the retry replays, and loses its answer too
    assert world.error(world.create, request).code == Code.UNAVAILABLE
    assert starts(world, token) == 2
    assert world.records(run)[0].created_at == first
    later(world, UNDOCUMENTED + 60)  # an hour after the retry, past the first try's window
    assert world.error(world.create, request).code == Code.FAILED_PRECONDITION
    assert starts(world, token) == 2


def test_the_same_attempts_retry_inside_the_window_replays_as_before(aws_world):
    world = aws_world(crashes_once(AthenaQueryConnector)())
    run = f"rretryin{uuid.uuid4().hex[:8]}"
    request, token, _ = lost_athena_create(world, run)
    later(world, 2 * HOUR)
    handle = world.create(request)
    assert starts(world, token) == 2
    assert world.record(handle).state == ACTIVE
