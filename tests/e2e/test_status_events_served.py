"""Through `connectors serve` (what `make serve` runs), a Batch task's phase changes reach its record
from the fake AWS's "Batch Job State Change" events, with no DescribeJobs in between (issue 19).

The embedded fake AWS publishes each job's status changes to its EventBridge, a rule routes them
to an SQS queue, and the server's consumer applies them; the fake counts the DescribeJobs calls
(GET /moto-api/fake-aws/faults) each GetTask makes. The documented reads are the first (no event
has told the status yet, unless one came first) and the one after SUCCEEDED (its outputs and final
answer come from the job itself).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.dev.local_dynamodb import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "flyteidl2.connector.AsyncConnectorService"
TERMINAL = ("SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED")


class Served:
    def __init__(self, api: str, aws: str, process: subprocess.Popen[str]) -> None:
        self.api, self.aws, self.process = api, aws, process

    def describes(self) -> int:
        counts = httpx.get(f"{self.aws}/moto-api/fake-aws/faults", timeout=10).json()["counts"]
        return int(counts.get("batch:DescribeJobs", {}).get("calls", 0))

    def get_task(self, handle: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.api}/{SERVICE}/GetTask",
            json={"resourceMeta": handle, "taskCategory": {"name": "aws_batch_job"}},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["resource"])


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    port, aws_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "TASKS_TABLE", "STATUS_SAFETY_READ_MINUTES")
    }
    env |= {"PORT": str(port), "DYNAMODB_PORT": str(aws_port), "FLYTE_SDK_CONNECTORS": "none"}  # as make serve
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120  # two cores beside other test workers start it slowly
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                httpx.post(f"{api}/flyteidl2.connector.ConnectorMetadataService/ListConnectors", json={})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "connectors serve did not listen within 120 s"
                time.sleep(0.2)
        yield Served(api, f"http://{HOST}:{aws_port}", process)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert "Traceback" not in output, output[-4000:]
        assert "State-change events: the embedded AWS's EventBridge -> SQS queue" in output
        assert "-> RUNNING (state-change event)" in output  # the receiver's line, as make serve shows it


def test_a_batch_tasks_phases_reach_its_record_with_no_describe_between_polls(served: Served) -> None:
    body = json.loads((ROOT / "examples" / "aws_batch_job.json").read_text())
    body["taskExecutionMetadata"]["taskExecutionId"]["nodeExecutionId"]["executionId"]["name"] = (
        f"events-{uuid.uuid4().hex[:8]}"
    )
    # The fake's clock: a Batch job takes a step (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING,
    # SUCCEEDED) per look, every 1.5 s here, so that polls on a loaded machine see the middle ones.
    slower = httpx.post(f"{served.aws}/moto-api/fake-aws/events", json={"interval_seconds": 1.5}, timeout=10)
    assert slower.status_code == 200 and slower.json()["enabled"], slower.text
    created = httpx.post(f"{served.api}/{SERVICE}/CreateTask", json=body, timeout=30)
    assert created.status_code == 200, created.text
    handle = created.json()["resourceMeta"]

    polls: list[tuple[str, int]] = []  # (the phase GetTask answered, the DescribeJobs it made)
    deadline = time.monotonic() + 60
    while not polls or polls[-1][0] not in TERMINAL:
        assert time.monotonic() < deadline, f"still {polls[-1]} after 60 s: {polls}"
        before = served.describes()
        phase = served.get_task(handle).get("phase", "UNDEFINED")
        polls.append((phase, served.describes() - before))
        time.sleep(0.1)

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
    assert phases.index("SUCCEEDED") == len(phases) - 1
    order = {"QUEUED": 0, "WAITING_FOR_RESOURCES": 1, "INITIALIZING": 2, "RUNNING": 3, "SUCCEEDED": 4}
    assert [order[p] for p in phases] == sorted(order[p] for p in phases), polls  # never back

    published = httpx.get(f"{served.aws}/moto-api/fake-aws/events", timeout=10).json()
    assert published["enabled"] and published["published"]["Batch Job State Change"] >= 4, published
