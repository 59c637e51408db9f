"""A task no event can find is polled as before events: its record is never taken as current.

A task created before the stack delivered events (an upgrade: StatusEvents turned on, or the
by-job-key index added, while tasks run) has no job_key, so no state-change event reaches its
record; were its stored status answered for StatusSafetyReadMinutes after each read, every
change of its job would wait that long. Such a record is read at every poll, as with events off.
"""

from __future__ import annotations

import time

from connectors.builtin.aws.batch import AwsBatchJobConnector
from tests.functional.test_status_events import EventWorld


def test_a_task_without_a_job_key_is_read_at_every_poll(aws_world, dynamodb_client) -> None:
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=0.5)
    events = EventWorld(world)
    try:
        record = events.record()
        dynamodb_client.update_item(  # as a task created before the upgrade: never indexed
            TableName=world.service.store.table_name,
            Key={"action_id": {"S": record.action_id}, "attempt": {"N": str(record.attempt)}},
            UpdateExpression="REMOVE job_key",
        )
        assert events.record().job_key is None
        assert events.push("RUNNING", 1) == "unknown job"  # no event reaches it
        assert events.poll()[1] == 1
        time.sleep(0.6)  # past the read interval, well within the safety interval
        assert events.poll()[1] == 1  # read again: its stored status is not taken as current
    finally:
        world.release("batch::job")


def test_an_indexed_task_is_answered_from_its_record_between_safety_reads(aws_world) -> None:
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0)
    events = EventWorld(world)
    try:
        assert events.poll()[1] == 1  # the first poll reads: nothing has told the status yet
        assert events.poll()[1] == 0
    finally:
        world.release("batch::job")
