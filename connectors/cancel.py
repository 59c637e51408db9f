"""Cancelling a task's remote job, for a newer attempt of its action and for the reaper.

A canceller first takes the record's lease (``cancelling``, a conditional write in
:mod:`.store.lifecycle`), then stops the job and ends the record ABORTED. A record that never
got the connector's metadata (its create failed or its Lambda died) is found by replaying
connector.create with the attempt's request and idempotency token: a remote that honours the
token answers the job it already started, which is then deleted. A replayed create that is
refused outright started nothing, and the record ends with a note saying so. A failure that may
pass (a deadline, an unavailable remote) releases the lease for the reaper's next pass.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from . import literals
from .connector import AsyncConnector
from .connector_calls import ConnectorCalls
from .errors import Code, ConnectError
from .registry import ConnectorRegistry
from .settings import Settings
from .store import ENDED, RecordChanged, TaskRecord, TaskStore

logger = logging.getLogger(__name__)

# Codes of a replayed create that may pass: the job may exist, so the record is kept for a retry.
_MAY_PASS = frozenset({Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE, Code.ABORTED, Code.RESOURCE_EXHAUSTED})


def pack_create_request(request: pb.CreateTaskRequest) -> bytes:
    """What a claim keeps to replay create: the request less its connection (no secrets), zlib'd."""
    kept = pb.CreateTaskRequest()
    kept.CopyFrom(request)
    kept.ClearField("connection")
    return zlib.compress(kept.SerializeToString(), 6)


def unpack_create_request(blob: bytes) -> pb.CreateTaskRequest:
    return pb.CreateTaskRequest.FromString(zlib.decompress(blob))


@dataclass
class CleanupReport:
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # changed before the claim: polled, or leased by another
    stopped_early: bool = False  # the reaper's time budget ran out with stale tasks left for the next pass

    def as_dict(self) -> dict[str, Any]:
        return {"cancelled": len(self.cancelled), "failed": len(self.failed), "skipped": len(self.skipped),
                "stopped_early": self.stopped_early, "cancelled_tasks": self.cancelled, "failed_tasks": self.failed}

    def add(self, name: str, ok: bool) -> None:
        (self.cancelled if ok else self.failed).append(name)


class Canceller:
    def __init__(self, registry: ConnectorRegistry, store: TaskStore, calls: ConnectorCalls, settings: Settings) -> None:
        self.registry = registry
        self.store = store
        self.calls = calls
        self.settings = settings

    @property
    def lease_seconds(self) -> float:
        """A canceller's lease outlives its two connector calls and the invocation running them."""
        return max(self.settings.create_claim_seconds, 2 * self.settings.connector_timeout_seconds + 10)

    @staticmethod
    def new_owner() -> bytes:
        return secrets.token_bytes(16)

    async def supersede(self, newer: TaskRecord, connection: dict[str, str]) -> CleanupReport:
        """Cancel the jobs of the attempts of ``newer``'s action older than it that have not ended.

        One Query; an older attempt whose create is still running (a live lease) is left to the
        reaper. Runs in CreateTask after the newer attempt is recorded."""
        report = CleanupReport()
        reason = f"superseded by attempt {newer.attempt}"
        claimed = []
        for other in await asyncio.to_thread(self.store.attempts, newer.action_id):
            if other.attempt >= newer.attempt or other.state == ENDED:
                continue
            try:
                claimed.append(await asyncio.to_thread(self.store.claim_cancel, other, self.new_owner(),
                                                       self.lease_seconds, reason))
            except RecordChanged:
                report.skipped.append(other.name)
        results = await asyncio.gather(*(self.cancel(r, connection, f"cancelled: {reason}", "superseded")
                                         for r in claimed))
        for record, ok in zip(claimed, results):
            report.add(record.name, ok)
        return report

    async def cancel(self, record: TaskRecord, connection: dict[str, str], reason: str, note: str) -> bool:
        """Stop the job of a record this canceller holds (``cancelling``) and end it ABORTED.

        False when stopping failed: the lease is released and the reaper tries again."""
        try:
            connector = self.registry.get_connector(record.task_type, record.task_version)
            meta = await self._find_job(connector, record, connection)
            if meta is None:
                note = f"{note}: create was refused when replayed with its token, so no job was started"
            else:
                await self.calls.call(connector, "delete", connector.delete(resource_meta=meta, **connection))
        except ConnectError as error:
            logger.warning("could not cancel %s (%s): %s", record.name, note, error.message)
            await self._store(self.store.cancel_failed, record, f"{note} failed: {error.message}")
            return False
        try:
            await self._store(self.store.cancelled, record, TaskExecution.ABORTED, reason, note)
        except RecordChanged:
            logger.info("cancelled %s, but its lease was taken over meanwhile", record.name)
        logger.info("cancelled %s: %s", record.name, reason)
        return True

    async def _find_job(self, connector: AsyncConnector[Any], record: TaskRecord, connection: dict[str, str]) -> Any:
        """The job's ResourceMeta: stored, or found by replaying create with the attempt's token.
        None when the replayed create was refused (no job)."""
        if record.resource_meta is not None:
            return self.calls.decode_meta(connector, record)
        if not record.create_request:
            return None
        request = unpack_create_request(record.create_request)
        try:
            inputs = literals.inputs_to_native(request.inputs, request.template.interface)
            return await self.calls.call(connector, "create", connector.create(
                task_template=request.template, output_prefix=request.output_prefix, inputs=inputs,
                task_execution_metadata=request.task_execution_metadata,
                **connection, idempotency_token=record.key.idempotency_token(),
            ))
        except literals.LiteralConversionError:
            return None  # its inputs never converted, so create was never called with them
        except ConnectError as error:
            if error.code in _MAY_PASS:
                raise
            return None

    @staticmethod
    async def _store(method: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args)
        except RecordChanged:
            raise
        except ConnectError as error:  # the store is down: the lease expires and the reaper retries
            logger.warning("could not record the cancel of %s: %s", args[0].name, error.message)
            return None


__all__ = ["Canceller", "CleanupReport", "pack_create_request", "unpack_create_request"]
