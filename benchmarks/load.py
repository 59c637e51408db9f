"""Load: concurrent clients against the served app; throughput, latency, lost and duplicated records.

Starts moto's server on loopback as DynamoDB, serves the whole app with uvicorn on loopback (one
process, the app in a thread), registers the echo connector and a counting connector, both
counting ``connector.create`` per idempotency token (one token per task execution id), and
drives it with ``--clients`` threads, each with flyteidl2's generated sync Connect client, for
``--calls`` mixed calls:

- CreateTask (40 %): a new task execution id, or (deliberately) one created moments ago by
  another client, so that duplicates of one id race each other; 1 in 20 is the next retry
  attempt of an action (which cancels the earlier attempt's job);
- GetTask (30 %) and DeleteTask (10 %) on handles answered so far; ListConnectors (20 %).

Then it checks, reading the table directly:

- lost records: a handle CreateTask answered whose record cannot be loaded;
- duplicated records: one task execution id answered with two different handles;
- duplicated jobs: more than one ``connector.create`` for one task execution id;
- jobs without a record: a ``connector.create`` whose task execution id has no created record;
- half-written records: records left ``claimed`` or ``cancelling``.

Targets: 0 for each. Every run stops by itself: ``--max-seconds`` bounds the calls, and each
call has a client timeout. Exit status 1 when a target is missed or a call answered
``internal``/``unknown``.

    .venv/bin/python benchmarks/load.py [--calls 10000] [--clients 50] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import threading
import time
import uuid
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)

from harness import local_aws, percentile  # noqa: E402

from connectors.dev.background_server import BackgroundServer  # noqa: E402
from connectors.dev.local_dynamodb import LocalDynamoDB  # noqa: E402

MIX = (("CreateTask", 40), ("GetTask", 30), ("DeleteTask", 10), ("ListConnectors", 20))
RETRYABLE = {"unavailable", "aborted"}


# -- the connectors: echo and a counting one, both counting creates per task execution id ---------


class CreateCounter:
    def __init__(self) -> None:
        self.by_token: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.by_token[kwargs.get("idempotency_token", "none")] += 1


def counted_connectors(counter: CreateCounter) -> list[Any]:
    """The echo connector and the tests' counting one (a 20 ms remote call per create), both
    counting ``connector.create`` in ``counter``."""
    from connectors.builtin import EchoConnector
    from tests.sample_connectors import CountingConnector

    def counted(connector_class: type) -> type:
        class Counted(connector_class):
            async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
                counter.count(kwargs)
                return await super().create(task_template, output_prefix, inputs, task_execution_metadata, **kwargs)

        return Counted

    return [counted(EchoConnector)(), counted(CountingConnector)(create_seconds=0.02)]


# -- the served app ----------------------------------------------------------------------------------


# -- the workload ------------------------------------------------------------------------------------


@dataclass
class TaskId:
    number: int
    task_type: str
    attempt: int = 0

    @property
    def run(self) -> str:
        return f"load-{self.number}"

    @property
    def key(self) -> tuple[str, int]:
        return (self.run, self.attempt)


@dataclass
class Outcome:
    operation: str
    code: str
    seconds: float
    task: TaskId | None = None
    handle: bytes | None = None


@dataclass
class Workload:
    calls: int
    deadline: float
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    next_number: int = 0
    recent: list[TaskId] = field(default_factory=list)
    handles: list[tuple[bytes, str]] = field(default_factory=list)

    def next(self) -> tuple[str, Any] | None:
        with self.lock:
            if self.issued >= self.calls or time.monotonic() > self.deadline:
                return None
            self.issued += 1
            operation = self.rng.choices([op for op, _ in MIX], weights=[w for _, w in MIX])[0]
            if operation in ("GetTask", "DeleteTask") and not self.handles:
                operation = "CreateTask"
            if operation == "CreateTask":
                return operation, self._task_id()
            if operation in ("GetTask", "DeleteTask"):
                return operation, self.rng.choice(self.handles)
            return operation, None

    def _task_id(self) -> TaskId:
        roll = self.rng.random()
        if self.recent and roll < 0.35:  # a duplicate of an id created moments ago
            return self.rng.choice(self.recent[-8:])
        if self.recent and roll < 0.40:  # the next retry attempt of a recent action
            earlier = self.rng.choice(self.recent[-30:])
            task = TaskId(earlier.number, earlier.task_type, earlier.attempt + 1)
        else:
            task = TaskId(self.next_number, "counting" if self.next_number % 2 else "echo")
            self.next_number += 1
        self.recent.append(task)
        return task

    def answered(self, handle: bytes, task_type: str) -> None:
        with self.lock:
            self.handles.append((handle, task_type))


def create_request(task: TaskId) -> Any:
    from tests.flyte_requests import echo_request

    custom = {"delay_seconds": (task.number % 5) * 0.5} if task.task_type == "echo" else None
    return echo_request(task_type=task.task_type, run=task.run, action="a0", attempt=task.attempt, custom=custom)


def client_loop(url: str, workload: Workload, timeout_ms: int) -> list[Outcome]:
    from connectrpc.errors import ConnectError
    from flyteidl2.connector import connector_pb2 as pb
    from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync, ConnectorMetadataServiceClientSync

    tasks = AsyncConnectorServiceClientSync(url, timeout_ms=timeout_ms)
    metadata = ConnectorMetadataServiceClientSync(url, timeout_ms=timeout_ms)
    outcomes = []
    while (work := workload.next()) is not None:
        operation, argument = work
        handle = None
        started = time.perf_counter()
        try:
            if operation == "CreateTask":
                handle = tasks.create_task(create_request(argument)).resource_meta
            elif operation == "GetTask":
                tasks.get_task(
                    pb.GetTaskRequest(resource_meta=argument[0], task_category=pb.TaskCategory(name=argument[1]))
                )
            elif operation == "DeleteTask":
                tasks.delete_task(
                    pb.DeleteTaskRequest(resource_meta=argument[0], task_category=pb.TaskCategory(name=argument[1]))
                )
            else:
                metadata.list_connectors(pb.ListConnectorsRequest())
            code = "ok"
        except ConnectError as error:
            code = error.code.value
            if code == "unavailable":  # a duplicate told to retry, or the store under strain?
                code += " (in progress)" if "in progress" in error.message else f" ({error.message[:40]})"
        seconds = time.perf_counter() - started
        task = argument if operation == "CreateTask" else None
        if handle is not None:
            workload.answered(handle, task.task_type)
        outcomes.append(Outcome(operation, code, seconds, task, handle))
    return outcomes


# -- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=600, help="stop issuing calls after this long")
    parser.add_argument("--timeout", type=float, default=30, help="client timeout per call, seconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    logging.getLogger("connectors").setLevel(logging.CRITICAL)  # expected conflicts log warnings
    with local_aws(logging.ERROR) as server:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint_url
        return run(args, server)


def run(args: argparse.Namespace, server: LocalDynamoDB) -> int:
    import boto3
    from botocore.config import Config

    from connectors.registry import ConnectorRegistry
    from connectors.service import ConnectorService
    from connectors.settings import Settings
    from connectors.store import CANCELLING, CLAIMED, TaskHandle, TaskRecord, TaskStore, new_client
    from connectors.transport import create_app

    settings = Settings(tasks_table=f"load-{uuid.uuid4().hex[:8]}")
    store = TaskStore(settings.tasks_table, new_client(server.endpoint_url))
    store.create_table()
    counter = CreateCounter()
    service = ConnectorService(ConnectorRegistry(counted_connectors(counter)), store, settings)

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    workload = Workload(args.calls, time.monotonic() + args.max_seconds, random.Random(seed))
    print(
        f"load: {args.calls} mixed calls from {args.clients} concurrent clients (generated sync Connect client), "
        f"uvicorn + the app in one process, moto DynamoDB on loopback; seed {seed}"
    )
    with BackgroundServer(create_app(service), log_level="error", backlog=2048, timeout_keep_alive=60) as served:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(client_loop, served.url, workload, int(args.timeout * 1000)) for _ in range(args.clients)
            ]
            outcomes = [outcome for future in futures for outcome in future.result()]
        wall = time.perf_counter() - started

    # -- figures ---------------------------------------------------------------------------------
    latencies = [o.seconds for o in outcomes]
    print(
        f"\n{len(outcomes)} calls in {wall:.1f} s: {len(outcomes) / wall:.0f} calls/s; "
        f"latency p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms"
    )
    by_operation: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_operation[outcome.operation].append(outcome)
    print(f"{'operation':<15} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7}  answers")
    for operation, _ in MIX:
        items = by_operation.get(operation, [])
        seconds = [o.seconds for o in items]
        codes = Counter(o.code for o in items)
        print(
            f"{operation:<15} {len(items):6d} {percentile(seconds, 50) * 1000:7.1f} {percentile(seconds, 99) * 1000:7.1f}  "
            + ", ".join(f"{code} {count}" for code, count in codes.most_common())
        )

    # -- integrity -------------------------------------------------------------------------------
    # The checks read with patient timeouts: a full scan of moto takes longer than the service's 1.5 s.
    patient = boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint_url,
        config=Config(read_timeout=120, retries={"mode": "standard", "max_attempts": 5}),
    )
    checker = TaskStore(settings.tasks_table, patient)
    handles_by_task: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    for outcome in by_operation.get("CreateTask", []):
        if outcome.handle is not None:
            handles_by_task[outcome.task.key].add(outcome.handle)
    answered = {handle for handles in handles_by_task.values() for handle in handles}

    def loads(handle: bytes) -> bool:
        try:
            return checker.load(TaskHandle.decode(handle)).resource_meta is not None
        except Exception:
            return False

    with ThreadPoolExecutor(16) as pool:
        lost = sum(not ok for ok in pool.map(loads, answered))
    split = sum(len(handles) > 1 for handles in handles_by_task.values())
    duplicated_jobs = sum(count > 1 for count in counter.by_token.values())

    pages = patient.get_paginator("scan").paginate(TableName=settings.tasks_table, ConsistentRead=True)
    records = [TaskRecord.from_item(item) for page in pages for item in page["Items"]]
    created_tokens = {r.key.idempotency_token() for r in records if r.resource_meta is not None}
    jobs_without_record = sum(token not in created_tokens for token in counter.by_token)
    # A record is whole once it holds its job, or ended without one (a CreateTask for an attempt
    # older than one that exists is refused before it starts anything).
    half_written = sum(r.state in (CLAIMED, CANCELLING) for r in records)
    creates = by_operation.get("CreateTask", [])
    duplicates_sent = len(creates) - len({o.task.key for o in creates})
    forbidden = sum(o.code in ("internal", "unknown") for o in outcomes)

    print(
        f"\ntask execution ids: {len({o.task.key for o in creates})} "
        f"(CreateTask calls {len(creates)}, of which {duplicates_sent} repeated an id), "
        f"handles answered {len(answered)}, records {len(records)}, connector.create calls {sum(counter.by_token.values())}"
    )
    targets = {
        "lost records (answered handle, no record)": lost,
        "duplicated records (one id, two handles)": split,
        "duplicated jobs (connector.create > 1 per id)": duplicated_jobs,
        "jobs without a created record": jobs_without_record,
        "half-written records (left claimed or cancelling)": half_written,
        "internal/unknown answers": forbidden,
    }
    for name, value in targets.items():
        print(f"{name:<48} {value:6d}   target 0")
    return 1 if any(targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
