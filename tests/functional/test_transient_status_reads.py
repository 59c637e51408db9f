"""A status read that meets a transient remote failure does not fail the task (issue 17).

The Flyte executor counts every GetTask error against the task and never resets the count: past
five it fails the task as a system failure. A throttle, an AWS 5xx or a slow answer while reading
a job's status is not the job failing, so GetTask answers the stored phase, says the status read
failed and since when, and answers an error only once no status read has succeeded for longer
than ``status_stale_after_minutes``. Errors that are not transient (not found, denied, a bug)
answer as before. Through the served app, with a connector whose remote fails as scripted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import Resource
from connectors.errors import Code, ConnectError
from tests.sample_connectors import CountingConnector, JobMeta

TYPE = "flaky_status"


class FlakyStatusConnector(CountingConnector):
    """Its remote answers each status read from a script: a phase, or an error code to raise."""

    name = "Flaky Status Connector"
    task_type_name = TYPE

    def __init__(self) -> None:
        super().__init__()
        self.script: list[Any] = []

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        await super().get(resource_meta, **kwargs)
        step = self.script.pop(0) if self.script else TaskExecution.RUNNING
        if isinstance(step, Code):
            raise ConnectError(step, f"the remote said {step.value} (scripted)")
        return Resource(phase=step, message=f"phase {step}")


@pytest.fixture
def flaky(aws_world):
    connector = FlakyStatusConnector()
    world = aws_world(connector)
    world.connector = connector
    return world


@pytest.mark.parametrize("code", [Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED])
def test_a_transient_failure_answers_the_stored_phase_and_says_the_read_failed(flaky, code):
    handle = flaky.create(flaky.request(TYPE, {}))
    flaky.connector.script = [TaskExecution.RUNNING, code, code, TaskExecution.RUNNING, TaskExecution.SUCCEEDED]
    assert flaky.poll(handle, TYPE).phase == TaskExecution.RUNNING
    for _ in range(2):
        answer = flaky.poll(handle, TYPE)  # no error: the executor would count it
        assert answer.phase == TaskExecution.RUNNING
        assert "status read failed" in answer.message and code.value in answer.message
        assert "since" in answer.message
    record = flaky.record(handle)
    assert record.phase == TaskExecution.RUNNING and record.status_failing_since is not None
    assert flaky.poll(handle, TYPE).phase == TaskExecution.RUNNING
    assert flaky.record(handle).status_failing_since is None  # a read that succeeds clears it
    assert flaky.poll(handle, TYPE).phase == TaskExecution.SUCCEEDED


def test_not_transient_failures_answer_as_before(flaky):
    handle = flaky.create(flaky.request(TYPE, {}))
    flaky.connector.script = [Code.PERMISSION_DENIED]
    error = flaky.error(flaky.poll, handle, TYPE)
    assert error.code == Code.PERMISSION_DENIED


def test_past_the_staleness_limit_the_failure_is_answered(aws_world):
    connector = FlakyStatusConnector()
    world = aws_world(connector, status_stale_after_minutes=0.02)  # 1.2 s
    handle = world.create(world.request(TYPE, {}))
    connector.script = [Code.UNAVAILABLE] * 10
    assert world.poll(handle, TYPE).phase == TaskExecution.QUEUED  # the first failure: the stored phase (create's)
    time.sleep(1.5)
    error = world.error(world.poll, handle, TYPE)
    assert error.code == Code.UNAVAILABLE
    assert "no status read has succeeded for" in error.message


def test_a_task_never_fails_for_a_throttled_remote_within_the_limit(flaky):
    """The issue's measurement: a remote whose every third status read is throttled. The
    executor's rule (more than five GetTask errors fail the task) is never reached: no errors."""
    handle = flaky.create(flaky.request(TYPE, {}))
    flaky.connector.script = [Code.RESOURCE_EXHAUSTED if i % 3 == 2 else TaskExecution.RUNNING for i in range(30)] + [
        TaskExecution.SUCCEEDED
    ]
    errors = 0
    for _ in range(40):
        try:
            phase = flaky.poll(handle, TYPE).phase
        except Exception:
            errors += 1
            continue
        if phase == TaskExecution.SUCCEEDED:
            break
    assert errors == 0 and phase == TaskExecution.SUCCEEDED


# -- status reads bounded per task -----------------------------------------------------------


def test_many_pollers_read_the_remote_once_per_interval(aws_world):
    """Eight pollers at once (two executors, relay retries, an operator): one status read; the
    others answer the stored phase from the record they read."""
    from concurrent.futures import ThreadPoolExecutor

    connector = FlakyStatusConnector()
    world = aws_world(connector, status_read_interval_seconds=30.0)
    handle = world.create(world.request(TYPE, {}))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: world.poll(handle, TYPE), range(8)))
    assert connector.calls["get"] == 1
    assert {answer.phase for answer in answers} <= {TaskExecution.QUEUED, TaskExecution.RUNNING}
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING  # the stored phase, no read
    assert connector.calls["get"] == 1


def test_the_next_turn_reads_again_and_a_failing_remote_is_asked_less_often(aws_world):
    connector = FlakyStatusConnector()
    world = aws_world(connector, status_read_interval_seconds=0.1)
    handle = world.create(world.request(TYPE, {}))
    world.poll(handle, TYPE)
    time.sleep(0.15)
    world.poll(handle, TYPE)
    assert connector.calls["get"] == 2  # a turn per interval
    connector.script = [Code.RESOURCE_EXHAUSTED] * 100
    time.sleep(0.15)
    world.poll(handle, TYPE)  # fails: the mark is set
    reads = connector.calls["get"]
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING  # the stored phase, never an error
        time.sleep(0.02)
    # Every 0.1 s would be ~15 reads in 1.5 s; turns half the failing time apart: ~7.
    assert connector.calls["get"] - reads <= 9, connector.calls["get"] - reads


def test_polls_answered_without_a_read_still_write_the_heartbeat(aws_world):
    connector = FlakyStatusConnector()
    world = aws_world(connector, status_read_interval_seconds=60.0, abandoned_after_minutes=0.02)  # due every 0.3 s
    handle = world.create(world.request(TYPE, {}))
    world.poll(handle, TYPE)
    first = world.record(handle).heartbeat_at
    time.sleep(0.5)
    world.poll(handle, TYPE)  # no read (its turn is a minute away), but the heartbeat is due
    assert connector.calls["get"] == 1
    assert world.record(handle).heartbeat_at > first


def test_a_staleness_limit_of_zero_answers_every_failed_read(aws_world):
    """0 turns the stored-phase answer off (benchmarks/faults.py's baseline: the behaviour before
    it); the template's minimum is 1, so no deployment gets it by accident."""
    connector = FlakyStatusConnector()
    world = aws_world(connector, status_stale_after_minutes=0)
    handle = world.create(world.request(TYPE, {}))
    connector.script = [Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED, TaskExecution.RUNNING]
    assert world.error(world.poll, handle, TYPE).code == Code.UNAVAILABLE
    assert world.error(world.poll, handle, TYPE).code == Code.RESOURCE_EXHAUSTED
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING


# -- a SUCCEEDED task's outputs ----------------------------------------------------------------


def test_a_succeeded_task_without_outputs_answers_succeeded_when_its_remote_is_throttled(flaky):
    """Found by benchmarks/faults.py: a second executor's poll of a task another poll saw succeed
    read the remote again for the outputs, and a throttle there was a GetTask error. A task that
    declares no outputs has nothing to read: the failed read answers the stored SUCCEEDED."""
    handle = flaky.create(flaky.request(TYPE, {}))
    flaky.connector.script = [TaskExecution.SUCCEEDED, Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE]
    assert flaky.poll(handle, TYPE).phase == TaskExecution.SUCCEEDED
    for _ in range(2):
        assert flaky.poll(handle, TYPE).phase == TaskExecution.SUCCEEDED  # no error for the executor to count
    assert flaky.connector.calls["get"] == 3


def test_a_succeeded_task_with_outputs_answers_the_failed_read_of_them(flaky):
    """Its outputs come only from the remote: SUCCEEDED without them would send the executor to an
    outputs.pb that does not exist, failing the task; the transient error costs one retry instead."""
    from tests.aws_world import INT

    handle = flaky.create(flaky.request(TYPE, {}, outputs={"n": INT}))
    flaky.connector.script = [TaskExecution.SUCCEEDED, Code.RESOURCE_EXHAUSTED]
    flaky.poll(handle, TYPE)
    assert flaky.error(flaky.poll, handle, TYPE).code == Code.RESOURCE_EXHAUSTED
