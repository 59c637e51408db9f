"""A remote job API that tests can count on: its jobs live in a JSON file, shared across processes.

``LedgerConnector`` (task type ``ledger``) starts a job in the file unless one exists for the
idempotency token (like Athena's ClientRequestToken), answers that job, and reports and cancels
it from the file. A task's ``template.custom`` makes it misbehave on purpose:

- ``create_seconds``: sleep after the token's first job is started, before answering (a deadline
  passes); a create that finds its job again answers at once.
- ``die_after_start``: the process exits right after the token's first job is started (a killed
  Lambda).
- ``meta_padding``: bytes of padding in the metadata (too large for the record).
- ``unencodable_meta``: metadata whose ``encode`` raises.
- ``ignore_token``: start a new job on every create.
- ``outputs``: what ``get`` answers once the job succeeded (may not fit the interface);
  ``big_output``: a string output ``name`` of that many bytes instead.
- ``delete_seconds``: sleep in ``delete`` before cancelling.
- ``chatty``: every ``get`` answers a new message (it counts the polls).
- ``logs_hang``: ``get_logs`` streams one part, then hangs; ``not_implemented``: the calls
  (create, get, delete, get_logs) that raise NotImplementedError.
- ``attempts``: ``{"N": {...}}``, any of the above for attempt N only. Every attempt of an action
  sends the same template, as the executor does (CreateTask refuses a newer attempt whose template
  differs), so a test that has one attempt misbehave scripts it up front, in every attempt's template.

Tests move a job along with :meth:`Ledger.set_state` and queue per-call ``get`` delays with
:meth:`Ledger.delay_next_get`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteidl2.connector.connector_pb2 import GetTaskLogsResponse, GetTaskLogsResponseHeader
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf.json_format import MessageToDict

from connectors import AsyncConnector, Resource, ResourceMeta

PHASES = {
    "running": TaskExecution.RUNNING,
    "succeeded": TaskExecution.SUCCEEDED,
    "failed": TaskExecution.FAILED,
    "cancelled": TaskExecution.ABORTED,
}


class Ledger:
    """The file: {"jobs": {job_id: {token, state, polls, deletes}}, "get_delays": [seconds...]}."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _open(self) -> Iterator[dict[str, Any]]:
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {"jobs": {}, "get_delays": []}
            yield data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)

    def read(self) -> dict[str, Any]:
        with self._open() as data:
            return data

    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.read()["jobs"]

    def start(self, token: str, ignore_token: bool) -> tuple[str, bool]:
        """The job for ``token`` (a new one when ``ignore_token``), and whether it is the token's first."""
        with self._open() as data:
            known = [job_id for job_id, job in data["jobs"].items() if job["token"] == token]
            if known and not ignore_token:
                return known[0], False
            job_id = f"job-{len(data['jobs']) + 1}"
            data["jobs"][job_id] = {"token": token, "state": "running", "polls": 0, "deletes": 0}
            return job_id, not known

    def poll(self, job_id: str) -> dict[str, Any]:
        with self._open() as data:
            job = data["jobs"][job_id]
            job["polls"] += 1
            return dict(job)

    def deleting(self, change: int) -> None:
        """Count the deletes in flight, and the most seen at once."""
        with self._open() as data:
            data["deleting"] = data.get("deleting", 0) + change
            data["max_deleting"] = max(data.get("max_deleting", 0), data["deleting"])

    def cancel(self, job_id: str) -> None:
        with self._open() as data:
            job = data["jobs"][job_id]
            job["deletes"] += 1
            if job["state"] == "running":
                job["state"] = "cancelled"

    def set_state(self, job_id: str, state: str) -> None:
        with self._open() as data:
            data["jobs"][job_id]["state"] = state

    def delay_next_get(self, seconds: float) -> None:
        with self._open() as data:
            data["get_delays"].append(seconds)

    def take_get_delay(self) -> float:
        with self._open() as data:
            return data["get_delays"].pop(0) if data["get_delays"] else 0.0


@dataclass
class LedgerMeta(ResourceMeta):
    job_id: str
    outputs: dict | None = None
    delete_seconds: float = 0.0
    chatty: bool = False  # the message counts polls, so that every poll changes it
    big_output: int = 0
    logs_hang: bool = False
    not_implemented: list | None = None
    padding: str = ""


class UnencodableMeta(LedgerMeta):
    def encode(self) -> bytes:
        raise ValueError("this metadata cannot be encoded")


def for_attempt(custom: dict[str, Any], task_execution_metadata: Any) -> dict[str, Any]:
    """``custom`` with the misbehaviour scripted for this attempt (``attempts``) in force."""
    attempt = task_execution_metadata.task_execution_id.retry_attempt if task_execution_metadata else 0
    scripted = custom.pop("attempts", None) or {}
    return {**custom, **scripted.get(str(attempt), {})}


class LedgerConnector(AsyncConnector[LedgerMeta]):
    name = "Ledger Connector"
    task_type_name = "ledger"
    metadata_type = LedgerMeta

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.ledger = Ledger(path or os.environ["LEDGER_PATH"])

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        custom = for_attempt(MessageToDict(task_template.custom), task_execution_metadata)
        if "create" in custom.get("not_implemented", []):
            raise NotImplementedError("create")
        job_id, first = await asyncio.to_thread(
            self.ledger.start, kwargs["idempotency_token"], bool(custom.get("ignore_token"))
        )
        if first and custom.get("die_after_start"):
            os._exit(17)
        if first:
            await asyncio.sleep(float(custom.get("create_seconds", 0)))
        meta_type = UnencodableMeta if custom.get("unencodable_meta") else LedgerMeta
        return meta_type(
            job_id=job_id,
            outputs=custom.get("outputs"),
            delete_seconds=float(custom.get("delete_seconds", 0)),
            logs_hang=bool(custom.get("logs_hang")),
            not_implemented=custom.get("not_implemented"),
            chatty=bool(custom.get("chatty")),
            big_output=int(custom.get("big_output", 0)),
            padding="p" * int(custom.get("meta_padding", 0)),
        )

    async def get(self, resource_meta: LedgerMeta, **kwargs) -> Resource:
        if "get" in (resource_meta.not_implemented or []):
            raise NotImplementedError("get")
        await asyncio.sleep(await asyncio.to_thread(self.ledger.take_get_delay))
        job = await asyncio.to_thread(self.ledger.poll, resource_meta.job_id)
        phase = PHASES[job["state"]]
        outputs = resource_meta.outputs if phase == TaskExecution.SUCCEEDED else None
        if outputs is None and resource_meta.big_output and phase == TaskExecution.SUCCEEDED:
            outputs = {"name": "n" * resource_meta.big_output}
        message = f"{resource_meta.job_id} {job['state']}" + (f" (poll {job['polls']})" if resource_meta.chatty else "")
        return Resource(phase=phase, message=message, outputs=outputs)

    async def get_logs(self, resource_meta: LedgerMeta, **kwargs) -> AsyncIterator[GetTaskLogsResponse]:
        if "get_logs" in (resource_meta.not_implemented or []):
            raise NotImplementedError("get_logs")
        yield GetTaskLogsResponse(header=GetTaskLogsResponseHeader(token="t1"))
        if resource_meta.logs_hang:
            await asyncio.sleep(3600)

    async def delete(self, resource_meta: LedgerMeta, **kwargs) -> None:
        if "delete" in (resource_meta.not_implemented or []):
            raise NotImplementedError("delete")
        await asyncio.to_thread(self.ledger.deleting, +1)
        try:
            await asyncio.sleep(resource_meta.delete_seconds)
            await asyncio.to_thread(self.ledger.cancel, resource_meta.job_id)
        finally:
            await asyncio.to_thread(self.ledger.deleting, -1)
