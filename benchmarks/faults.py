"""Faults: real AWS's bad moments in front of the service, polled as the Flyte executor polls.

Starts the fake AWS (moto's server with connectors/dev/fake_aws, the examples' resources) on
loopback and serves the app with uvicorn. AWS Batch jobs move one status a ``--step-seconds``
(moto's time-based progression) and end on the describe after RUNNING. The fake AWS throttles
each Batch API at ``--throttle-per-second`` calls a second and answers ``--error-share`` of the
calls with a 5xx (half of them after the job was started), as connectors/dev/fake_aws/faults.py
does. ``--tasks`` aws_batch_job tasks are created and polled by ``--executors`` simulated
executors, each as flyteplugins' web-API machinery does: every task every ``--resync-seconds``,
through a read limiter of ``--executor-rate`` GetTask a second, and a task with more than
``MAX_SYSTEM_FAILURES`` (5) GetTask errors is a system failure.

The same run measures two configurations, each on its own table, against the same faults:

- baseline: ``StatusStaleAfterMinutes`` 0 and ``StatusReadIntervalSeconds`` 0, the behaviour
  before issue 17 (every poll reads the remote; a failed read is the poll's error);
- now: the deployment's defaults (30 min, 5 s).

Printed per configuration: tasks wrongly failed (a system failure, or an end other than the
SUCCEEDED every job reached), tasks unfinished, GetTask errors, the remote Batch calls the fake
AWS saw (per task and per second, botocore's own retries included; and the calls AWS answered per
minute of a task's run, beside the bound 60 / StatusReadIntervalSeconds), and how long each task took from CreateTask to an executor
seeing it end (the fake ends a job on a status read, so this includes how late the reads come).

    .venv/bin/python benchmarks/faults.py [--tasks 30] [--error-share 0.01] [--throttle-per-second 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)

from harness import fake_aws, local_aws  # noqa: E402

from connectors.dev.background_server import BackgroundServer  # noqa: E402

MAX_SYSTEM_FAILURES = 5  # the executor's MaxSystemFailures: the 6th GetTask error fails the task
# The executor's deadline for each call (plugins.connector-service defaultTimeout): an answer later
# than this is an error it counts, however the call would have ended. Not scaled with the resync.
EXECUTOR_DEADLINE_MS = 10_000
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}


@dataclass
class Task:
    handle: bytes
    created: float
    polls: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # per executor
    error_codes: Counter[str] = field(default_factory=Counter)
    seen_end: dict[str, tuple[str, float]] = field(default_factory=dict)  # executor -> (phase, wall time)
    system_failure: bool = False

    def done_for(self, executor: str) -> bool:
        return executor in self.seen_end or self.system_failure


class RateLimiter:
    """The executor's read limiter: ``rate`` calls a second, a burst of ten seconds' worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, rate * 10
        self.tokens, self.at = self.burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
            time.sleep(1 / self.rate)


def example_request(run: str) -> Any:
    from flyteidl2.connector import connector_pb2 as pb
    from google.protobuf import json_format

    request = json_format.Parse((ROOT / "examples" / "aws_batch_job.json").read_text(), pb.CreateTaskRequest())
    request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = run
    return request


def poll_as_executors(url: str, tasks: list[Task], args: argparse.Namespace) -> None:
    """Each executor: every resync period, one GetTask per task it has not seen end."""
    from connectrpc.errors import ConnectError
    from flyteidl2.connector import connector_pb2 as pb
    from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
    from flyteidl2.core.execution_pb2 import TaskExecution

    deadline = time.monotonic() + args.max_seconds
    names = [f"executor-{n}" for n in range(args.executors)]

    def one_poll(executor: str, client: Any, limiter: RateLimiter, task: Task) -> None:
        limiter.take()
        task.polls += 1
        request = pb.GetTaskRequest(resource_meta=task.handle, task_category=pb.TaskCategory(name="aws_batch_job"))
        try:
            phase = TaskExecution.Phase.Name(client.get_task(request, timeout_ms=EXECUTOR_DEADLINE_MS).resource.phase)
        except ConnectError as error:
            task.errors[executor] += 1
            task.error_codes[error.code.value] += 1
            if task.errors[executor] > MAX_SYSTEM_FAILURES:
                task.system_failure = True
            return
        if phase in TERMINAL:
            task.seen_end.setdefault(executor, (phase, time.time()))

    def executor_loop(executor: str, offset: float) -> None:
        client = AsyncConnectorServiceClientSync(url)
        limiter = RateLimiter(args.executor_rate)
        time.sleep(offset)
        with ThreadPoolExecutor(args.workers) as pool:
            while time.monotonic() < deadline:
                started = time.monotonic()
                waiting = [t for t in tasks if not t.done_for(executor)]
                if not waiting:
                    return
                list(pool.map(lambda t: one_poll(executor, client, limiter, t), waiting))
                time.sleep(max(0.0, args.resync_seconds - (time.monotonic() - started)))

    threads = [
        threading.Thread(target=executor_loop, args=(name, n * args.resync_seconds / args.executors))
        for n, name in enumerate(names)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def create_all(url: str, args: argparse.Namespace, label: str) -> tuple[list[Task], int]:
    """CreateTask for each task; an error is retried with the same request, as the executor does."""
    from connectrpc.errors import ConnectError
    from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

    client = AsyncConnectorServiceClientSync(url)
    run = f"faults-{label.split()[0]}-{uuid.uuid4().hex[:6]}"
    errors = 0

    def create(n: int) -> Task | None:
        nonlocal errors
        request = example_request(f"{run}-{n}")
        for _ in range(MAX_SYSTEM_FAILURES + 1):
            try:
                return Task(client.create_task(request, timeout_ms=EXECUTOR_DEADLINE_MS).resource_meta, time.time())
            except ConnectError:
                errors += 1
                time.sleep(1)
        return None

    with ThreadPoolExecutor(args.workers) as pool:
        made = list(pool.map(create, range(args.tasks)))
    return [t for t in made if t is not None], errors


def job_ends(store: Any, endpoint: str, tasks: list[Task]) -> dict[bytes, float]:
    """When each task's Batch job ended (its stoppedAt), read with the faults off."""
    import boto3

    from connectors.store import TaskHandle

    batch = boto3.client("batch", endpoint_url=endpoint, region_name="us-east-1")
    ends = {}
    for task in tasks:
        meta = json.loads(store.load(TaskHandle.decode(task.handle)).resource_meta)
        (job,) = batch.describe_jobs(jobs=[meta["job_id"]])["jobs"]
        if job.get("stoppedAt"):
            ends[task.handle] = job["stoppedAt"] / 1000
    return ends


def measure(
    endpoint: str, label: str, stale_minutes: float, read_interval: float, args: argparse.Namespace
) -> dict[str, Any]:
    from connectors.builtin.aws.batch import AwsBatchJobConnector
    from connectors.registry import ConnectorRegistry
    from connectors.runtime import build_service
    from connectors.settings import Settings
    from connectors.store import new_client
    from connectors.transport import create_app

    settings = dataclasses.replace(
        Settings.from_env(),
        tasks_table=f"faults-{label.split()[0]}-{uuid.uuid4().hex[:6]}",
        status_stale_after_minutes=stale_minutes,
        status_read_interval_seconds=read_interval,
    )
    service = build_service(settings, new_client(endpoint), ConnectorRegistry([AwsBatchJobConnector()]))
    service.store.create_table()
    fake_aws(endpoint, "/moto-api/fake-aws/faults", {"reset_counts": True, **faults_of(args)})
    with BackgroundServer(create_app(service), log_level="error", timeout_keep_alive=60) as served:
        started = time.time()
        tasks, create_errors = create_all(served.url, args, label)
        poll_as_executors(served.url, tasks, args)
        wall = time.time() - started
    seen = fake_aws(endpoint, "/moto-api/fake-aws/faults", {"error_share": 0, "throttle_per_second": 0})
    ends = job_ends(service.store, endpoint, tasks)
    # The fake Batch ends a job on the describe after the one that found it RUNNING, so a job's end
    # follows the reads: the figure is the task's whole time, create to an executor seeing it end.
    latencies = sorted(min(when for _, when in t.seen_end.values()) - t.created for t in tasks if t.seen_end)
    wrong = [t for t in tasks if t.system_failure or any(p != "SUCCEEDED" for p, _ in t.seen_end.values())]
    unfinished = [t for t in tasks if not t.system_failure and len(t.seen_end) < args.executors]
    counts = seen["counts"]
    reads = counts.get("batch:DescribeJobs", {})
    task_minutes = sum((ends.get(t.handle, time.time()) - t.created) / 60 for t in tasks) or 1
    return {
        "label": label,
        "tasks": args.tasks,
        "create_errors": create_errors,
        "wrongly_failed": len(wrong) + (args.tasks - len(tasks)),
        "unfinished": len(unfinished),
        "gettask_errors": sum(sum(t.errors.values()) for t in tasks),
        "polls": sum(t.polls for t in tasks),
        "error_codes": sum((t.error_codes for t in tasks), Counter()),
        "describe_calls": reads.get("calls", 0),
        "describe_throttled": reads.get("throttled", 0),
        "describe_failed": reads.get("failed_before", 0) + reads.get("failed_after", 0),
        # the reads the service made (botocore's retries of a throttle or 5xx left out)
        "describe_answered": reads.get("calls", 0) - reads.get("throttled", 0) - reads.get("failed_before", 0),
        "wall": wall,
        "task_minutes": task_minutes,
        "latency_p50": latencies[len(latencies) // 2] if latencies else float("nan"),
        "latency_max": latencies[-1] if latencies else float("nan"),
        "read_bound": 60 / read_interval if read_interval else float("inf"),
    }


def faults_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "throttle_per_second": args.throttle_per_second,
        "error_share": args.error_share,
        "services": ["batch"],
        "seed": args.seed,
    }


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.tasks} aws_batch_job tasks, {args.executors} executor(s) resyncing every {args.resync_seconds:g} s "
        f"(limiter {args.executor_rate:g} GetTask/s, a task fails past {MAX_SYSTEM_FAILURES} GetTask errors); "
        f"fake AWS Batch: {args.throttle_per_second:g} calls/s per API, {args.error_share:.1%} 5xx; "
        f"a job status step every {args.step_seconds:g} s\n"
    )
    header = (
        "| configuration | wrongly failed | unfinished | GetTask errors of polls | CreateTask errors | DescribeJobs calls "
        "(throttled, 5xx) | per task | per s | reads answered per task-minute (bound) | create to end seen p50 / max s "
        "| a 10 h task fails |"
    )
    print(header)
    print("|" + "---|" * 11)
    for r in rows:
        codes = ", ".join(f"{c} {n}" for c, n in r["error_codes"].most_common())
        print(
            f"| {r['label']} | {r['wrongly_failed']} | {r['unfinished']} | {r['gettask_errors']} of {r['polls']}"
            + (f" ({codes})" if codes else "")
            + f" | {r['create_errors']} | {r['describe_calls']} ({r['describe_throttled']}, {r['describe_failed']})"
            f" | {r['describe_calls'] / max(1, r['tasks']):.1f} | {r['describe_calls'] / r['wall']:.1f}"
            f" | {r['describe_answered'] / r['task_minutes']:.1f} ({r['read_bound']:g})"
            f" | {r['latency_p50']:.1f} / {r['latency_max']:.1f} | {ten_hour_failure(r):.1%} |"
        )
    print(
        "\n'a 10 h task fails': the chance that more than 5 of a 10-hour task's 1,200 polls (one executor, "
        "30 s resync) meet an error, at the GetTask error rate per poll measured here."
    )


def ten_hour_failure(row: dict[str, Any], polls: int = 1200) -> float:
    """P(Binomial(polls, p) > MAX_SYSTEM_FAILURES), p the measured GetTask errors per poll."""
    p = row["gettask_errors"] / max(1, row["polls"])
    return 1 - sum(math.comb(polls, k) * p**k * (1 - p) ** (polls - k) for k in range(MAX_SYSTEM_FAILURES + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--executors", type=int, default=2, help="pollers of every task (2: a rollout)")
    parser.add_argument("--resync-seconds", type=float, default=2.0, help="the executor's 30 s, scaled down")
    parser.add_argument("--executor-rate", type=float, default=30.0)
    parser.add_argument("--throttle-per-second", type=float, default=10.0)
    parser.add_argument("--error-share", type=float, default=0.01)
    parser.add_argument("--step-seconds", type=float, default=8.0, help="a Batch job's time in each status")
    parser.add_argument("--workers", type=int, default=16, help="concurrent calls per executor")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="per configuration")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)

    with local_aws() as server:
        endpoint = server.endpoint_url
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_DYNAMODB": endpoint})
        from connectors.dev.aws_resources import create_example_resources

        create_example_resources(endpoint)
        fake_aws(
            endpoint,
            "/moto-api/state-manager/set-transition",
            {"model_name": "batch::job", "transition": {"progression": "time", "seconds": args.step_seconds}},
        )
        from connectors.settings import Settings

        defaults = Settings.from_env()
        rows = [
            measure(endpoint, "baseline (stale limit 0, read interval 0)", 0.0, 0.0, args),
            measure(
                endpoint,
                f"now (stale limit {defaults.status_stale_after_minutes:g} min, read interval "
                f"{defaults.status_read_interval_seconds:g} s)",
                defaults.status_stale_after_minutes,
                defaults.status_read_interval_seconds,
                args,
            ),
        ]
    report(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
