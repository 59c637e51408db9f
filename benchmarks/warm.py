"""Warm latency and DynamoDB usage: p50/p99, calls and capacity units of each Lambda handler.

Starts moto's server on loopback (``connectors.dev.local_dynamodb``), points the handlers at it,
imports them (a cold start, not measured), and calls each ``handler(event, context)`` with API
Gateway HTTP API events built as ``connectors.dev.events`` builds them (binary proto bodies,
base64): a warm-up, then ``--calls`` timed calls per operation. Each call must answer 200.

- CreateTask: a new echo task each call (its own task execution id): claim, connector, finish.
- CreateTask (repeat): the same task execution id again: answered from the record.
- GetTask: a running echo task, polled back to back: each answers the record within
  StatusReadIntervalSeconds of the last read (no connector.get, no write), as a second poller's
  polls do; the executor's, 30 s apart, read the job and take the turn (benchmarks/cost.py).
- DeleteTask: a distinct running task each call: the mark, connector.delete and the ABORTED write.
- GetTaskMetrics, GetTaskLogs (a Connect server stream), ListConnectors.

Per operation it prints the DynamoDB calls by API name and the read and write request units
they consume. Every data call asks DynamoDB for ``ReturnConsumedCapacity=INDEXES`` (a botocore
``before-parameter-build`` hook on the handlers' client) and keeps what it answers; moto's
server answers constants whatever the item and the read's consistency (GetItem and UpdateItem
0.5, PutItem and Query 1.0, nothing for a failed conditional write), so the units printed are
computed from the items as DynamoDB charges them (benchmarks/dynamodb_meter.py): a write 1 WRU per KB
of the larger of the item before and after, plus each index write (an index entry put, deleted,
or both when its key changes; its size is what the index projects); a read 1 RRU per 4 KB
(strongly consistent; half eventually consistent); a failed conditional write the size of the
item it found.

Then "20 unchanged polls": one running task polled 20 times in a row (its heartbeat recent; then
its heartbeat due, the store's clock a quarter of ABANDONED_AFTER_MINUTES ahead; then an ended
task): the wanted figure is 20 GetItem and at most one write (none on the ended task). Exit
status 1 when it is not met.

The baseline, measured in the same run, is a bare FastAPI+Mangum app answering a trivial (async)
route, and the same app doing one DynamoDB GetItem on the same local server from a sync route
(FastAPI runs it in a worker thread, as the service runs its store calls): what any
FastAPI-on-Lambda function that reads DynamoDB pays.

    .venv/bin/python benchmarks/warm.py [--calls 300] [--warmup 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dynamodb_meter import Usage, print_units_note, units_text  # noqa: E402
from handler_bench import ASYNC, METADATA, Bench, clock_ahead, with_local_table  # noqa: E402
from harness import percentile  # noqa: E402
from text_table import print_table  # noqa: E402

from connectors.connect_envelope import encode  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per operation first")
    args = parser.parse_args(argv)

    return with_local_table("warm-benchmark", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    import boto3
    from fastapi import FastAPI
    from mangum import Mangum

    from connectors.dev.events import http_api_event
    from tests.flyte_requests import ECHO

    bench = Bench()
    pb, handlers, meter, service = bench.pb, bench.handlers, bench.meter, bench.service
    call, create = bench.call, bench.create

    total = args.warmup + args.calls
    print(
        f"warm latency: {args.calls} timed calls per operation after {args.warmup} warm-up calls, "
        f"in-process handlers, moto DynamoDB on loopback, Python {sys.version.split()[0]}"
    )
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
        "CreateTask": (handlers["create_task"], lambda: bench.create_event()),
        "CreateTask (repeat)": (handlers["create_task"], lambda: bench.create_event(run=repeat_run)),
        "GetTask (unchanged)": (handlers["get_task"], lambda: bench.get_event(running)),
        "DeleteTask": (handlers["delete_task"], lambda: bench.delete_event(next(deletes))),
        "GetTaskMetrics": (
            handlers["get_task_metrics"],
            lambda: connect(
                f"{ASYNC}/GetTaskMetrics", pb.GetTaskMetricsRequest(resource_meta=running, task_category=ECHO)
            ),
        ),
        "GetTaskLogs": (
            handlers["get_task_logs"],
            lambda: http_api_event(
                "POST",
                f"{ASYNC}/GetTaskLogs",
                encode(pb.GetTaskLogsRequest(resource_meta=running, task_category=ECHO).SerializeToString()),
                content_type="application/connect+proto",
            ),
        ),
        "ListConnectors": (
            handlers["connector_metadata"],
            lambda: connect(f"{METADATA}/ListConnectors", pb.ListConnectorsRequest()),
        ),
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

    results: dict[str, tuple[list[float], Usage]] = {}
    for name, (handler, make_event) in {**baselines, **operations}.items():
        events = [make_event() for _ in range(total)]  # built before timing
        samples = []
        mark = meter.mark()
        for index, event in enumerate(events):
            if index == args.warmup:
                mark = meter.mark()
            begin = time.perf_counter()
            call(handler, event)
            elapsed = time.perf_counter() - begin
            if index >= args.warmup:
                samples.append(elapsed)
        results[name] = (samples, meter.since(mark))

    base = statistics.median(results["baseline: route + GetItem"][0])
    rows = []
    for name, (samples, usage) in results.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        if name.startswith("baseline"):  # its own client, not metered
            calls, rru, wru, in_ddb = ("GetItem 1", "1", "0", "") if "GetItem" in name else ("none", "", "", "")
        else:
            calls = usage.describe(args.calls)
            rru, wru = units_text(usage, args.calls)
            in_ddb = f"{usage.seconds / args.calls * 1000:.2f}"
        rows.append(
            (
                name,
                f"{p50 * 1000:.2f}",
                f"{p99 * 1000:.2f}",
                f"{statistics.fmean(samples) * 1000:.2f}",
                calls,
                rru,
                wru,
                in_ddb,
                f"{p50 / base:.2f}",
            )
        )
    print_table(
        (
            "operation",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "DynamoDB calls per op",
            "RRU",
            "WRU (table+index)",
            "in ddb ms",
            "p50 / baseline+GetItem",
        ),
        rows,
    )
    print(
        "in ddb ms: mean time per operation inside its DynamoDB calls (botocore before/after-call), moto on "
        "loopback; AWS answers single-item calls in a few ms from Lambda"
    )
    print_units_note(meter)

    return unchanged_polls(bench)


def unchanged_polls(bench: Bench, count: int = 20) -> int:
    """One running task polled ``count`` times: ``count`` GetItem, at most one write."""
    task = bench.create()
    bench.get(task)  # QUEUED -> RUNNING: the phase change is written here
    scenarios: list[tuple[str, Usage, int]] = []
    scenarios.append(("heartbeat recent", bench.polls(task, count), 0))
    minutes = bench.heartbeat_seconds / 60
    with clock_ahead(bench.service.store, bench.heartbeat_seconds + 1):
        scenarios.append((f"heartbeat due (clock {minutes:g} min ahead)", bench.polls(task, count), 1))
    ended = bench.create(custom={"delay_seconds": 0})
    bench.get(ended)  # SUCCEEDED: the record ends here
    with clock_ahead(bench.service.store, bench.heartbeat_seconds + 1):
        scenarios.append((f"ended task, clock {minutes:g} min ahead", bench.polls(ended, count), 0))

    print()
    print(
        f"{count} unchanged polls in a row (GetTask of one task whose phase and message do not change; "
        f"a heartbeat is due every {minutes:g} min = ABANDONED_AFTER_MINUTES / 4):"
    )
    rows, failed = [], []
    for name, usage, allowed in scenarios:
        reads = usage.by_api["GetItem"]
        ok = reads == count and usage.writes <= allowed and len(usage.calls) == reads + usage.writes
        if not ok:
            failed.append(name)
        rru, wru = units_text(usage)
        rows.append(
            (
                name,
                usage.describe(),
                str(usage.writes),
                rru,
                wru,
                usage.index_detail(),
                f"{count} GetItem, <= {allowed} write: " + ("ok" if ok else "NOT MET"),
            )
        )
    print_table(("polls", "DynamoDB calls", "writes", "RRU", "WRU (table+index)", "index writes", "wanted"), rows)
    if failed:
        print(f"NOT MET: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
