"""What must always hold, hunted with random faults: no job orphaned, none wrongly cancelled,
no phase answered that is not stored, no record half-written.

A simulated executor runs actions through the served app against the ledger's remote jobs. A
poller thread polls every task it watches, as the executor's resync does, checking each answer
against the stored record. Meanwhile, at random, it creates the next attempt of an action with
a fault (the connector past its deadline, metadata too large or not encodable, DynamoDB cut
between the claim and the finish, the process killed after the job started, the same CreateTask
sent three times at once), lets jobs finish, deletes tasks, walks away from actions without a
word, runs the reaper, and goes away for longer than the abandonment window to come back while
the reaper (one cancel at a time, each slow) works through what it listed: a task polled after
the reaper listed it must not be cancelled. At the end,
after the leases and the abandonment window have passed and one more reaper pass:

- every job in the ledger is the job of the handle the executor holds for the latest attempt of
  an action it still watches, or it is no longer running (cancelled, or finished on its own);
- no job of a watched action's latest attempt was cancelled unless the executor deleted it;
- every record is whole: active or ended with the connector's metadata, or ended without it only
  after its job was cancelled or never started; none is left claimed or being cancelled.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.reaper import reap_abandoned
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import ACTIVE, ENDED, TaskHandle, TaskRecord, new_client
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service, make_table, scan_table
from tests.flyte_requests import echo_request
from tests.remote_ledger import Ledger, LedgerConnector, LedgerMeta
from tests.tcp_proxy import TcpProxy

LEDGER = pb.TaskCategory(name="ledger", version=0)
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"connector_timeout_seconds": 1.0, "create_claim_seconds": 2.0, "abandoned_after_minutes": 2 / 60}
FAULTS = ["none", "none", "none", "deadline", "oversized", "unencodable", "dynamodb_cut", "duplicates", "killed"]
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED}
# How each fault misbehaves in the ledger connector, for the attempt it is scripted for.
FAULT_CUSTOM: dict[str, dict[str, Any]] = {
    "deadline": {"create_seconds": 3},
    "oversized": {"meta_padding": 500_000},
    "unencodable": {"unencodable_meta": True},
    "dynamodb_cut": {"create_seconds": 0.4},
    "killed": {"die_after_start": True},
}
SCRIPTED_ATTEMPTS = 12  # attempts past these have no fault


@dataclass
class Action:
    run: str
    attempt: int = -1
    handle: bytes | None = None
    watched: bool = True
    deleted: bool = False
    done: bool = False  # the executor saw a terminal phase and stopped polling
    last_polled: float = 0.0  # time.monotonic() of its last answer that was not a cancel
    notes: list[str] = field(default_factory=list)
    # Each attempt's fault, drawn when the action starts: every attempt of an action sends the same
    # template (as the executor does; a newer attempt with another is refused), scripting them all.
    faults: list[str] = field(default_factory=list)


class Executor:
    def __init__(self, dynamodb, dynamodb_client, tmp_path: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.dynamodb_client = dynamodb_client
        self.ledger = Ledger(tmp_path / "ledger.json")
        self.settings = Settings(tasks_table=make_table(dynamodb_client), **SETTINGS)
        registry = ConnectorRegistry([LedgerConnector(self.ledger.path)])
        self.service = make_service(self.settings, dynamodb_client, registry)
        self.proxy = TcpProxy(int(dynamodb.endpoint_url.rsplit(":", 1)[1])).start()
        self.cut_service = make_service(self.settings, new_client(self.proxy.url), registry)
        self.servers = [ServedApp(create_app(self.service)), ServedApp(create_app(self.cut_service))]
        self.tmp_path = tmp_path
        self.actions: list[Action] = []
        self.log: list[str] = []
        self.polling = threading.Event()
        self.polling.set()

    def __enter__(self) -> Executor:
        for server in self.servers:
            server.__enter__()
        self.client = AsyncConnectorServiceClientSync(self.servers[0].url)
        self.cut_client = AsyncConnectorServiceClientSync(self.servers[1].url)
        return self

    def __exit__(self, *exc: Any) -> None:
        for server in self.servers:
            server.__exit__(*exc)
        self.proxy.stop()

    # -- steps -------------------------------------------------------------------------------

    def step(self) -> None:
        live = [a for a in self.actions if a.watched and not a.deleted and not a.done]
        choice = self.rng.choices(
            ["new", "retry", "finish", "delete", "walk_away", "reap", "away"], [3, 3, 2, 1, 1, 2, 1]
        )[0]
        if choice == "new" or not live:
            action = Action(run=f"inv-{len(self.actions)}-{self.rng.randrange(10**6)}")
            self.actions.append(action)
            self.create(action)
        elif choice == "retry":
            retryable = [a for a in live if a.handle is None] or live
            self.create(self.rng.choice(retryable))  # the executor's next attempt after an error (or a reset)
        elif choice == "finish":
            jobs = [j for j, job in self.ledger.jobs().items() if job["state"] == "running"]
            if jobs:
                self.ledger.set_state(self.rng.choice(jobs), self.rng.choice(["succeeded", "failed"]))
        elif choice == "delete":
            action = self.rng.choice(live)
            if action.handle is not None:
                action.deleted = True  # first: the poller stops expecting it to run
                self.client.delete_task(pb.DeleteTaskRequest(resource_meta=action.handle, task_category=LEDGER))
        elif choice == "walk_away":
            self.rng.choice(live).watched = False
        elif choice == "reap":
            self.reap()
        else:
            self.away_and_back()

    def away_and_back(self) -> None:
        """The executor stops polling past the window, then comes back while the reaper works."""
        self.log.append("away")
        self.polling.clear()
        time.sleep(60 * SETTINGS["abandoned_after_minutes"] + 0.3)
        reaper = threading.Thread(target=self.reap, kwargs={"concurrency": 1})
        reaper.start()
        time.sleep(0.05)
        self.polling.set()
        reaper.join(60)

    def create(self, action: Action) -> None:
        action.attempt += 1
        action.handle = None
        if not action.faults:
            action.faults = [self.rng.choice(FAULTS) for _ in range(SCRIPTED_ATTEMPTS)]
        fault = action.faults[action.attempt] if action.attempt < SCRIPTED_ATTEMPTS else "none"
        scripts = {n: FAULT_CUSTOM[f] for n, f in enumerate(action.faults) if f in FAULT_CUSTOM}
        custom = {"delete_seconds": 0.25, "attempts": {str(n): script for n, script in scripts.items()}}
        request = echo_request(task_type="ledger", run=action.run, attempt=action.attempt, custom=custom)
        self.log.append(f"create {action.run}/{action.attempt} fault={fault}")
        try:
            if fault == "duplicates":
                with ThreadPoolExecutor(3) as pool:
                    answers = list(pool.map(lambda _: self._try_create(self.client, request), range(3)))
                handles = {a for a in answers if isinstance(a, bytes)}
                assert len(handles) <= 1, f"duplicates answered different handles: {answers}"
                action.handle = handles.pop() if handles else None
            elif fault == "dynamodb_cut":
                self.create_with_a_cut(request, action)
            elif fault == "killed":
                self.create_in_a_process_that_dies(request)
            else:
                action.handle = self.client.create_task(request).resource_meta
        except ConnectError as error:
            action.notes.append(f"attempt {action.attempt}: {error.code.value}")

    @staticmethod
    def _try_create(client: Any, request: pb.CreateTaskRequest) -> bytes | str:
        try:
            return client.create_task(request).resource_meta
        except ConnectError as error:
            return error.code.value

    def create_with_a_cut(self, request: pb.CreateTaskRequest, action: Action) -> None:
        jobs_before = len(self.ledger.jobs())
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._try_create, self.cut_client, request)
            deadline = time.monotonic() + 5
            while len(self.ledger.jobs()) == jobs_before and time.monotonic() < deadline:
                time.sleep(0.01)
            self.proxy.cut("refuse")  # the claim is written, the job started: the finish cannot be
            answer = pending.result(30)
        self.proxy.restore()
        if isinstance(answer, bytes):
            action.handle = answer

    def create_in_a_process_that_dies(self, request: pb.CreateTaskRequest) -> None:
        path = self.tmp_path / f"request-{time.monotonic_ns()}.pb"
        path.write_bytes(request.SerializeToString())
        script = textwrap.dedent(f"""
            import asyncio, sys
            sys.path.insert(0, {str(ROOT)!r})
            from flyteidl2.connector import connector_pb2 as pb
            from connectors.registry import ConnectorRegistry
            from connectors.settings import Settings
            from connectors.store import new_client
            from tests.conftest import make_service
            from tests.remote_ledger import LedgerConnector
            settings = Settings(tasks_table={self.settings.tasks_table!r}, **{SETTINGS!r})
            service = make_service(settings, new_client(), ConnectorRegistry([LedgerConnector({str(self.ledger.path)!r})]))
            asyncio.run(service.create_task(pb.CreateTaskRequest.FromString(open({str(path)!r}, "rb").read())))
        """)
        died = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True, timeout=60)
        assert died.returncode in (0, 17), died.stderr.decode()[-2000:]

    def poll_all(self) -> None:
        for action in list(self.actions):
            handle = action.handle
            if action.watched and not action.deleted and not action.done and handle is not None:
                self.poll(action, handle)

    def poll(self, action: Action, handle: bytes) -> None:
        answer = self.client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=LEDGER)).resource
        stored = self.record(handle)
        if stored.phase != answer.phase:  # only an ended record may have moved on since the answer
            assert stored.state == ENDED and answer.phase not in TERMINAL, (
                f"{action.run}: answered {answer.phase}, stored {stored.phase}"
            )
        if action.deleted or action.handle != handle or not action.watched:
            return  # the executor moved on while this poll was out
        cancelled = answer.phase == TaskExecution.ABORTED or answer.message.startswith("being cancelled")
        if cancelled:  # only by the reaper, and only after the executor was away past the window
            away = time.monotonic() - action.last_polled
            assert "no executor polled" in answer.message, f"{action.run}/{action.attempt}: {answer.message}"
            assert away > 60 * SETTINGS["abandoned_after_minutes"], (
                f"{action.run}/{action.attempt} was cancelled {away:.2f} s after a poll: {answer.message}"
            )
            action.watched = False  # the executor fails it and moves on
            return
        action.last_polled = time.monotonic()
        if answer.phase in TERMINAL:
            action.done = True

    def keep_polling(self, stop: threading.Event, failures: list[BaseException]) -> None:
        """The executor's resync: every watched task, every 0.25 s (its window to the reaper is 2 s)."""
        while not stop.is_set():
            self.polling.wait()
            try:
                self.poll_all()
            except BaseException as error:  # reported by the test
                failures.append(error)
                return
            stop.wait(0.25)

    def reap(self, **kwargs: Any) -> None:
        asyncio.run(reap_abandoned(self.service.canceller, **kwargs))

    # -- reading ---------------------------------------------------------------------------

    def record(self, handle: bytes) -> TaskRecord:
        return self.service.store.load(TaskHandle.decode(handle))

    def records(self) -> list[TaskRecord]:
        return [TaskRecord.from_item(item) for item in scan_table(self.dynamodb_client, self.settings.tasks_table)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_job_is_orphaned_or_wrongly_cancelled_under_random_faults(dynamodb, dynamodb_client, tmp_path, seed):
    with Executor(dynamodb, dynamodb_client, tmp_path, seed) as executor:
        stop, failures = threading.Event(), []
        poller = threading.Thread(target=executor.keep_polling, args=(stop, failures))
        poller.start()
        try:
            for _ in range(40):
                executor.step()
                assert not failures, failures
            # Settle: every lease and the abandonment window pass while the executor keeps polling.
            time.sleep(max(SETTINGS["create_claim_seconds"], 60 * SETTINGS["abandoned_after_minutes"]) + 0.5)
            executor.reap()
            time.sleep(0.5)
        except AssertionError:
            print("\n".join(executor.log[-30:]))
            raise
        finally:
            stop.set()
            poller.join(30)
        if failures:
            print("\n".join(executor.log[-30:]))
            raise failures[0]
        check_final_state(executor)


def check_final_state(executor: Executor) -> None:
    held = {}
    for action in executor.actions:
        if action.handle is not None and action.watched and not action.deleted:
            record = executor.record(action.handle)
            held[LedgerMeta.decode(record.resource_meta).job_id] = action
    for job_id, job in executor.ledger.jobs().items():
        if job_id in held:
            action = held[job_id]
            assert job["state"] != "cancelled", f"{job_id} of watched {action.run}/{action.attempt} was cancelled"
        else:
            assert job["state"] != "running", f"{job_id} runs on with no executor holding it: orphaned"
    for record in executor.records():
        if record.state == ACTIVE:
            assert record.resource_meta and record.lease_owner is None and record.create_request is None, record.name
            continue
        assert record.state == ENDED, f"{record.name} left {record.state}: {record.message} {record.notes}"
        assert record.heartbeat_at is None and record.active_shard is None, record.name
        if record.resource_meta is None:
            assert (
                record.message.endswith("its job was cancelled")
                or "no job was started" in " ".join(record.notes)
                or record.phase == TaskExecution.ABORTED
            ), f"{record.name}: {record.message} {record.notes}"
