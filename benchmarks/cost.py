"""What polling costs: DynamoDB per poll, per task-hour and per million polls, with StatusEvents
Disabled and Enabled, beside the replaced design and what API Gateway and Lambda charge.

Starts moto's server on loopback (``connectors.dev.local_dynamodb``) and drives the real Lambda
handlers in-process (CreateTask, GetTask, DeleteTask and the StatusEventsFunction's), as
``warm.py`` does, counting every DynamoDB call of the handlers' client and its capacity units
(``dynamodb_meter.DynamoMeter``: computed from the items as DynamoDB charges them, since moto's
ConsumedCapacity answers are constants). The tasks are ``evented_echo`` tasks
(benchmarks/evented_echo.py: the echo connector with state-change events declared, as the AWS
connectors declare theirs). The store's clock is virtual (benchmarks/polls.py): the executor polls
a task every ``--poll-seconds`` (30 s, flyteplugins' resync), past StatusReadIntervalSeconds (5 s).

Two deployments, differing only in what template.yaml sets (the functions' environment):

- StatusEvents Disabled (STATUS_SAFETY_READ_MINUTES 0): every 30 s poll reads the job, so it
  first takes the turn, one conditional UpdateItem (issue 17: however many pollers ask, the job is
  read at most once per StatusReadIntervalSeconds); a heartbeat rides on a turn.
- StatusEvents Enabled (STATUS_SAFETY_READ_MINUTES ``--safety-minutes``, 5): the job's
  state-change events, delivered through the StatusEventsFunction's handler, keep the record
  current, and a poll answers it with one GetItem until that long has passed since an event or a
  read last told the status; then one poll reads (a turn). The heartbeat is then a write of its own.

In each: one task created, polled for ``--hours`` once it runs (the task-hour; a second poller
1 s after the first poll that reads the job), then deleted; a short task polled until it ends and
twice after; with StatusEvents Disabled, also a CreateTask and a DeleteTask of the built-in echo
(a connector without events: no job key indexed). Every poll is checked against the target of its kind (benchmarks/polls.py), and
CreateTask, DeleteTask and the events against theirs; each target is printed with its reason.

Then, from AWS list prices (benchmarks/pricing.py): each kind of poll, a task-hour and a million
polls (as the task-hour makes them), per deployment, beside "before": the first design, where
every poll was a strongly consistent read and a write of the record whose ``polled_at`` was the
sort key of an index projecting ALL (the table write and the index's delete and put, each the
whole item); and API Gateway (HTTP API) and Lambda (arm64, ``--memory-mb``, the p50 of the
deployment's timed polls, in-process against moto on loopback; ``--lambda-ms`` sets another).
``--item-kb`` prices the task-hour for larger items (the record's own attributes grown).

    .venv/bin/python benchmarks/cost.py [--hours 1] [--item-kb 4 16 64] [--lambda-ms 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity_units import READ_UNIT_BYTES, WRITE_UNIT_BYTES
from cost_report import print_cost, print_operations, print_polls, targets
from dynamodb_meter import Usage, print_units_note
from handler_bench import Bench, with_local_table
from harness import percentile
from polls import Deployment, Timeline, VirtualClock, run_deployment
from pricing import PRICES, lambda_dollars, measured_units, money


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="how long each deployment's task is polled")
    parser.add_argument("--warmup", type=int, default=20, help="untimed GetTask calls first")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="the executor's resync period")
    parser.add_argument("--read-interval", type=float, default=5.0, help="StatusReadIntervalSeconds")
    parser.add_argument("--safety-minutes", type=float, default=5.0, help="StatusSafetyReadMinutes (Enabled)")
    parser.add_argument("--memory-mb", type=int, default=512, help="Lambda memory (template.yaml's MemorySize)")
    parser.add_argument(
        "--lambda-ms", type=float, default=None, help="Lambda duration of a poll (default: measured p50)"
    )
    parser.add_argument("--item-kb", type=float, nargs="*", default=[], help="also price these item sizes")
    args = parser.parse_args(argv)
    environment = {
        "CONNECTOR_MODULES": "evented_echo",
        "STATUS_READ_INTERVAL_SECONDS": f"{args.read_interval:g}",
        "STATUS_SAFETY_READ_MINUTES": f"{args.safety_minutes:g}",
    }
    return with_local_table("cost-benchmark", lambda: run(args), environment)


def run(args: argparse.Namespace) -> int:
    from evented_echo import EventedEchoConnector

    from connectors.store import TaskStore, new_client
    from connectors.store.handle import TaskHandle

    bench = Bench()
    service = bench.service
    from handlers.status_events import handler as events_handler  # after Bench: the same service

    peek_store = TaskStore(service.store.table_name, new_client())  # reads outside the meter

    def peek(task: bytes) -> object:
        return peek_store.load(TaskHandle.decode(task))

    print(
        f"DynamoDB cost of polling, measured through the Lambda handlers (in-process, moto DynamoDB on loopback, "
        f"Python {sys.version.split()[0]}); StatusReadIntervalSeconds {args.read_interval:g}, a poll every "
        f"{args.poll_seconds:g} s on the store's virtual clock"
    )
    scratch = bench.create(task_type="evented_echo")
    for _ in range(args.warmup):
        bench.get(scratch, task_type="evented_echo")

    configured = service.settings
    deployments = [
        Deployment("StatusEvents Disabled", 0.0),
        Deployment("StatusEvents Enabled", args.safety_minutes),
    ]
    timelines = []
    with VirtualClock(service.store) as clock:
        for deployment in deployments:
            service.settings = dataclasses.replace(configured, status_safety_read_minutes=deployment.safety_minutes)
            timeline = Timeline(bench, deployment, clock, peek, events_handler, lambda: EventedEchoConnector.reads)
            run_deployment(timeline, args.hours, args.poll_seconds)
            timelines.append(timeline)
    service.settings = configured

    failed: list[str] = []
    for timeline in timelines:
        deployment = timeline.deployment
        print()
        setting = f"STATUS_SAFETY_READ_MINUTES {deployment.safety_minutes:g}"
        print(f"== {deployment.name} ({setting}) ==")
        print_operations(timeline)
        print_polls(timeline)
    print_units_note(bench.meter)
    print()
    print("targets (each with its reason):")
    for text, reason, missed in targets(timelines, args.hours, args.safety_minutes):
        print(f"- {text}: {'met' if not missed else 'NOT MET'}")
        print(f"    why: {reason}")
        for miss in missed[:5]:
            print(f"    missed: {miss}")
        failed += missed

    # -- the cost ------------------------------------------------------------------------------
    hour_polls = [[poll for poll in timeline.polls if poll.in_hour] for timeline in timelines]
    item = next(call.item_bytes for call in hour_polls[0][0].usage.calls if call.api == "GetItem")
    polls_per_hour = len(hour_polls[0]) / args.hours
    print()
    print(
        f"item: {item} bytes (the running task's record as GetTask reads it) = {math.ceil(item / READ_UNIT_BYTES)} "
        f"RRU to read (4 KB each), {math.ceil(item / WRITE_UNIT_BYTES)} WRU to write (1 KB each)"
    )
    print(
        f"a task-hour: {polls_per_hour:g} polls (one each {args.poll_seconds:g} s) of a running task; a heartbeat "
        f"due every {bench.heartbeat_seconds / 60:g} min (ABANDONED_AFTER_MINUTES / 4)"
    )
    lambda_ms = {}
    for timeline, polls in zip(timelines, hour_polls, strict=True):
        p50 = percentile([poll.seconds for poll in polls], 50) * 1000
        lambda_ms[timeline.deployment.name] = p50 if args.lambda_ms is None else args.lambda_ms
        source = "measured" if args.lambda_ms is None else f"--lambda-ms; measured {p50:.2f} ms"
        print(
            f"Lambda, {timeline.deployment.name}: {lambda_ms[timeline.deployment.name]:.2f} ms a poll ({source}: p50 "
            f"of its {len(polls)} timed in-process polls against moto on loopback; a read of a real job adds the "
            f"remote's answer time to the polls that read), billed per ms at {args.memory_mb} MB arm64"
        )
    print(
        "prices: AWS list prices, us-east-1 on-demand: DynamoDB $0.625 per million WRU, $0.125 per million RRU; "
        "API Gateway HTTP API $1.00 per million requests; Lambda arm64 $0.20 per million requests + "
        "$0.0000133334 per GB-second; SQS $0.40 per million requests"
    )
    print_once(timelines, args.memory_mb)
    whole_item_indexes = frozenset(index.name for index in bench.meter.indexes if index.projection == "ALL")
    for size in [None] + [round(kb * 1024) for kb in args.item_kb]:
        print()
        label = f"measured item, {item} bytes" if size is None else f"item grown to {size / 1024:g} KB"
        print_cost(label, timelines, item if size is None else size, size, whole_item_indexes, lambda_ms, args)
    if failed:
        print()
        print(f"NOT MET ({len(failed)}): " + "; ".join(failed[:10]))
        return 1
    return 0


def print_once(timelines: list[Timeline], memory_mb: int) -> None:
    """What a task costs once: its CreateTask and DeleteTask; with events, each state-change event."""
    print()
    for timeline in timelines:
        ops = dict(reversed(timeline.operations))  # the first of each label
        once = measured_units(Usage(ops["CreateTask"].calls + ops["DeleteTask (a running task)"].calls))
        print(
            f"{timeline.deployment.name}: a task's CreateTask and DeleteTask, once each: {once.read:g} RRU + "
            f"{once.write:g} WRU = {money(once.dollars)} in DynamoDB, {money(2 * PRICES['apigw_http_request'])} "
            f"in API Gateway"
        )
        for label, usage in timeline.operations:
            if not label.startswith("a state-change event: the job runs (QUEUED"):
                continue
            units = measured_units(usage)
            sqs = 3 * PRICES["sqs_request"]  # SendMessage, and a share of ReceiveMessage and DeleteMessageBatch
            requests, duration = lambda_dollars(0.1, 20, memory_mb)  # a tenth of a batch of 10, 20 ms
            print(
                f"{timeline.deployment.name}: a state-change event that moves a phase: {units.read:g} RRU + "
                f"{units.write:g} WRU = {money(units.dollars)} in DynamoDB, {money(sqs)} in SQS (3 requests), "
                f"{money(requests + duration)} in Lambda (a tenth of a 20 ms batch); a job sends a few in its "
                f"life, none while it runs"
            )
    print("not in the task-hour: a phase change writes the item (polls or events); a task has a few in its life")


if __name__ == "__main__":
    sys.exit(main())
