"""An AWS Batch array job's task under state-change events (issue 19).

The parent "remain[s] in PENDING status while child jobs are running" and sends no event
meanwhile; its task's phase (RUNNING once a child started, with the children's counts) is what
the parent's DescribeJobs reports. So a child's event (jobId ``<parent id>:<index>``) makes the
parent's task due: the next poll reads the parent. Many children's events between two polls
write once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.event_receiver import EventReceiver
from tests.aws_job_events import batch_event
from tests.aws_world import STR

TYPE = "aws_batch_job"


def test_a_childs_event_makes_the_parents_task_read_once(aws_world: Any) -> None:
    world = aws_world(AwsBatchJobConnector(), status_safety_read_minutes=5.0, status_read_interval_seconds=5.0)
    receiver = EventReceiver(world.service)
    world.hold("batch::job")  # nothing moves by itself: only the events below
    try:
        custom = {"job_queue": "flyte-example", "job_definition": "flyte-example", "array_size": 2}
        handle = world.create(world.request(TYPE, custom, inputs={"day": (STR, "monday")}))
        parent = world.record(handle).job_key.split("#", 1)[1]
        job = world.boto("batch").describe_jobs(jobs=[parent])["jobs"][0]

        def describes() -> int:
            counts = world._post("/moto-api/fake-aws/faults", {})["counts"]
            return int(counts.get("batch:DescribeJobs", {}).get("calls", 0))

        def poll() -> int:
            before = describes()
            world.poll(handle, TYPE)
            return describes() - before

        def push(**detail: Any) -> str:
            second = detail.pop("second")
            return asyncio.run(receiver.receive(batch_event(job, second, **detail)))

        assert poll() == 1 and poll() == 0  # read once, then the record is current
        child = {"jobArn": f"{job['jobArn']}:0", "arrayProperties": {"index": 0}}
        assert push(jobId=f"{parent}:0", status="STARTING", second=1, **child) == "due"
        version = world.record(handle).version
        assert push(jobId=f"{parent}:1", status="STARTING", second=2, arrayProperties={"index": 1}) == "due"
        assert world.record(handle).version == version  # due already: no second write
        assert poll() == 1 and poll() == 0  # the parent read once, for its children's counts
        assert push(jobId="another-job:0", status="RUNNING", second=3) == "unknown job"

        assert push(jobId=parent, status="FAILED", statusReason="Array Child Job failed", second=9) == "applied"
        record = world.record(handle)
        assert record.state == "ended" and record.phase == TaskExecution.FAILED
        assert push(jobId=f"{parent}:0", status="FAILED", second=10) == "unknown job"  # it left the index
    finally:
        world.release("batch::job")
