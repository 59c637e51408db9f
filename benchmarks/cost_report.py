"""What benchmarks/cost.py prints: the measured calls, the targets with their reasons, and the prices."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from dynamodb_meter import Usage, units_text
from polls import KINDS, Poll, Timeline
from pricing import PRICES, Units, before_poll, count, lambda_dollars, measured_units, money
from text_table import print_table

READS = ("GetItem", "Query", "Scan")


def _reads(usage: Usage) -> int:
    return sum(usage.by_api[api] for api in READS)


def _sizes(usage: Usage) -> str:
    return ", ".join(f"{call.api} {call.item_bytes}" for call in usage.calls)


def print_operations(timeline: Timeline) -> None:
    rows = []
    for label, usage in timeline.operations:
        rru, wru = units_text(usage)
        rows.append((label, usage.describe(), rru, wru, usage.index_detail(), _sizes(usage)))
    print_table(("operation", "DynamoDB calls", "RRU", "WRU (table+index)", "index writes", "item bytes"), rows)


def by_kind(polls: Iterable[Poll]) -> dict[str, list[Poll]]:
    """The polls grouped by kind, in the order the kinds first came."""
    groups: dict[str, list[Poll]] = {}
    for poll in polls:
        groups.setdefault(poll.kind, []).append(poll)
    return groups


def print_polls(timeline: Timeline) -> None:
    rows = []
    for kind, polls in by_kind(timeline.polls).items():
        usage = Usage([call for poll in polls for call in poll.usage.calls])
        rru, wru = units_text(usage, len(polls))
        in_hour = sum(poll.in_hour for poll in polls)
        job_reads = sum(poll.job_reads for poll in polls) / len(polls)
        missed = sum(poll.missed() is not None for poll in polls)
        rows.append(
            (
                KINDS[kind].label,
                f"{len(polls)} ({in_hour})",
                usage.describe(len(polls)),
                rru,
                wru,
                polls[0].usage.index_detail(),
                f"{job_reads:g}",
                "ok" if not missed else f"{missed} NOT MET",
            )
        )
    print_table(
        (
            "poll",
            "polls (in the hour)",
            "DynamoDB calls per poll",
            "RRU",
            "WRU (table+index)",
            "index writes",
            "job reads",
            "target",
        ),
        rows,
    )
    hour = [poll for poll in timeline.polls if poll.in_hour]
    usage = Usage([call for poll in hour for call in poll.usage.calls])
    rru, wru = units_text(usage)
    print(
        f"the task-hour: {len(hour)} polls, {sum(poll.job_reads for poll in hour)} of them reading the job; "
        f"{usage.describe()}; {rru} RRU + {wru} WRU"
    )


def targets(timelines: list[Timeline], hours: float, safety_minutes: float) -> list[tuple[str, str, list[str]]]:
    """(target, its reason, what missed it) for every target the run can check."""
    result: list[tuple[str, str, list[str]]] = []
    operations = [
        (timeline.deployment.name, label, usage) for timeline in timelines for label, usage in timeline.operations
    ]

    def missed_ops(prefix: str, ok: Callable[[Usage], bool]) -> list[str]:
        return [
            f"{name}: {label} made {usage.describe()}"
            for name, label, usage in operations
            if label.startswith(prefix) and not ok(usage)
        ]

    result.append(
        (
            "CreateTask: at most 2 writes",
            "the claim (a conditional PutItem: two CreateTasks of one attempt start one job) and the keep (an "
            "UpdateItem: the job's metadata once the remote answered). Its two Queries read the action's attempts: "
            "before the claim (another principal's action, another task under its name), after it (older "
            "attempts to supersede)",
            missed_ops("CreateTask", lambda usage: usage.writes <= 2),
        )
    )
    result.append(
        (
            "DeleteTask: 1 read and 2 writes",
            "the mark (delete_requested_at) before the job is stopped, so that a poll that reads the job cancelled "
            "meanwhile answers ABORTED, not FAILED 'stopped, not by this service' (polling.as_told); then the end "
            "(ABORTED)",
            missed_ops("DeleteTask", lambda usage: (_reads(usage), usage.writes) == (1, 2)),
        )
    )
    if any(timeline.deployment.events for timeline in timelines):
        result.append(
            (
                "a state-change event: a Query, a GetItem, at most 1 write",
                "the Query of the keys-only job-key index finds the task, the GetItem reads its record, one "
                "conditional write applies what the event tells (or makes the status due)",
                missed_ops(
                    "a state-change event",
                    lambda usage: (usage.by_api["Query"], usage.by_api["GetItem"]) == (1, 1) and usage.writes <= 1,
                ),
            )
        )
    polls = [poll for timeline in timelines for poll in timeline.polls]
    for kind, group in by_kind(sorted(polls, key=lambda poll: list(KINDS).index(poll.kind))).items():
        target = KINDS[kind]
        writes = {0: "no write", 1: "at most 1 write"}.get(target.writes, f"at most {target.writes} writes")
        reads = {None: "", 0: ", no status read of the job", 1: ", 1 status read of the job"}[target.job_reads]
        result.append(
            (
                f"{target.label.split(':')[0]}: one GetItem, {writes}{reads} ({len(group)} poll{'s' * (len(group) != 1)})",
                target.reason,
                [text for text in (poll.missed() for poll in group) if text is not None],
            )
        )
    for timeline in timelines:
        if not timeline.deployment.events:
            continue
        job_reads = sum(poll.job_reads for poll in timeline.polls if poll.in_hour)
        bound = hours * 60 / safety_minutes + 1
        result.append(
            (
                f"{timeline.deployment.name}, the task-hour: at most {bound:g} status reads of the job "
                f"(60 / StatusSafetyReadMinutes an hour, + 1)",
                "events keep the status current; the safety read catches a lost event within StatusSafetyReadMinutes",
                [] if job_reads <= bound else [f"{job_reads} status reads of the job in the task-hour"],
            )
        )
    return result


def print_cost(
    label: str,
    timelines: list[Timeline],
    item: int,
    override: int | None,
    whole_item_indexes: frozenset[str],
    lambda_ms: dict[str, float],
    args: argparse.Namespace,
) -> None:
    before = before_poll(item)
    rows = []
    for timeline in timelines:
        name = timeline.deployment.name
        hour = [poll for poll in timeline.polls if poll.in_hour]
        per_hour = len(hour) / args.hours
        hour_units = Units()
        lines: list[tuple[str, float, Units]] = []
        for kind, group in by_kind(hour).items():
            units = measured_units(
                Usage([call for poll in group for call in poll.usage.calls]), override, whole_item_indexes
            )
            hour_units += units
            lines.append((f"{name}: {KINDS[kind].label.split(':')[0]} ({len(group)})", 1, units * (1 / len(group))))
        hour_units = hour_units * (1 / args.hours)
        lines.append((f"{name}: a task-hour ({per_hour:g} polls)", per_hour, hour_units))
        lines.append((f"{name}: a million polls", 1e6, hour_units * (1e6 / per_hour)))
        for row_name, polls, after in lines:
            ddb_before = before * polls
            apigw = polls * PRICES["apigw_http_request"]
            requests, duration = lambda_dollars(polls, lambda_ms[name], args.memory_mb)
            serving = apigw + requests + duration
            rows.append(
                (
                    row_name,
                    f"{count(ddb_before.read)} + {count(ddb_before.write)}",
                    money(ddb_before.dollars),
                    f"{count(after.read)} + {count(after.write)}",
                    money(after.dollars),
                    f"{ddb_before.dollars / after.dollars:.1f}x" if after.dollars else "-",
                    money(apigw),
                    money(requests + duration),
                    money(serving + ddb_before.dollars),
                    money(serving + after.dollars),
                )
            )
    print(f"{label} (the kinds of poll: the task-hour's, with how many it has):")
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


__all__ = ["by_kind", "print_cost", "print_operations", "print_polls", "targets"]
