"""What polling costs: DynamoDB per poll, per task-hour and per million polls, before and after,
beside what API Gateway and Lambda charge for the same calls.

Starts moto's server on loopback (``connectors.dev.local_dynamodb``) and drives the real Lambda
handlers in-process, as ``warm.py`` does, counting every DynamoDB call of the handlers' client
and its capacity units (``warm.DynamoMeter``: computed from the items as DynamoDB charges them,
since moto's ConsumedCapacity answers are constants). Measured, one call each, on echo tasks:

- CreateTask of a new task;
- GetTask whose phase moves (QUEUED -> RUNNING), GetTask with nothing changed, GetTask with
  nothing changed but the heartbeat due (the store's clock a quarter of ABANDONED_AFTER_MINUTES
  ahead), GetTask whose phase ends the task (RUNNING -> SUCCEEDED), GetTask of an ended task;
- DeleteTask of a running task;
- and ``--calls`` warm GetTask calls with nothing changed, whose p50 is taken as the Lambda
  duration of a poll (in-process against moto on loopback: it leaves out Lambda's own overhead
  and the network to DynamoDB; ``--lambda-ms`` sets another).

Then, from AWS list prices (``PRICES``): the cost of one poll, a task-hour (the executor polls a
running task every ``--poll-seconds``, 30 s: 120 polls an hour; a heartbeat is due every
ABANDONED_AFTER_MINUTES / 4, 15 min: 4 an hour) and a million polls, for

- before: the design this replaced, where every poll was a strongly consistent read and a
  write of the record whose ``polled_at`` was the sort key of an index projecting ALL: the table
  write and the index's delete and put, each the size of the whole item (the measured item);
- after: the calls measured here;

beside API Gateway (HTTP API) and Lambda (arm64, ``--memory-mb``) for the same polls.
``--item-kb`` adds the same figures for larger items (the item's own attributes grown to that
size): how each design scales with what a connector keeps in its metadata.

    .venv/bin/python benchmarks/cost.py [--calls 200] [--item-kb 4 16 64] [--lambda-ms 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import percentile
from warm import (
    READ_UNIT_BYTES,
    WRITE_UNIT_BYTES,
    Bench,
    DdbCall,
    Usage,
    clock_ahead,
    print_table,
    print_units_note,
    read_units,
    with_local_table,
    write_units,
)

# AWS list prices, US East (N. Virginia), in force since 1 November 2024 (DynamoDB's on-demand
# price cut, which halved them from $1.25 and $0.25 per million), as the pricing pages list them;
# not fetched at run time, so check these pages before quoting the figures:
#   DynamoDB on-demand  https://aws.amazon.com/dynamodb/pricing/on-demand/
#   API Gateway         https://aws.amazon.com/api-gateway/pricing/  (HTTP APIs, first 300 million a month)
#   Lambda              https://aws.amazon.com/lambda/pricing/        (Arm, first 6 billion GB-seconds a month)
# Free tiers are left out. A write to a global secondary index is billed as a table write.
PRICES = {
    "ddb_write_request_unit": 0.625 / 1e6,  # $ per WRU: a write of up to 1 KB, to the table or an index
    "ddb_read_request_unit": 0.125 / 1e6,  # $ per RRU: a strongly consistent read of up to 4 KB
    "apigw_http_request": 1.00 / 1e6,  # $ per HTTP API request (each 512 KB of it)
    "lambda_request": 0.20 / 1e6,  # $ per invocation
    "lambda_arm_gb_second": 0.0000133334,  # $ per GB-second, arm64, billed per 1 ms
}


@dataclass(frozen=True)
class Units:
    """Request units of some DynamoDB calls."""

    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(self.read + other.read, self.write + other.write)

    def __mul__(self, factor: float) -> Units:
        return Units(self.read * factor, self.write * factor)

    __rmul__ = __mul__

    @property
    def dollars(self) -> float:
        return self.read * PRICES["ddb_read_request_unit"] + self.write * PRICES["ddb_write_request_unit"]


def measured_units(
    usage: Usage, item_bytes: int | None = None, whole_item_indexes: frozenset[str] = frozenset()
) -> Units:
    """The units of the measured calls; with ``item_bytes``, as if the table item were that size
    (index entries keep their measured size, but for indexes that project the whole item)."""
    total = Units()
    for call in usage.calls:
        total += call_units(call, item_bytes, whole_item_indexes)
    return total


def call_units(call: DdbCall, item_bytes: int | None, whole_item_indexes: frozenset[str]) -> Units:
    if item_bytes is None:
        return Units(read=call.read_units, write=call.write_units)
    if call.api == "GetItem":
        return Units(read=read_units(item_bytes, call.consistent) if call.error is None else 0.0)
    if not call.is_write or call.table_write_units == 0:
        return Units(read=call.read_units)
    index = sum(
        write_units(item_bytes if name in whole_item_indexes else entry_bytes)
        for name, _, entry_bytes in call.index_writes
    )
    return Units(write=write_units(item_bytes) + index)


def before_poll(item_bytes: int) -> Units:
    """The replaced design's poll: a strongly consistent read, then the table write and the
    ALL-projection index's delete and put (polled_at, its sort key, changed), each the whole item."""
    return Units(read=read_units(item_bytes, True), write=3 * write_units(item_bytes))


def lambda_dollars(calls: float, milliseconds: float, memory_mb: int) -> tuple[float, float]:
    """(requests, duration) for ``calls`` invocations of ``milliseconds`` each (billed per 1 ms)."""
    gb_seconds = math.ceil(milliseconds) / 1000 * memory_mb / 1024
    return calls * PRICES["lambda_request"], calls * gb_seconds * PRICES["lambda_arm_gb_second"]


def money(dollars: float) -> str:
    """Cents from $1 up, else three significant digits, never in exponent form: $0.000002, $0.188."""
    if dollars == 0:
        return "$0"
    if dollars >= 1:
        return f"${dollars:,.2f}"
    return "$" + format(Decimal(f"{dollars:.3g}"), "f")


def count(units: float) -> str:
    return f"{units:,.0f}" if units >= 1000 else f"{units:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls", type=int, default=200, help="timed warm GetTask calls (their p50 is the Lambda duration)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed GetTask calls first")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="the executor's resync period")
    parser.add_argument("--memory-mb", type=int, default=512, help="Lambda memory (template.yaml's MemorySize)")
    parser.add_argument(
        "--lambda-ms", type=float, default=None, help="Lambda duration of a poll (default: measured p50)"
    )
    parser.add_argument("--item-kb", type=float, nargs="*", default=[], help="also show these item sizes")
    args = parser.parse_args(argv)

    return with_local_table("cost-benchmark", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from flyteidl2.core.execution_pb2 import TaskExecution

    bench = Bench()
    meter, store = bench.meter, bench.service.store
    heartbeat_seconds = bench.heartbeat_seconds
    print(
        f"DynamoDB cost of polling, measured through the Lambda handlers (in-process, moto DynamoDB on loopback, "
        f"Python {sys.version.split()[0]})"
    )

    measured: dict[str, Usage] = {}
    phases: dict[str, int] = {}

    def measure(name: str, action: Callable[[], object]) -> object:
        with meter.measure() as usage:
            result = action()
        measured[name] = usage
        if isinstance(result, int):
            phases[name] = result
        return result

    task = measure("CreateTask", bench.create)
    measure("GetTask: phase moves (QUEUED -> RUNNING)", lambda: bench.get(task))
    measure("GetTask: nothing changed", lambda: bench.get(task))
    with clock_ahead(store, heartbeat_seconds + 1):
        measure(f"GetTask: nothing changed, heartbeat due (+{heartbeat_seconds / 60:g} min)", lambda: bench.get(task))

    # Lambda duration of a poll: warm GetTask calls with nothing changed, timed.
    event = bench.get_event(task)
    handler = bench.handlers["get_task"]
    samples = []
    with meter.measure() as timed:
        for index in range(args.warmup + args.calls):
            begin = time.perf_counter()
            bench.call(handler, event)
            if index >= args.warmup:
                samples.append(time.perf_counter() - begin)
    p50_ms = percentile(samples, 50) * 1000

    short = bench.create(custom={"delay_seconds": 0.3})
    started = time.monotonic()
    bench.get(short)  # RUNNING
    time.sleep(max(0.0, 0.35 - (time.monotonic() - started)))
    measure("GetTask: phase ends the task (RUNNING -> SUCCEEDED)", lambda: bench.get(short))
    with clock_ahead(store, heartbeat_seconds + 1):
        measure(f"GetTask: ended task, heartbeat due (+{heartbeat_seconds / 60:g} min)", lambda: bench.get(short))
    measure("DeleteTask", lambda: bench.delete(task))

    unchanged = measured["GetTask: nothing changed"]
    heartbeat = next(
        usage for name, usage in measured.items() if name.startswith("GetTask: nothing changed, heartbeat")
    )
    item = unchanged.calls[0].item_bytes if unchanged.calls else 0  # the running task's record, as read

    # -- what was measured ---------------------------------------------------------------------
    print()
    print("measured, one call each (RRU/WRU: read/write request units; WRU as table+index):")
    rows = []
    for name, usage in measured.items():
        rru, wru = usage.read_units, usage.write_units
        detail = f" ({usage.table_write_units}+{usage.index_write_units})" if wru else ""
        phase = f" [{TaskExecution.Phase.Name(phases[name])}]" if name in phases else ""
        sizes = ", ".join(f"{call.api} {call.item_bytes}" for call in usage.calls)
        rows.append((name + phase, usage.describe(), f"{rru:g}", f"{wru:g}{detail}", usage.index_detail(), sizes))
    print_table(("operation [phase answered]", "DynamoDB calls", "RRU", "WRU", "index writes", "item bytes"), rows)
    wrong_timed = [call.api for call in timed.calls if call.api != "GetItem"]
    print(
        f"timed polls: {len(timed.calls)} DynamoDB calls for {args.warmup + args.calls} GetTask, "
        f"{len(wrong_timed)} of them writes" + (f" ({', '.join(sorted(set(wrong_timed)))})" if wrong_timed else "")
    )
    print_units_note(meter)
    failed = check_targets(measured, len(timed.calls) - (args.warmup + args.calls) + len(wrong_timed))

    # -- the cost ------------------------------------------------------------------------------
    polls_per_hour = 3600 / args.poll_seconds
    heartbeats_per_hour = min(polls_per_hour, 3600 / heartbeat_seconds)
    lambda_ms = p50_ms if args.lambda_ms is None else args.lambda_ms
    print()
    print(
        f"item: {item} bytes (the running task's record as GetTask reads it) = {math.ceil(item / READ_UNIT_BYTES)} "
        f"RRU to read (4 KB each), {math.ceil(item / WRITE_UNIT_BYTES)} WRU to write (1 KB each)"
    )
    print(
        f"a task-hour: {polls_per_hour:g} polls (one each {args.poll_seconds:g} s), {heartbeats_per_hour:g} of them "
        f"with the heartbeat due (one each {heartbeat_seconds / 60:g} min = ABANDONED_AFTER_MINUTES / 4)"
    )
    source = "measured: p50 of" if args.lambda_ms is None else "--lambda-ms; measured p50 of"
    print(
        f"Lambda: {lambda_ms:.2f} ms a poll, billed {math.ceil(lambda_ms)} ms at {args.memory_mb} MB arm64 "
        f"({source} {args.calls} warm in-process GetTask calls: {p50_ms:.2f} ms, against moto on loopback)"
    )
    print(
        "prices: AWS list prices, us-east-1 on-demand: DynamoDB $0.625 per million WRU, $0.125 per million RRU; "
        "API Gateway HTTP API $1.00 per million requests; Lambda arm64 $0.20 per million requests + "
        "$0.0000133334 per GB-second"
    )

    once = measured_units(Usage(measured["CreateTask"].calls + measured["DeleteTask"].calls))
    print(
        f"a task's CreateTask and DeleteTask, once each: {once.read:g} RRU + {once.write:g} WRU = "
        f"{money(once.dollars)} in DynamoDB, {money(2 * PRICES['apigw_http_request'])} in API Gateway"
    )
    print(
        "not in the task-hour: a phase change writes the item (moving the heartbeat only when one is due); "
        "a task has a few in its life"
    )
    whole_item_indexes = frozenset(index.name for index in meter.indexes if index.projection == "ALL")
    sizes = [None] + [round(kb * 1024) for kb in args.item_kb]
    for size in sizes:
        print()
        label = f"measured item, {item} bytes" if size is None else f"item grown to {size / 1024:g} KB"
        print_cost(
            label,
            unchanged,
            heartbeat,
            item if size is None else size,
            size,
            whole_item_indexes,
            polls_per_hour,
            heartbeats_per_hour,
            lambda_ms,
            args.memory_mb,
        )
    if failed:
        print()
        print("NOT MET: " + "; ".join(failed))
        return 1
    return 0


def print_cost(
    label: str,
    unchanged: Usage,
    heartbeat: Usage,
    item: int,
    override: int | None,
    whole_item_indexes: frozenset[str],
    polls_per_hour: float,
    heartbeats_per_hour: float,
    lambda_ms: float,
    memory_mb: int,
) -> None:
    before = before_poll(item)
    after_unchanged = measured_units(unchanged, override, whole_item_indexes)
    after_heartbeat = measured_units(heartbeat, override, whole_item_indexes)
    hour_after = after_unchanged * (polls_per_hour - heartbeats_per_hour) + after_heartbeat * heartbeats_per_hour
    average_after = hour_after * (1 / polls_per_hour)
    rows = []
    for name, polls, ddb_before, ddb_after in (
        ("a poll, nothing changed", 1, before, after_unchanged),
        ("a poll, heartbeat due", 1, before, after_heartbeat),
        (f"a task-hour ({polls_per_hour:g} polls)", polls_per_hour, before * polls_per_hour, hour_after),
        ("a million polls", 1e6, before * 1e6, average_after * 1e6),
    ):
        apigw = polls * PRICES["apigw_http_request"]
        requests, duration = lambda_dollars(polls, lambda_ms, memory_mb)
        serving = apigw + requests + duration
        rows.append(
            (
                name,
                f"{count(ddb_before.read)} + {count(ddb_before.write)}",
                money(ddb_before.dollars),
                f"{count(ddb_after.read)} + {count(ddb_after.write)}",
                money(ddb_after.dollars),
                f"{ddb_before.dollars / ddb_after.dollars:.1f}x" if ddb_after.dollars else "-",
                money(apigw),
                money(requests + duration),
                money(serving + ddb_before.dollars),
                money(serving + ddb_after.dollars),
            )
        )
    print(f"{label}:")
    print_table(
        (
            "",
            "before RRU + WRU",
            "DynamoDB before",
            "after RRU + WRU",
            "DynamoDB after",
            "before/after",
            "API Gateway",
            "Lambda",
            "all before",
            "all after",
        ),
        rows,
    )


def check_targets(measured: dict[str, Usage], extra_timed_calls: int) -> list[str]:
    """The issue's targets; what is not met, as text."""
    failed = []

    def count(usage: Usage, apis: tuple[str, ...]) -> int:
        return sum(usage.by_api[api] for api in apis)

    reads = ("GetItem", "Query", "Scan")
    writes = ("PutItem", "UpdateItem", "DeleteItem")
    for name, usage in measured.items():
        if name == "CreateTask" and usage.writes > 2:
            failed.append(f"CreateTask made {usage.writes} writes (at most 2 wanted)")
        if name == "DeleteTask" and (count(usage, reads), count(usage, writes)) != (1, 1):
            failed.append(f"DeleteTask made {usage.describe()} (one read and one write wanted)")
        if name.startswith("GetTask") and count(usage, reads) != 1:
            failed.append(f"{name}: {usage.describe()} (one read wanted)")
        if name == "GetTask: nothing changed" and usage.writes:
            failed.append(f"{name}: {usage.writes} writes (none wanted)")
        if name.startswith("GetTask: nothing changed, heartbeat") and usage.writes > 1:
            failed.append(f"{name}: {usage.writes} writes (at most one wanted)")
        if name.startswith("GetTask: ended task") and usage.writes:
            failed.append(f"{name}: {usage.writes} writes (none wanted on a terminal task)")
    if extra_timed_calls:
        failed.append(f"the timed unchanged polls made {extra_timed_calls} calls besides one GetItem each")
    return failed


if __name__ == "__main__":
    sys.exit(main())
