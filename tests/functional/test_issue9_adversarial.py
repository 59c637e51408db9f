"""Adversarial review of the replay-settle hold, answers.py's partial outputs, the per-connector
switches and the flyteplugins-aws task classes (issue 9).

Each break found was an ``xfail(strict=True)`` test until it was fixed (its comment names it); the attacks
that held are ordinary tests. The replay attacks run against a remote whose look-up really lags:
``LaggyLedgerConnector`` finds an earlier try's job by its token only once that job is
``SETTLE`` seconds old (as Batch's ListJobs and Glue's GetJobRuns may), and declares that same
``replay_settle_seconds``. A second job for one token is the failure the hold exists to prevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf.json_format import MessageToDict

from connectors.errors import Code, not_found, unavailable
from tests.ledger_world import LedgerWorld
from tests.remote_ledger import Ledger, LedgerConnector, LedgerMeta

ROOT = Path(__file__).resolve().parents[2]
SETTLE = 3.0  # the connector's replay_settle_seconds, and how long its look-up lags


# -- a remote whose look-up lags ---------------------------------------------------------------------------


class LaggyLedger(Ledger):
    """The ledger, with a look-up that sees a job only once it is SETTLE seconds old."""

    def start_lagging(self, token: str) -> tuple[str, bool]:
        """The job the look-up finds for ``token``, else a new one; and whether it is the token's
        very first job (the one a slow or dying create is slow or dies after)."""
        with self._open() as data:
            now = time.time()
            mine = [job_id for job_id, job in data["jobs"].items() if job["token"] == token]
            visible = [job_id for job_id in mine if now - data["jobs"][job_id].get("started_at", 0) >= SETTLE]
            if visible:
                return visible[0], False
            job_id = f"job-{len(data['jobs']) + 1}"
            data["jobs"][job_id] = {"token": token, "state": "running", "polls": 0, "deletes": 0, "started_at": now}
            return job_id, not mine

    def count_call(self, token: str) -> int:
        """How many creates came for ``token`` before this one."""
        with self._open() as data:
            calls = data.setdefault("calls", {})
            calls[token] = calls.get(token, 0) + 1
            return calls[token] - 1

    def jobs_of(self, token: str) -> list[str]:
        return [job_id for job_id, job in self.jobs().items() if job["token"] == token]


class LaggyLedgerConnector(LedgerConnector):
    """``ledger`` with a lagging look-up. ``template.custom`` knobs, each a list of attempts:
    ``lost_first``: that attempt's first create fails ``unavailable`` before starting anything
    (a network error); ``slow``: the token's first job is started, then create sleeps past any
    deadline; ``die``: the process exits right after the token's first job started;
    ``refuse_not_found``: create answers ``not_found`` and starts nothing."""

    replay_settle_seconds = SETTLE

    def __init__(self, path: Any = None) -> None:
        super().__init__(path)
        self.ledger = LaggyLedger(self.ledger.path)

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = MessageToDict(task_template.custom)
        attempt = task_execution_metadata.task_execution_id.retry_attempt
        token = kwargs["idempotency_token"]
        if "create" in custom.get("not_implemented", []):
            raise NotImplementedError("create")
        if attempt in custom.get("refuse_not_found", []):
            raise not_found("ledger: the queue named in the template does not exist")
        calls = await asyncio.to_thread(self.ledger.count_call, token)
        if attempt in custom.get("lost_first", []) and calls == 0:
            raise unavailable("ledger: the connection was reset before the request was sent")
        job_id, first = await asyncio.to_thread(self.ledger.start_lagging, token)
        if first and attempt in custom.get("die", []):
            os._exit(17)
        if first and attempt in custom.get("slow", []):
            await asyncio.sleep(30)
        outputs = custom.get("outputs")
        if isinstance(outputs, dict):  # a Struct holds numbers as floats: the job's ints are ints
            outputs = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in outputs.items()}
        return LedgerMeta(job_id=job_id, outputs=outputs)


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[LedgerWorld]:
    path = tmp_path / "ledger.json"
    with LedgerWorld(dynamodb_client, path, LaggyLedgerConnector(path)) as w:
        yield w


def token_of(world: LedgerWorld, run: str, attempt: int) -> str:
    return world.records(run)[attempt].key.idempotency_token()


# -- 1. the replay-settle hold: what held ------------------------------------------------------------------


def test_the_hold_against_a_really_lagging_look_up_a_retry_then_a_newer_attempt_start_one_job_for_the_token(world):
    """A lost create: the retry within the hold is told 'in progress', the newer attempt marks it
    and runs its own job, the reaper replays only after the hold: one job for attempt 0's token
    (found by the look-up once visible), cancelled; attempt 1's job runs."""
    assert world.error(world.create, "held-run", 0, slow=[0]).code == Code.DEADLINE_EXCEEDED
    assert world.error(world.create, "held-run", 0, slow=[0]).code == Code.UNAVAILABLE
    newer = world.create("held-run", 1, slow=[0])
    assert world.poll(newer).phase == TaskExecution.RUNNING
    assert world.records("held-run")[0].superseded_by == 1
    late = world.error(world.create, "held-run", 0, slow=[0])  # the older attempt's retry: refused, starts nothing
    assert late.code == Code.FAILED_PRECONDITION
    assert world.reap().cancelled == []  # still held
    time.sleep(SETTLE + 0.2)
    assert world.reap().cancelled == ["held-run/a0/0"]
    token0 = token_of(world, "held-run", 0)
    assert len(world.connector.ledger.jobs_of(token0)) == 1
    assert world.jobs() == {"job-1": "cancelled", "job-2": "running"}


def test_a_refused_create_is_not_held_and_its_retry_is_refused_again_not_told_in_progress(world):
    first = world.error(world.create, "refused-run", 0, outputs="not-a-dict", not_implemented=["create"])
    assert first.code == Code.UNIMPLEMENTED
    assert world.records("refused-run")[0].lease_expires_at <= time.time()
    again = world.error(world.create, "refused-run", 0, outputs="not-a-dict", not_implemented=["create"])
    assert again.code == Code.UNIMPLEMENTED and world.jobs() == {}


# -- 1. the replay-settle hold: breaks ---------------------------------------------------------------------


# Was a break, now fixed: a canceller's replayed create that fails with an unknown outcome is released at once (cancel_failed), so a newer attempt replays it within replay_settle_seconds and the lagging look-up starts a second job
def test_a_replay_whose_outcome_is_unknown_is_held_before_it_is_replayed_again(world):
    # attempt 0: lost before anything started (unknown to the service): held SETTLE seconds.
    assert world.error(world.create, "replay-run", 0, lost_first=[0], slow=[0]).code == Code.UNAVAILABLE
    time.sleep(SETTLE + 0.2)
    # attempt 1 supersedes it: replays attempt 0's create, which starts its job now and then
    # passes its deadline (outcome unknown again): cancel_failed, lease expired at once.
    world.create("replay-run", 1, lost_first=[0], slow=[0])
    token0 = token_of(world, "replay-run", 0)
    assert len(world.connector.ledger.jobs_of(token0)) == 1
    # attempt 2 comes seconds later: it takes attempt 0 over again and replays its create while
    # the job started a moment ago is not yet visible to the look-up.
    world.create("replay-run", 2, lost_first=[0], slow=[0])
    assert len(world.connector.ledger.jobs_of(token0)) == 1, world.jobs()


CRASH_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from flyteidl2.connector import connector_pb2 as pb
from connectors.registry import ConnectorRegistry
from connectors.settings import Settings
from connectors.store import new_client
from tests.conftest import make_service
from tests.functional.test_issue9_adversarial import LaggyLedgerConnector
service = make_service(Settings(tasks_table={table!r}, create_claim_seconds={claim!r}, connector_timeout_seconds=2.0),
                       new_client(), ConnectorRegistry([LaggyLedgerConnector({ledger!r})]))
request = pb.CreateTaskRequest.FromString(open({request!r}, "rb").read())
asyncio.run(service.create_task(request))
"""


# Was a break, now fixed: a create killed after starting its job leaves only the claim lease (CreateClaimSeconds, min 30 s) which replay_settle_seconds (60 s) never extends: its retry replays before the look-up sees the job, a second job
def test_a_create_killed_after_starting_its_job_is_not_replayed_before_the_settle_time(world, tmp_path):
    # Scaled: CreateClaimSeconds may be as low as 30 while Batch's and Glue's settle time is 60.
    request = world.request("killed-run", 0, custom={"die": [0]})
    (tmp_path / "request.pb").write_bytes(request.SerializeToString())
    script = CRASH_SCRIPT.format(
        root=str(ROOT),
        table=world.settings.tasks_table,
        claim=SETTLE / 2,
        ledger=str(world.ledger.path),
        request=str(tmp_path / "request.pb"),
    )
    died = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
        cwd=str(ROOT),
    )
    assert died.returncode == 17, died.stderr.decode()[-2000:]
    token = token_of(world, "killed-run", 0)
    assert len(world.connector.ledger.jobs_of(token)) == 1
    time.sleep(SETTLE / 2 + 0.2)  # the claim's lease has ended; the job is younger than the settle time
    with contextlib.suppress(Exception):  # told to retry is fine; starting a second job is not
        world.client.create_task(request)  # the executor's retry of the same attempt
    assert len(world.connector.ledger.jobs_of(token)) == 1, world.jobs()


# Was a break, now fixed: a create refused not_found started nothing, yet is held replay_settle_seconds (REFUSED_CODES lacks not_found) although task-lifecycle.md says it is not held
def test_a_create_refused_not_found_is_not_held(world):
    error = world.error(world.create, "missing-run", 0, refuse_not_found=[0])
    assert error.code == Code.NOT_FOUND
    assert world.records("missing-run")[0].lease_expires_at <= time.time()


# -- 2. answers.py: SUCCEEDED with some, none or extra outputs ---------------------------------------------


def succeeded(world: LedgerWorld, run: str, outputs: Any) -> Any:
    handle = world.create(run, 0, **({"outputs": outputs} if outputs is not None else {}))
    world.ledger.set_state(LedgerMeta.decode(world.record(handle).resource_meta).job_id, "succeeded")
    return world.poll(handle)


def read_back(resource: Any) -> Any:
    """The answer's outputs as the flyte SDK reads a task's outputs (convert_outputs_to_native)."""
    from flyte._internal.runtime.convert import Outputs, convert_outputs_to_native
    from flyte.models import NativeInterface

    interface = NativeInterface({}, {"x": int, "name": str})
    return asyncio.run(convert_outputs_to_native(interface, Outputs(proto_outputs=resource.outputs)))


def test_all_declared_outputs_succeed_and_read_back_and_none_or_empty_outputs_are_left_for_the_executor(world):
    full = succeeded(world, "full-run", {"x": 3, "name": "n"})
    assert full.phase == TaskExecution.SUCCEEDED and read_back(full) == (3, "n")
    for run, outputs in (("none-run", None), ("empty-run", {})):
        answer = succeeded(world, run, outputs)
        assert answer.phase == TaskExecution.SUCCEEDED and len(answer.outputs.literals) == 0, run
    partial = succeeded(world, "partial-run", {"x": 3})
    assert partial.phase == TaskExecution.FAILED and "'name'" in partial.message
    assert world.records("partial-run")[0].phase == TaskExecution.FAILED


# Was a break, now fixed: answers.py passes undeclared extra outputs through (native_to_outputs appends them) on a SUCCEEDED answer the flyte SDK then cannot read ('Received more input values than allowed')
def test_undeclared_extra_outputs_do_not_make_a_succeeded_answer_unreadable(world):
    answer = succeeded(world, "extra-run", {"x": 3, "name": "n", "debug": "left over"})
    assert answer.phase == TaskExecution.SUCCEEDED
    assert read_back(answer) == (3, "n")


# -- 4. flyteplugins-aws: a task that serializes and is accepted but can never succeed ---------------------


# Was a break, now fixed: BatchJobTask (and GlueJobTask) accept declared outputs and the connector accepts the create, starting a job whose SUCCEEDED can never carry them (sagemaker_training refuses this at create)
def test_a_batch_task_declaring_an_output_it_can_never_fill_is_refused_before_its_job_starts(aws_world):
    from flyteidl2.connector import connector_pb2 as pb
    from google.protobuf import json_format

    from connectors.builtin.aws.batch import AwsBatchJobConnector
    from tests.aws_world import INT, variable_map
    from tests.flyte_requests import execution_metadata

    request = json_format.Parse((ROOT / "examples" / "aws_batch_job.json").read_text(), pb.CreateTaskRequest())
    request.template.interface.outputs.CopyFrom(variable_map({"rows": INT}))
    request.task_execution_metadata.CopyFrom(execution_metadata(f"out-{time.time_ns()}", "a0", 0))
    world = aws_world(AwsBatchJobConnector())
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT
