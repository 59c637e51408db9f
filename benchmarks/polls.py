"""The polls benchmarks/cost.py measures: one deployment's tasks polled through the Lambda
handlers as the executor polls them, on the store's virtual clock.

Before each poll its record is read (outside the meter) and the poll classified by what the
design says it must do (:func:`kind_of`: read the job and take the turn, answer the record
within the read interval or with its status fresh from events, answer an ended task; a heartbeat
due or not); after it, by what changed (the phase moved, the task ended). Each kind has its
target (:data:`KINDS`), checked on every poll of that kind.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dynamodb_meter import DynamoMeter, Usage
from handler_bench import Bench, LambdaContext

TASK_TYPE = "evented_echo"  # benchmarks/evented_echo.py
RUNNING_MESSAGE = "echo: waiting for the delay to pass"  # what the echo connector's get reports while it runs
HEARTBEAT_REASON = "the heartbeat, due every ABANDONED_AFTER_MINUTES / 4: the executor is watching (the reaper's clock)"


@dataclass(frozen=True)
class Deployment:
    """What template.yaml sets for the functions: StatusEvents Enabled passes StatusSafetyReadMinutes,
    Disabled passes 0 (and delivers no event)."""

    name: str
    safety_minutes: float

    @property
    def events(self) -> bool:
        return self.safety_minutes > 0


@dataclass(frozen=True)
class Kind:
    """A kind of poll and its target: at most ``writes`` writes, ``job_reads`` status reads of the
    job (None: not a target), and always one DynamoDB read, the record's GetItem."""

    label: str
    writes: int
    job_reads: int | None
    reason: str


KINDS = {
    "reads": Kind(
        "a poll that reads the job, nothing changed: GetItem + turn",
        1,
        1,
        "the turn: one conditional write (take_status_read) so that however many pollers ask (two executors, "
        "a relay retry) the job is read at most once per StatusReadIntervalSeconds (issue 17)",
    ),
    "reads, heartbeat due": Kind(
        "a poll that reads the job, heartbeat due: GetItem + turn carrying the heartbeat",
        1,
        1,
        "the turn carries the heartbeat: no write of its own (its index entry moves: 2 more WRU)",
    ),
    "moves": Kind(
        "a poll that reads the job, phase moves: GetItem + turn + phase write",
        2,
        1,
        "the turn, and the phase the job moved to: what is answered is what is stored",
    ),
    "ends": Kind(
        "a poll that ends the task: GetItem + turn + ending write",
        2,
        1,
        "the turn, and the ending (the record leaves the indexes)",
    ),
    "within": Kind(
        "a poll within the read interval (a second poller, 1 s on): GetItem",
        0,
        0,
        "another poll read the job less than StatusReadIntervalSeconds ago: the stored phase is what a read would tell",
    ),
    "within, heartbeat due": Kind(
        "a poll within the read interval, heartbeat due: GetItem + heartbeat", 1, 0, HEARTBEAT_REASON
    ),
    "fresh": Kind(
        "a poll, status fresh from events: GetItem",
        0,
        0,
        "an event or a read told the status less than StatusSafetyReadMinutes ago: events keep it current",
    ),
    "fresh, heartbeat due": Kind(
        "a poll, status fresh from events, heartbeat due: GetItem + heartbeat", 1, 0, HEARTBEAT_REASON
    ),
    "ended": Kind(
        "a poll of an ended task: GetItem",
        0,
        None,
        "nothing of an ended record changes and it has no heartbeat (a SUCCEEDED task's outputs are read from "
        "the job again: left open, tests/functional/test_issue17_adversarial_polling.py)",
    ),
}


@dataclass
class Poll:
    kind: str  # a key of KINDS
    at: float  # seconds since its task's CreateTask
    usage: Usage
    job_reads: int
    seconds: float  # the handler's wall time
    in_hour: bool  # one of the task-hour's polls

    def missed(self) -> str | None:
        """What of its kind's target this poll missed, as text; None when met."""
        kind = KINDS[self.kind]
        reads = {api: n for api, n in self.usage.by_api.items() if api in ("GetItem", "Query", "Scan")}
        problems = []
        if reads != {"GetItem": 1}:
            problems.append(f"{self.usage.describe()} (one GetItem wanted)")
        if self.usage.writes > kind.writes:
            problems.append(f"{self.usage.writes} writes (at most {kind.writes} wanted)")
        if kind.job_reads is not None and self.job_reads != kind.job_reads:
            problems.append(f"{self.job_reads} status reads of the job ({kind.job_reads} wanted)")
        return f"{kind.label} at +{self.at:g} s: " + "; ".join(problems) if problems else None


class VirtualClock:
    """The task store's clock, moved by hand as ``handler_bench.clock_ahead`` moves it: an hour of polls
    30 s apart in a few seconds. Whole seconds, so the design's comparisons (a heartbeat due at
    exactly 15 min, a read at exactly 5) are exact."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.now = float(int(time.time()))
        self._original = store.clock

    def __enter__(self) -> VirtualClock:
        self.store.clock = lambda: self.now
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.clock = self._original


def kind_of(record: Any, now: float, settings: Any, heartbeat_seconds: float) -> str:
    """What the design says a poll of ``record`` at ``now`` does (connectors/polling.py)."""
    from connectors.store import ACTIVE

    if record.state != ACTIVE:
        return "ended"
    due = ", heartbeat due" if record.heartbeat_at is None or record.heartbeat_at <= now - heartbeat_seconds else ""
    known = max(record.status_pushed_at or 0.0, record.status_read_at or 0.0)
    minutes = settings.status_safety_read_minutes
    told = record.job_key is not None and record.status_failing_since is None  # events can find it
    if minutes > 0 and told and known > now - minutes * 60:
        return "fresh" + due
    interval, read_at = settings.status_read_interval_seconds, record.status_read_at
    if interval > 0 and read_at is not None and read_at > now - interval:
        return "within" + due
    return "reads" + due


@dataclass
class Timeline:
    """One deployment's measured calls: the operations (CreateTask, DeleteTask, the events) and the polls."""

    bench: Bench
    deployment: Deployment
    clock: VirtualClock
    peek: Callable[[bytes], Any]  # the record a handle names, read outside the meter
    events_handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    job_reads: Callable[[], int]  # the connector's status reads so far
    operations: list[tuple[str, Usage]] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    created: dict[bytes, float] = field(default_factory=dict)

    @property
    def meter(self) -> DynamoMeter:
        return self.bench.meter

    def at(self, task: bytes, seconds: float) -> None:
        """The clock ``seconds`` after ``task``'s CreateTask."""
        self.clock.now = self.created[task] + seconds

    def create(
        self, custom: dict[str, Any] | None = None, task_type: str = TASK_TYPE, label: str = "CreateTask"
    ) -> bytes:
        with self.meter.measure() as usage:
            task = self.bench.create(custom, task_type=task_type)
        self.operations.append((label, usage))
        self.created[task] = self.clock.now
        return task

    def delete(self, task: bytes, task_type: str = TASK_TYPE, label: str = "DeleteTask (a running task)") -> None:
        with self.meter.measure() as usage:
            self.bench.delete(task, task_type=task_type)
        self.operations.append((label, usage))

    def poll(self, task: bytes, in_hour: bool = False) -> Poll:
        settings = self.bench.service.settings
        before = self.peek(task)
        kind = kind_of(before, self.clock.now, settings, self.bench.heartbeat_seconds)
        reads = self.job_reads()
        with self.meter.measure() as usage:
            started = time.perf_counter()
            self.bench.get(task, task_type=TASK_TYPE)
            seconds = time.perf_counter() - started
        if kind.startswith("reads"):
            after = self.peek(task)
            if after.state != before.state:
                kind = "ends"
            elif (after.phase, after.message) != (before.phase, before.message):
                kind = "moves"
        poll = Poll(kind, self.clock.now - self.created[task], usage, self.job_reads() - reads, seconds, in_hour)
        self.polls.append(poll)
        return poll

    def event(self, task: bytes, label: str, phase: int, message: str) -> None:
        """The job's state-change event, through the StatusEventsFunction's handler (an SQS batch of one)."""
        from evented_echo import DETAIL_TYPE, SOURCE

        job_id = self.peek(task).job_key.split("#", 1)[1]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": SOURCE,
            "detail-type": DETAIL_TYPE,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now)),
            "detail": {"jobId": job_id, "phase": phase, "message": message},
        }
        records = [{"messageId": str(uuid.uuid4()), "body": json.dumps(event)}]
        with self.meter.measure() as usage:
            answer = self.events_handler({"Records": records}, LambdaContext())
        if answer.get("batchItemFailures"):
            raise RuntimeError(f"the status events handler failed {label}: {answer}")
        self.operations.append((label, usage))


def run_deployment(timeline: Timeline, hours: float, poll_seconds: float) -> None:
    """A task polled every ``poll_seconds`` for ``hours`` once it runs (a second poller 1 s after
    the first poll that reads the job), then deleted; a short task polled until it ends, and after;
    without events, a CreateTask and a DeleteTask of the built-in echo besides."""
    from flyteidl2.core.execution_pb2 import TaskExecution

    events = timeline.deployment.events
    task = timeline.create()
    if events:
        timeline.at(task, 20)
        timeline.event(
            task, "a state-change event: the job runs (QUEUED -> RUNNING)", TaskExecution.RUNNING, RUNNING_MESSAGE
        )
    second_poller = False
    for k in range(1, round(hours * 3600 / poll_seconds) + 2):
        timeline.at(task, k * poll_seconds)
        poll = timeline.poll(task, in_hour=k >= 2)  # the first sees the task running (a phase change)
        if poll.kind.startswith("reads") and not second_poller:
            timeline.at(task, k * poll_seconds + 1)
            timeline.poll(task)
            second_poller = True
    timeline.at(task, (k + 1) * poll_seconds)
    timeline.delete(task)

    began = time.monotonic()
    short = timeline.create(custom={"delay_seconds": 0.3})  # echo's delay is real time
    if events:
        timeline.at(short, 20)
        timeline.event(short, "a state-change event: the job runs", TaskExecution.RUNNING, RUNNING_MESSAGE)
    timeline.at(short, poll_seconds)
    timeline.poll(short)
    time.sleep(max(0.0, 0.35 - (time.monotonic() - began)))
    if events:
        timeline.at(short, poll_seconds + 10)
        timeline.event(
            short,
            "a state-change event: the job succeeded (the status due: the next poll reads the outputs)",
            TaskExecution.SUCCEEDED,
            "echo: done",
        )
    timeline.at(short, 2 * poll_seconds)
    timeline.poll(short)  # ends it
    timeline.at(short, 3 * poll_seconds)
    timeline.poll(short)
    timeline.at(short, 3 * poll_seconds + timeline.bench.heartbeat_seconds)
    timeline.poll(short)  # where an active task's heartbeat would be due
    if not events:  # the built-in echo: a connector without events indexes no job key
        plain = timeline.create(task_type="echo", label="CreateTask (echo: a connector without events)")
        timeline.delete(plain, task_type="echo", label="DeleteTask (echo: a connector without events)")


__all__ = ["KINDS", "Deployment", "Kind", "Poll", "Timeline", "VirtualClock", "kind_of", "run_deployment"]
