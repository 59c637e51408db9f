"""Through `connectors serve` (what `make serve` runs), a Batch task's phase changes reach its record
from the fake AWS's "Batch Job State Change" events, with no DescribeJobs in between (issue 19);
every other AWS example ends by its service's events too.

The embedded fake AWS publishes each job's status changes to its EventBridge, a rule routes them
to an SQS queue, and the server's consumer applies them; the fake counts the DescribeJobs calls
(GET /moto-api/fake-aws/faults) each GetTask makes. The documented reads are the first (no event
has told the status yet, unless one came first) and the one after SUCCEEDED (its outputs and final
answer come from the job itself).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.connectors_serve import TEST_ENVIRONMENT, Serving, connectors_serve

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "flyteidl2.connector.AsyncConnectorService"
TERMINAL = ("SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED")


# task type -> (the service:Operation that reads its job's status, its events' detail-type)
READS = {
    "aws_batch_job": ("batch:DescribeJobs", "Batch Job State Change"),
    "athena_query": ("athena:GetQueryExecution", "Athena Query State Change"),
    "sfn_execution": ("states:DescribeExecution", "Step Functions Execution Status Change"),
    "sagemaker_training_job": ("sagemaker:DescribeTrainingJob", "SageMaker Training Job State Change"),
    "sagemaker_processing_job": ("sagemaker:DescribeProcessingJob", "SageMaker Processing Job State Change"),
    "emr_serverless_job": ("emr-serverless:GetJobRun", "EMR Serverless Job Run State Change"),
    "glue_job": ("glue:GetJobRun", "Glue Job State Change"),
    "redshift_query": ("redshift-data:DescribeStatement", "Redshift Data Statement Status Change"),
}


class Served:
    def __init__(self, serving: Serving) -> None:
        self.api, self.aws = serving.api, serving.aws

    def reads(self, task_type: str = "aws_batch_job") -> int:
        counts = httpx.get(f"{self.aws}/moto-api/fake-aws/faults", timeout=10).json()["counts"]
        return int(counts.get(READS[task_type][0], {}).get("calls", 0))

    def published(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.aws}/moto-api/fake-aws/events", timeout=10).json()["published"])

    def create(self, example: str) -> str:
        body = json.loads((ROOT / "examples" / f"{example}.json").read_text())
        body["taskExecutionMetadata"]["taskExecutionId"]["nodeExecutionId"]["executionId"]["name"] = (
            f"events-{uuid.uuid4().hex[:8]}"
        )
        created = httpx.post(f"{self.api}/{SERVICE}/CreateTask", json=body, timeout=30)
        assert created.status_code == 200, created.text
        return str(created.json()["resourceMeta"])

    def get_task(self, handle: str, task_type: str = "aws_batch_job") -> dict[str, Any]:
        answer = httpx.post(
            f"{self.api}/{SERVICE}/GetTask",
            json={"resourceMeta": handle, "taskCategory": {"name": task_type}},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["resource"])

    def poll_to_the_end(self, handle: str, task_type: str = "aws_batch_job") -> list[tuple[str, int]]:
        """Each poll's phase and the status reads it made, until the task ended."""
        polls: list[tuple[str, int]] = []
        deadline = time.monotonic() + 60
        while not polls or polls[-1][0] not in TERMINAL:
            assert time.monotonic() < deadline, f"still {polls[-1]} after 60 s: {polls}"
            before = self.reads(task_type)
            phase = self.get_task(handle, task_type).get("phase", "UNDEFINED")
            polls.append((phase, self.reads(task_type) - before))
            time.sleep(0.1)
        return polls


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with connectors_serve(
        without=(*TEST_ENVIRONMENT, "STATUS_SAFETY_READ_MINUTES"),
        env={"FLYTE_SDK_CONNECTORS": "none"},  # as make serve
        listen_seconds=120,  # two cores beside other test workers start it slowly
        stop_seconds=30,
    ) as serving:
        yield Served(serving)
    output = serving.output
    assert "Traceback" not in output, output[-4000:]
    assert "State-change events: the embedded AWS's EventBridge -> SQS queue" in output
    assert "-> RUNNING (state-change event)" in output  # the receiver's line, as make serve shows it


def test_a_batch_tasks_phases_reach_its_record_with_no_describe_between_polls(served: Served) -> None:
    # The fake's clock: a Batch job takes a step (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING,
    # SUCCEEDED) per look, every 1.5 s here, so that polls on a loaded machine see the middle ones.
    slower = httpx.post(f"{served.aws}/moto-api/fake-aws/events", json={"interval_seconds": 1.5}, timeout=10)
    assert slower.status_code == 200 and slower.json()["enabled"], slower.text
    try:
        polls = served.poll_to_the_end(served.create("aws_batch_job"))
    finally:
        httpx.post(f"{served.aws}/moto-api/fake-aws/events", json={"interval_seconds": 0.5}, timeout=10)

    phases = [phase for phase, _ in polls]
    assert phases[-1] == "SUCCEEDED", polls
    # The job went through its statuses while polled: the record showed them as the events told,
    # every poll between the first and the SUCCEEDED read answered without reading the job.
    told = [phase for phase, reads in polls[1:-1] if reads == 0]
    assert {"WAITING_FOR_RESOURCES", "INITIALIZING", "RUNNING"} & set(told), polls
    assert sum(reads for _, reads in polls[1:-1]) == 0, polls
    assert polls[0][1] <= 1 and polls[-1][1] == 1, (
        polls
    )  # the first read (unless an event came first); the SUCCEEDED read
    order = {"QUEUED": 0, "WAITING_FOR_RESOURCES": 1, "INITIALIZING": 2, "RUNNING": 3, "SUCCEEDED": 4}
    assert [order[p] for p in phases] == sorted(order[p] for p in phases), polls  # never back
    assert served.published()["Batch Job State Change"] >= 4


@pytest.mark.parametrize("task_type", sorted(set(READS) - {"aws_batch_job"}))
def test_every_aws_example_ends_by_its_events_with_no_status_read_between_polls(served: Served, task_type: str) -> None:
    """The fake's other jobs end at once or within a few looks: the first poll may read the end
    itself; otherwise the event that tells it (or SUCCEEDED, which makes the next poll read the
    job for its outputs) moves the record, no poll reading in between. Each job's event is published."""
    detail_type = READS[task_type][1]
    before = served.published().get(detail_type, 0)
    polls = served.poll_to_the_end(served.create(task_type), task_type)
    assert polls[-1][0] == "SUCCEEDED", polls
    assert sum(reads for _, reads in polls[1:-1]) == 0, polls
    deadline = time.monotonic() + 10  # a job that ended by the first poll's read is published at the next look
    while served.published().get(detail_type, 0) <= before:
        assert time.monotonic() < deadline, (detail_type, served.published())
        time.sleep(0.2)
