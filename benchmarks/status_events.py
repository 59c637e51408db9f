"""Status events: what a task-hour costs when jobs' state-change events keep the records current,
beside polling alone, measured in the same run (issue 19).

Simulated time, real service: the service core (ConnectorService, its Poller and the
EventReceiver) runs in-process against moto's DynamoDB on loopback, on a virtual clock (the
store's). ``--tasks`` jobs each run ``--hours`` of virtual time: queued, running after two
minutes, succeeded at the end. ``--executors`` executors poll every task every 30 s (flyteplugins'
resync). With events, each status change is delivered as an event (``--lost`` of them never
arrive, ``--duplicated`` arrive twice), as the StatusEventsFunction delivers them.

Counted per task: remote status reads (the connector's ``get``: DescribeJobs on AWS), DynamoDB
calls and request units (botocore's own events on the store's client, as benchmarks/dynamodb_meter.py
counts them), Lambda invocations (each GetTask; the events function's batches of 10), and from
AWS list prices (benchmarks/pricing.py) the cost of a task-hour. Goal: remote reads per task at most
2 + hours x 60 / StatusSafetyReadMinutes whatever the resync, cost per task-hour not above polling's.

    .venv/bin/python benchmarks/status_events.py [--tasks 20] [--hours 1] [--executors 2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import random
import sys
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)

from harness import local_aws  # noqa: E402

RESYNC_SECONDS = 30.0
RUNNING_AFTER = 120.0
EVENTS_BATCH = 10  # SQS records per invocation of the events function
LAMBDA_MS, LAMBDA_MB = 20, 512  # a warm GetTask / events batch, as benchmarks/cost.py assumes


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def scripted_connector(clock: Clock, started: dict[str, float], hours: float) -> Any:
    """A job connector whose jobs follow the script in virtual time; counts its status reads."""
    from connectors.connector import AsyncConnector, Resource, ResourceMeta
    from connectors.job_events import JobEvents, detail_field

    @dataclasses.dataclass
    class JobMeta(ResourceMeta):
        job_id: str

    class ScriptedJobs(AsyncConnector[JobMeta]):
        name = "Scripted Jobs"
        task_type_name = "scripted_job"
        metadata_type = JobMeta
        job_events = JobEvents("bench.jobs", "Job State Change", detail_field("jobId"))
        reads = 0

        async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
            job_id = f"job-{kwargs['idempotency_token'][:16]}"
            started.setdefault(job_id, clock())
            return JobMeta(job_id=job_id)

        async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
            type(self).reads += 1
            return Resource(phase=status_at(started[resource_meta.job_id], clock(), hours), message="")

        async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
            return None

        def job_key(self, resource_meta: JobMeta) -> str:
            return resource_meta.job_id

        def resource_from_event(self, detail: Any, resource_meta: JobMeta) -> Resource:
            return Resource(phase=int(detail["phase"]), message="")

    return ScriptedJobs()


def status_at(start: float, now: float, hours: float) -> int:
    from flyteidl2.core.execution_pb2 import TaskExecution

    if now >= start + hours * 3600:
        return TaskExecution.SUCCEEDED
    return TaskExecution.RUNNING if now >= start + RUNNING_AFTER else TaskExecution.QUEUED


def create_request(run: str) -> Any:
    from flyteidl2.connector import connector_pb2 as pb
    from flyteidl2.core import tasks_pb2

    request = pb.CreateTaskRequest(template=tasks_pb2.TaskTemplate(type="scripted_job"), output_prefix="s3://b/p")
    execution = request.task_execution_metadata.task_execution_id.node_execution_id
    execution.execution_id.project, execution.execution_id.domain = "bench", "development"
    execution.execution_id.name, execution.node_id = run, "a0"
    return request


def simulate(endpoint: str, args: argparse.Namespace, safety_minutes: float, label: str) -> dict[str, Any]:
    from dynamodb_meter import DynamoMeter  # benchmarks/dynamodb_meter.py
    from flyteidl2.connector import connector_pb2 as pb
    from flyteidl2.core.execution_pb2 import TaskExecution
    from pricing import PRICES, lambda_dollars, measured_units  # benchmarks/pricing.py

    from connectors.event_receiver import EventReceiver
    from connectors.registry import ConnectorRegistry
    from connectors.service import ConnectorService
    from connectors.settings import Settings
    from connectors.store import TaskStore, new_client

    clock, started = Clock(), {}
    connector = scripted_connector(clock, started, args.hours)
    type(connector).reads = 0
    settings = Settings(
        tasks_table=f"events-bench-{uuid.uuid4().hex[:8]}",
        status_read_interval_seconds=5.0,
        status_safety_read_minutes=safety_minutes,
    )
    client = new_client(endpoint)
    store = TaskStore(settings.tasks_table, client, clock=clock)
    store.create_table()
    meter = DynamoMeter(client, settings.tasks_table)
    service = ConnectorService(ConnectorRegistry([connector]), store, settings)
    receiver = EventReceiver(service)
    rng = random.Random(args.seed)
    events_on = safety_minutes > 0
    calls: Counter[str] = Counter()

    async def run() -> None:
        handles = []
        for n in range(args.tasks):
            answer = await service.create_task(create_request(f"{label.split()[0]}-{n}"))
            handles.append(answer.resource_meta)
            calls["CreateTask"] += 1
        jobs = dict(zip(handles, started, strict=True))  # creates ran in order: handle -> job id
        last: dict[bytes, int] = {}
        pending: list[dict[str, Any]] = []
        end = clock() + args.hours * 3600 + 4 * RESYNC_SECONDS
        done: set[bytes] = set()
        step = RESYNC_SECONDS / args.executors
        while clock() < end and len(done) < len(handles):
            clock.now += step
            if events_on:  # each job's status changes since the last step, as its events
                for handle, job_id in jobs.items():
                    phase = status_at(started[job_id], clock(), args.hours)
                    if last.get(handle) != phase:
                        last[handle] = phase
                        if rng.random() >= args.lost:
                            pending += [event_of(job_id, phase, clock())] * (2 if rng.random() < args.duplicated else 1)
                calls["events delivered"] += len(pending)
                calls["events function invocations"] += -(-len(pending) // EVENTS_BATCH)
                for event in pending:
                    await receiver.receive(event)
                pending.clear()
            for handle in handles:
                if handle in done:
                    continue
                answer = await service.get_task(
                    pb.GetTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name="scripted_job"))
                )
                calls["GetTask"] += 1
                if answer.resource.phase == TaskExecution.SUCCEEDED:
                    done.add(handle)
        calls["unfinished"] = len(handles) - len(done)

    mark = meter.mark()
    asyncio.run(run())
    usage = meter.since(mark)
    units = measured_units(usage)
    by_api = Counter(call.api for call in usage.calls)
    task_hours = args.tasks * args.hours
    invocations = calls["GetTask"] + calls["CreateTask"] + calls["events function invocations"]
    requests, duration = lambda_dollars(invocations, LAMBDA_MS, LAMBDA_MB)
    apigw = (calls["GetTask"] + calls["CreateTask"]) * PRICES["apigw_http_request"]
    sqs = calls["events delivered"] * 3 * PRICES["sqs_request"]  # send, receive, delete: one request each
    return {
        "label": label,
        "reads": type(connector).reads / args.tasks,
        "bound": 2 + args.hours * 60 / safety_minutes if safety_minutes else float("inf"),
        "ddb": {api: n / args.tasks for api, n in sorted(by_api.items())},
        "rru": units.read / args.tasks,
        "wru": units.write / args.tasks,
        "gettask": calls["GetTask"] / args.tasks,
        "invocations": invocations / args.tasks,
        "events": calls["events delivered"] / args.tasks,
        "unfinished": calls["unfinished"],
        "dollars": (units.dollars + requests + duration + apigw + sqs) / task_hours,
        "ddb_dollars": units.dollars / task_hours,
    }


def event_of(job_id: str, phase: int, at: float) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "source": "bench.jobs",
        "detail-type": "Job State Change",
        "time": datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"jobId": job_id, "phase": phase},
    }


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.tasks} tasks of {args.hours:g} h (virtual time), {args.executors} executor(s) resyncing every "
        f"{RESYNC_SECONDS:g} s, StatusReadIntervalSeconds 5; with events: {args.lost:.0%} lost, "
        f"{args.duplicated:.0%} delivered twice\n"
    )
    print(
        "| configuration | remote status reads per task (bound) | DynamoDB calls per task | RRU / WRU per task "
        "| GetTask per task | Lambda invocations per task | events per task | $ per task-hour (DynamoDB) |"
    )
    print("|" + "---|" * 8)
    for r in rows:
        ddb = ", ".join(f"{api} {n:.1f}" for api, n in r["ddb"].items())
        print(
            f"| {r['label']} | {r['reads']:.1f} ({r['bound']:g}) | {ddb} | {r['rru']:.1f} / {r['wru']:.1f} "
            f"| {r['gettask']:.0f} | {r['invocations']:.0f} | {r['events']:.1f} "
            f"| {r['dollars'] * 1e6:.1f} µ$ ({r['ddb_dollars'] * 1e6:.1f} µ$) |"
        )
    if any(r["unfinished"] for r in rows):
        print("unfinished tasks: " + ", ".join(f"{r['label']}: {r['unfinished']}" for r in rows))
    print(
        "\nµ$: millionths of a dollar, AWS list prices (benchmarks/pricing.py): DynamoDB, API Gateway, Lambda "
        f"({LAMBDA_MS} ms at {LAMBDA_MB} MB each), SQS for events (EventBridge's AWS service events are free)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--executors", type=int, default=2, help="pollers of every task (2: a rollout)")
    parser.add_argument("--safety-minutes", type=float, default=5.0, help="StatusSafetyReadMinutes")
    parser.add_argument("--lost", type=float, default=0.01)
    parser.add_argument("--duplicated", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    with local_aws() as server:
        rows = [
            simulate(server.endpoint_url, args, 0.0, "polling (today)"),
            simulate(
                server.endpoint_url, args, args.safety_minutes, f"events (safety read {args.safety_minutes:g} min)"
            ),
        ]
    report(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
