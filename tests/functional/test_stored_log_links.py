"""A GetTask answered from the task's record carries the log links last read, not none.

docs/aws-connectors.md promises that every answer carries a console link and, for a job that
logs to CloudWatch, a link to its log stream. Most polls answer from the record without reading
the job: while a state-change event keeps it current, while another poll read the job less than
StatusReadIntervalSeconds ago, while status reads fail, and once the task has ended. Those
answers carry the links the record keeps from the last read (or event). Through the served app
against the fake AWS (a Batch job), and with a scripted connector for what the fake cannot do.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog

from connectors import Resource
from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.errors import Code, ConnectError
from connectors.store import budget
from tests.functional.test_status_events import CUSTOM, TYPE, EventWorld
from tests.sample_connectors import CountingConnector, JobMeta


def links(resource: Any) -> list[tuple[str, str]]:
    return [(link.name, link.uri) for link in resource.log_links]


def describes(world: Any) -> int:
    return world._post("/moto-api/fake-aws/faults", {})["counts"].get("batch:DescribeJobs", {}).get("calls", 0)


# -- a Batch job through the fake AWS ------------------------------------------------------------


def test_a_poll_within_the_read_interval_carries_the_links_the_last_read_reported(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_read_interval_seconds=60.0)
    world.hold("batch::job")
    try:
        handle = world.create(world.request(TYPE, CUSTOM))
        read = world.poll(handle, TYPE)  # the first poll reads the job
        assert [name for name, _ in links(read)] == ["AWS Batch job"]  # not started: no log stream yet
        before = describes(world)
        stored = world.poll(handle, TYPE)  # within the interval: answered from the record
        assert describes(world) == before
        assert links(stored) == links(read)
    finally:
        world.release("batch::job")


def test_with_events_the_answers_carry_the_console_and_log_stream_links(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0)
    events = EventWorld(world)
    try:
        read = world.poll(events.handle, TYPE)
        console = links(read)
        assert [name for name, _ in console] == ["AWS Batch job"] and events.job_id in console[0][1]
        stream = f"flyte-example/default/{events.job_id}"
        container = {**(events.job.get("container") or {}), "logStreamName": stream}
        assert events.push("RUNNING", 1, container=container) == "applied"
        before = events.describes()
        running = world.poll(events.handle, TYPE)  # status fresh from the event: no read
        assert events.describes() == before and running.phase == TaskExecution.RUNNING
        assert links(running)[0] == console[0]
        assert [name for name, _ in links(running)] == ["AWS Batch job", "CloudWatch logs"]
        assert "flyte-example$252Fdefault$252F" in links(running)[1][1]  # the stream, as the console escapes it
        assert links(world.poll(events.handle, TYPE)) == links(running)  # and on every poll after
        assert events.push("RUNNING", 2, container=container) == "unchanged"  # the same links: no write
        retried = {**container, "logStreamName": f"{stream}-2"}  # the job's next try logs to a new stream
        assert events.push("RUNNING", 3, container=retried) == "applied"
        running = world.poll(events.handle, TYPE)
        assert links(running)[1][1].endswith("-2") and events.describes() == before
        assert events.push("FAILED", 9, container=retried, statusReason="Essential container in task exited") == (
            "applied"
        )
        ended = world.poll(events.handle, TYPE)  # ended by the event: answered from the record
        assert ended.phase == TaskExecution.FAILED and events.describes() == before
        assert links(ended) == links(running)
    finally:
        world.release("batch::job")


def test_an_ended_tasks_answer_carries_its_links(aws_world):
    world = aws_world(AwsBatchJobConnector())
    handle = world.create(world.request(TYPE, CUSTOM))
    job_id = world.record(handle).job_key.split("#", 1)[1]
    world.fate("batch", job_id, "FAILED", reason="Essential container in task exited", exit_code=3)
    told = world.wait(handle, TYPE)  # polls that read, until one reads the job failed
    assert told.phase == TaskExecution.FAILED
    assert [name for name, _ in links(told)] == ["AWS Batch job", "CloudWatch logs"]
    assert world.record(handle).state == "ended"
    before = describes(world)
    again = world.poll(handle, TYPE)  # an ended record: answered as stored, the job not read
    assert describes(world) == before
    assert again.phase == TaskExecution.FAILED and links(again) == links(told)


# -- a scripted connector: failing reads, links that change, too many links ----------------------


class LinkedConnector(CountingConnector):
    """Reports RUNNING with the links in ``self.links``; raises a code put in ``self.failing``."""

    name = "Linked Connector"
    task_type_name = "linked"

    def __init__(self) -> None:
        super().__init__()
        self.links: list[TaskLog] = [TaskLog(name="console", uri="https://console.example.com/jobs/1")]
        self.failing: Code | None = None

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        await super().get(resource_meta, **kwargs)
        if self.failing is not None:
            raise ConnectError(self.failing, f"the remote said {self.failing.value} (scripted)")
        return Resource(phase=TaskExecution.RUNNING, message="running", log_links=list(self.links))


@pytest.fixture
def linked(aws_world):
    connector = LinkedConnector()
    world = aws_world(connector)
    world.connector = connector
    world.handle = world.create(world.request("linked", {}))
    return world


def test_a_poll_whose_status_read_fails_carries_the_stored_links(linked):
    first = linked.poll(linked.handle, "linked")
    assert links(first) == [("console", "https://console.example.com/jobs/1")]
    linked.connector.failing = Code.UNAVAILABLE
    answer = linked.poll(linked.handle, "linked")
    assert "status read failed" in answer.message  # answered from the record
    assert links(answer) == links(first)


def count_writes(world: Any) -> list[str]:
    """The UpdateItem/PutItem expressions the service sends from now on."""
    writes: list[str] = []
    store = world.service.store
    original = store._call

    def counting(operation: str, **kwargs: Any) -> Any:
        if operation in {"update_item", "put_item"}:
            writes.append(kwargs.get("UpdateExpression", operation))
        return original(operation, **kwargs)

    store._call = counting
    return writes


def test_links_are_written_when_they_change_and_an_unchanged_poll_writes_nothing(linked):
    linked.poll(linked.handle, "linked")  # QUEUED -> RUNNING, with its link: one write
    writes = count_writes(linked)
    for _ in range(20):
        linked.poll(linked.handle, "linked")
    assert writes == []  # nothing changed, the heartbeat is recent: no write (the cost model)
    linked.connector.links.append(TaskLog(name="logs", uri="https://logs.example.com/stream/1"))
    appeared = linked.poll(linked.handle, "linked")  # the same phase and message, a link more
    assert [name for name, _ in links(appeared)] == ["console", "logs"]
    assert len(writes) == 1 and "log_links" in writes[0]
    for _ in range(5):
        linked.poll(linked.handle, "linked")
    assert len(writes) == 1
    linked.connector.failing = Code.UNAVAILABLE
    assert links(linked.poll(linked.handle, "linked")) == links(appeared)


def test_links_past_the_cap_are_dropped_from_the_record_not_the_write(linked):
    many = [TaskLog(name=f"link {n}", uri=f"https://console.example.com/jobs/{n}?{'q' * 200}") for n in range(200)]
    linked.connector.links = many
    read = linked.poll(linked.handle, "linked")
    assert len(read.log_links) == 200  # this poll's own report is answered whole
    stored = linked.record(linked.handle).log_links
    assert stored is not None and 0 < len(stored) <= budget.LOG_LINKS_BYTES
    linked.connector.failing = Code.UNAVAILABLE
    answer = linked.poll(linked.handle, "linked")
    kept = links(answer)
    assert 0 < len(kept) < 200 and kept == links(read)[: len(kept)]  # the first ones, in order


def test_the_record_is_answered_with_its_links_after_the_status_read_interval_turn_is_lost(aws_world):
    """A poll that finds another poll took the turn less than the interval ago."""
    connector = LinkedConnector()
    world = aws_world(connector, status_read_interval_seconds=60.0)
    handle = world.create(world.request("linked", {}))
    read = world.poll(handle, "linked")
    reads = connector.calls["get"]
    time.sleep(0.05)
    stored = world.poll(handle, "linked")
    assert connector.calls["get"] == reads and links(stored) == links(read)


def test_tasks_show_lists_the_stored_links_escaped(linked, capsys):
    from connectors.cli import main
    from connectors.dev.tasks_output import printable

    name, uri = "console\x1b]52;c;eA==\x07", "https://console.example.com/jobs/1\n  - forged: line"
    linked.connector.links = [TaskLog(name=name, uri=uri)]
    linked.poll(linked.handle, "linked")
    assert main(["tasks", "show", linked.handle.decode(), "--table", linked.settings.tasks_table]) == 0
    out = capsys.readouterr().out
    assert f"  - {printable(name)}: {printable(uri)}" in out.splitlines()
    assert "\x1b" not in out and "forged: line" not in [line.strip("- ") for line in out.splitlines()]
    assert main(["tasks", "show", linked.handle.decode(), "--table", linked.settings.tasks_table, "--json"]) == 0
    assert f'"uri": "{uri}"'.replace("\n", "\\n") in capsys.readouterr().out
