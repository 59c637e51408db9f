"""Warm latency: p50/p99 of each Lambda handler, in-process, against a local DynamoDB.

Starts moto's server on loopback (``connectors.dev.local_dynamodb``), points the handlers at it,
imports them (a cold start, not measured), and calls each ``handler(event, context)`` with API
Gateway HTTP API events built as ``connectors.dev.events`` builds them (binary proto bodies,
base64): a warm-up, then ``--calls`` timed calls per operation. Each call must answer 200.

- CreateTask: a new echo task each call (its own task execution id): claim, connector, finish.
- CreateTask (repeat): the same task execution id again: answered from the record.
- GetTask: a running echo task: connector.get and a conditional poll write.
- DeleteTask: a distinct running task each call: connector.delete and the ABORTED write.
- GetTaskMetrics, GetTaskLogs (a Connect server stream), ListConnectors.

The baseline, measured in the same run, is a bare FastAPI+Mangum app answering a trivial (async)
route, and the same app doing one DynamoDB GetItem on the same local server from a sync route
(FastAPI runs it in a worker thread, as the service runs its store calls): what any
FastAPI-on-Lambda function that reads DynamoDB pays. The "ddb calls" column counts the DynamoDB API calls per
operation (botocore events on the handlers' client).

    .venv/bin/python benchmarks/warm.py [--calls 300] [--warmup 30]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore", DeprecationWarning)  # Mangum asks for an event loop on 3.12

from connectors.connect_envelope import encode  # noqa: E402
from connectors.dev.local_dynamodb import LOCAL_ENV, LocalDynamoDB  # noqa: E402

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"


class Context:
    function_name = "warm-benchmark"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per operation first")
    args = parser.parse_args(argv)

    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    with LocalDynamoDB() as server:
        os.environ.update({
            "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint_url,
            "TASKS_TABLE": f"warm-benchmark-{uuid.uuid4().hex[:6]}",
            "LOG_LEVEL": "WARNING",
            "CONNECTOR_MODULES": "",
        })
        return run(args)


def run(args: argparse.Namespace) -> int:
    import boto3
    from fastapi import FastAPI
    from flyteidl2.connector import connector_pb2 as pb
    from mangum import Mangum

    from connectors.dev.events import http_api_event
    from connectors.runtime import default_service
    from tests.flyte_requests import ECHO, echo_request

    service = default_service()
    service.store.create_table()
    handlers = {}
    for module in ("create_task", "get_task", "delete_task", "get_task_metrics", "get_task_logs", "connector_metadata"):
        handlers[module] = __import__(f"handlers.{module}", fromlist=["handler"]).handler

    ddb_calls: Counter[str] = Counter()
    ddb_seconds = [0.0]

    def before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
        ddb_calls.update([model.name])
        context["benchmark_started"] = time.perf_counter()

    def after_call(context: dict[str, Any], **_: Any) -> None:
        ddb_seconds[0] += time.perf_counter() - context.pop("benchmark_started", time.perf_counter())

    events = service.store._client.meta.events
    events.register("before-call.dynamodb.*", before_call)
    events.register("after-call.dynamodb.*", after_call)
    events.register("after-call-error.dynamodb.*", after_call)

    def call(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
        response = handler(event, Context())
        if response["statusCode"] != 200:
            body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response.get("body")
            raise RuntimeError(f"{event['rawPath']} answered {response['statusCode']}: {body!r}")
        return response

    def create(custom: dict[str, Any] | None = None, run: str | None = None) -> bytes:
        request = echo_request(custom=custom or {"delay_seconds": 3600}, run=run)
        response = call(handlers["create_task"], http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString()))
        return pb.CreateTaskResponse.FromString(base64.b64decode(response["body"])).resource_meta

    total = args.warmup + args.calls
    print(f"warm latency: {args.calls} timed calls per operation after {args.warmup} warm-up calls, "
          f"in-process handlers, moto DynamoDB on loopback, Python {sys.version.split()[0]}")
    started = time.perf_counter()
    running = create()
    repeat_run = f"repeat-{uuid.uuid4().hex[:8]}"
    create(run=repeat_run)
    to_delete = [create() for _ in range(total)]
    print(f"(setup: {total + 2} tasks created in {time.perf_counter() - started:.1f} s)")

    def connect(path: str, message: Any) -> dict[str, Any]:
        return http_api_event("POST", path, message.SerializeToString())

    deletes = iter(to_delete)
    operations: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[], dict[str, Any]]]] = {
        "CreateTask": (handlers["create_task"],
                       lambda: connect(f"{ASYNC}/CreateTask", echo_request(custom={"delay_seconds": 3600}))),
        "CreateTask (repeat)": (handlers["create_task"],
                                lambda: connect(f"{ASYNC}/CreateTask", echo_request(run=repeat_run, custom={"delay_seconds": 3600}))),
        "GetTask": (handlers["get_task"],
                    lambda: connect(f"{ASYNC}/GetTask", pb.GetTaskRequest(resource_meta=running, task_category=ECHO))),
        "DeleteTask": (handlers["delete_task"],
                       lambda: connect(f"{ASYNC}/DeleteTask", pb.DeleteTaskRequest(resource_meta=next(deletes), task_category=ECHO))),
        "GetTaskMetrics": (handlers["get_task_metrics"],
                           lambda: connect(f"{ASYNC}/GetTaskMetrics", pb.GetTaskMetricsRequest(resource_meta=running, task_category=ECHO))),
        "GetTaskLogs": (handlers["get_task_logs"],
                        lambda: http_api_event("POST", f"{ASYNC}/GetTaskLogs",
                                               encode(pb.GetTaskLogsRequest(resource_meta=running, task_category=ECHO).SerializeToString()),
                                               content_type="application/connect+proto")),
        "ListConnectors": (handlers["connector_metadata"],
                           lambda: connect(f"{METADATA}/ListConnectors", pb.ListConnectorsRequest())),
    }

    # The baseline: a bare FastAPI+Mangum app on the same DynamoDB, its own client built the same way.
    bare = FastAPI()
    bare_client = boto3.client("dynamodb")  # AWS_ENDPOINT_URL_DYNAMODB: the same local server
    table = service.store.table_name
    key = {"action_id": {"S": "0" * 32}, "attempt": {"N": "0"}}

    @bare.get("/trivial")
    async def trivial() -> dict[str, str]:
        return {"status": "ok"}

    @bare.get("/getitem")
    def getitem() -> dict[str, bool]:  # sync: FastAPI runs it in a thread, as the store's calls run
        return {"found": "Item" in bare_client.get_item(TableName=table, Key=key)}

    bare_handler = Mangum(bare, lifespan="off")
    baselines = {
        "baseline: trivial route": (bare_handler, lambda: http_api_event("GET", "/trivial")),
        "baseline: route + GetItem": (bare_handler, lambda: http_api_event("GET", "/getitem")),
    }

    results: dict[str, tuple[list[float], float]] = {}
    for name, (handler, make_event) in {**baselines, **operations}.items():
        events = [make_event() for _ in range(total)]  # built before timing
        samples = []
        for index, event in enumerate(events):
            if index == args.warmup:
                ddb_calls.clear()
                ddb_seconds[0] = 0.0
            begin = time.perf_counter()
            call(handler, event)
            elapsed = time.perf_counter() - begin
            if index >= args.warmup:
                samples.append(elapsed)
        results[name] = (samples, sum(ddb_calls.values()) / args.calls, ddb_seconds[0] / args.calls)

    base = statistics.median(results["baseline: route + GetItem"][0])
    width = max(map(len, results))
    print(f"{'operation':<{width}}  {'p50 ms':>7}  {'p99 ms':>7}  {'mean ms':>7}  {'ddb calls':>9}  {'in ddb ms':>9}  "
          f"{'p50 / baseline+GetItem':>22}")
    for name, (samples, calls, seconds) in results.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        if name.startswith("baseline"):  # its own client, not instrumented
            ddb = f"{(1 if 'GetItem' in name else 0):9d}  {'':>9}"
        else:
            ddb = f"{calls:9.1f}  {seconds * 1000:9.2f}"
        print(f"{name:<{width}}  {p50 * 1000:7.2f}  {p99 * 1000:7.2f}  {statistics.fmean(samples) * 1000:7.2f}  "
              f"{ddb}  {p50 / base:22.2f}")
    print("in ddb ms: mean time per call inside the DynamoDB API calls (botocore before/after-call), "
          "moto on loopback; AWS answers single-item calls in a few ms from Lambda")
    return 0


if __name__ == "__main__":
    sys.exit(main())
