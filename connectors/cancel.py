"""Cancelling a task's remote job, for a newer attempt of its action and for the reaper.

A canceller first takes the record's lease (``cancelling``, a conditional write in
:mod:`.store.cancel_lease`), then stops the job and ends the record ABORTED. A record that never
got the connector's metadata (its create failed or its Lambda died) is found by replaying
connector.create with the attempt's request and idempotency token: a remote that honours the
token answers the job it already started, which is then deleted. A replayed create that the
connector refuses outright (``invalid_argument``, ``failed_precondition``, ``unimplemented``,
``out_of_range``) started nothing, and the record ends with a note saying so. Any other failure
(a deadline, a network error answered ``internal``, a permission the reaper lacks) may hide a
running job: the lease is released and the reaper tries again, backing off from one minute to
the whole abandonment window. A create whose outcome is unknown is replayed only within its
connector's replay window (:mod:`.replay`); past it, the record ends saying where the job may be.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.task import common_pb2

from . import literals, task_roles
from .connector import AsyncConnector
from .connector_calls import ConnectorCalls
from .errors import Code, ConnectError
from .observability import logs, metrics
from .registry import ConnectorRegistry
from .replay import past_replay_window, report_unreplayed, unreplayed_message
from .secrets import SecretResolver
from .settings import Settings
from .store import CANCELLING, CLAIMED, ENDED, RecordChanged, TaskRecord, TaskStore

logger = logging.getLogger(__name__)

# Codes of a replayed create that say the connector (or its remote) refused it: it started no job.
_REFUSED = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.FAILED_PRECONDITION,
        Code.UNIMPLEMENTED,
        Code.OUT_OF_RANGE,
        Code.NOT_FOUND,
        Code.PERMISSION_DENIED,
        Code.UNAUTHENTICATED,
    }
)
REFUSED_CODES = frozenset(code.value for code in _REFUSED)
# A failed cancel is tried again after this, doubling per failure, up to the abandonment window.
FIRST_RETRY_SECONDS = 60.0


def replay_settle_seconds(connector: AsyncConnector[Any]) -> float:
    """How long a create of ``connector`` whose outcome is unknown waits before it is replayed
    (its look-up of an earlier try's job lags; connectors/connector.py)."""
    return max(0.0, float(getattr(connector, "replay_settle_seconds", 0) or 0))


def pack_create_request(request: pb.CreateTaskRequest) -> bytes:
    """What a claim keeps to replay create: the request with its connection's configs but never
    its secrets, zlib'd."""
    kept = pb.CreateTaskRequest()
    kept.CopyFrom(request)
    kept.connection.ClearField("secrets")
    return zlib.compress(kept.SerializeToString(), 6)


def request_digest(request: pb.CreateTaskRequest) -> bytes:
    """What makes two CreateTasks of one task execution the same request: its template, inputs and
    output prefix, serialized deterministically (not the connection, whose secrets may rotate, nor
    the execution metadata, which names the task execution the record is keyed by)."""
    kept = pb.CreateTaskRequest(template=request.template, inputs=request.inputs, output_prefix=request.output_prefix)
    return hashlib.blake2b(kept.SerializeToString(deterministic=True), digest_size=16).digest()


def task_digest(request: pb.CreateTaskRequest) -> bytes:
    """What every attempt of one action shares, so that a newer attempt supersedes an older one
    only when it runs the same task: the template and the inputs (by name: the executor builds
    them from a map, in no set order). Not the output prefix, which the executor makes per attempt
    (``<run output base>/<shard>/<action>/<attempt>``), nor where it renders that prefix into a
    container task's args (its outputs, raw data and checkpoint paths, plugin.go's
    ``template.Render``): there every path under the action's attempt directories is a placeholder."""
    template = tasks_pb2.TaskTemplate()
    template.CopyFrom(request.template)
    if template.HasField("container") and request.output_prefix:
        pattern = _attempt_paths(request.output_prefix)
        args = [pattern.sub("{{attempt output prefix}}", arg) for arg in template.container.args]
        del template.container.args[:]
        template.container.args.extend(args)
    inputs = sorted(request.inputs.literals, key=lambda named: named.name)
    kept = pb.CreateTaskRequest(template=template, inputs=common_pb2.Inputs(literals=inputs))
    return hashlib.blake2b(kept.SerializeToString(deterministic=True), digest_size=16, person=b"task").digest()


def _attempt_paths(output_prefix: str) -> re.Pattern[str]:
    """This attempt's output prefix, and any other attempt's of the same action when the prefix
    ends in the attempt's number (the Flyte v2 executor's layout)."""
    stem, _, last = output_prefix.rstrip("/").rpartition("/")
    if stem and last.isdigit():
        return re.compile(re.escape(stem) + r"/[0-9]+(?![0-9])")
    return re.compile(re.escape(output_prefix))


def unpack_create_request(blob: bytes) -> pb.CreateTaskRequest:
    return pb.CreateTaskRequest.FromString(zlib.decompress(blob))


@dataclass
class CleanupReport:
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # changed before the claim: polled, or leased by another
    stopped_early: bool = False  # the reaper's time budget ran out with stale tasks left for the next pass

    def as_dict(self) -> dict[str, Any]:
        return {
            "cancelled": len(self.cancelled),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "stopped_early": self.stopped_early,
            "cancelled_tasks": self.cancelled,
            "failed_tasks": self.failed,
        }

    def add(self, name: str, ok: bool) -> None:
        (self.cancelled if ok else self.failed).append(name)


class Canceller:
    def __init__(
        self,
        registry: ConnectorRegistry,
        store: TaskStore,
        calls: ConnectorCalls,
        settings: Settings,
        secrets: SecretResolver | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.calls = calls
        self.settings = settings
        self.secrets = secrets or SecretResolver()

    @property
    def lease_seconds(self) -> float:
        """A canceller's lease outlives its two connector calls and the invocation running them,
        and, when it dies mid-replay, a connector's settle time before the next replay."""
        settle = self.registry.max_replay_settle_seconds()
        return max(
            self.settings.create_claim_seconds,
            2 * self.settings.connector_timeout_seconds + 10,
            settle + self.settings.connector_timeout_seconds if settle else 0,
        )

    @staticmethod
    def new_owner() -> bytes:
        return secrets.token_bytes(16)

    async def supersede(self, newer: TaskRecord, older: list[TaskRecord], connection: dict[str, str]) -> CleanupReport:
        """Cancel the jobs of ``older`` attempts of ``newer``'s action that have not ended.

        ``older`` may have been read before ``newer``'s create ran: every write here is
        conditional and decides again on what is stored when it loses. An older attempt whose
        create is still running (a live lease) is marked: when its create finishes it deletes its
        own job (and if it died, the reaper takes it once the lease ends). Runs in CreateTask
        after the newer attempt is recorded."""
        report = CleanupReport()
        reason = f"superseded by attempt {newer.attempt}"
        claimed = []
        for other in older:
            taken = await self._take_older(other, newer.attempt, reason)
            if taken is not None:
                claimed.append(taken)
            elif other.state != ENDED:
                report.skipped.append(other.name)
        results = await asyncio.gather(
            *(self.cancel(r, connection, f"cancelled: {reason}", "superseded") for r in claimed)
        )
        for record, ok in zip(claimed, results, strict=True):
            report.add(record.name, ok)
        return report

    async def _take_older(self, other: TaskRecord, newer_attempt: int, reason: str) -> TaskRecord | None:
        """Take an older attempt's record for cancelling, deciding again on what is stored when a
        write loses (its create finished or failed meanwhile); None when there is nothing to take:
        ended, marked for its own create to clean up, or held by another canceller."""
        for _ in range(4):
            if other.state == ENDED or other.superseded_by is not None:
                return None
            try:
                if other.state == CLAIMED and not other.lease_expired(self.store.clock()):  # its create still runs
                    await asyncio.to_thread(self.store.mark_superseded, other, newer_attempt)
                    return None
                if other.state == CANCELLING and not other.lease_expired(self.store.clock()):
                    return None
                return await asyncio.to_thread(
                    self.store.claim_cancel, other, self.new_owner(), self.lease_seconds, reason
                )
            except RecordChanged as changed:
                if changed.current is None:
                    return None
                other = changed.current
        return None

    async def cancel(self, record: TaskRecord, connection: dict[str, str], reason: str, note: str) -> bool:
        """Stop the job of a record this canceller holds (``cancelling``) and end it ABORTED.

        False when stopping failed: the lease is released and the reaper tries again."""
        hold = 0.0
        logs.task_keys(record.task_type, record.execution, record.attempt)  # each cancel runs in a task of its own
        # As the cancelled task's own project role (task_roles.py), whoever cancels it.
        task_roles.enter_record(self.settings.task_role_arn_pattern, record.execution, record.attempt)
        try:
            connector = self.registry.get_connector(record.task_type, record.task_version)
            if record.resource_meta is None and past_replay_window(
                connector, record, self.settings, self.store.clock()
            ):
                return await self._end_unreplayed(connector, record, reason, note)
            # The caller's secrets (a newer attempt's), else the connector's own from AWS (the reaper).
            connection = await self.secrets.complete(connector, record.task_type, connection)
            if record.resource_meta is None:  # a replayed create that fails may have started a job
                hold = replay_settle_seconds(connector)
            meta = await self._find_job(connector, record, connection)
            hold = 0.0
            if meta is None:
                note = f"{note}: create was refused when replayed with its token, so no job was started"
            else:
                await self.secrets.call(
                    self.calls,
                    connector,
                    record.task_type,
                    "delete",
                    connection,
                    lambda kwargs: connector.delete(resource_meta=meta, **kwargs),
                )
        except ConnectError as error:
            logger.error("could not cancel %s (%s), its job may still run: %s", record.name, note, error.message)
            await self._store(
                self.store.cancel_failed,
                record,
                f"{note} failed: {error.message}",
                self._retry_heartbeat(record, hold),
                hold,
            )
            metrics.task_cancelled(record.task_type, note.partition(":")[0], ok=False)
            return False
        try:
            await self._store(self.store.cancelled, record, TaskExecution.ABORTED, reason, note)
        except RecordChanged:
            logger.info("cancelled %s, but its lease was taken over meanwhile", record.name)
        logger.info("cancelled %s: %s", record.name, reason)
        metrics.task_cancelled(record.task_type, note.partition(":")[0], ok=True)
        return True

    async def _end_unreplayed(self, connector: AsyncConnector[Any], record: TaskRecord, reason: str, note: str) -> bool:
        """End a record whose create is past its replay window without replaying it (a replay
        could start a second job): no job if every try was refused, else one may run unobserved."""
        refused = record.create_error in REFUSED_CODES
        if refused:
            message = reason
            note = f"{note}: create was refused ({record.create_error}), so no job was started (past its replay window)"
        else:
            request = unpack_create_request(record.create_request) if record.create_request else None
            token = record.key.idempotency_token(self.settings.token_salt)
            message = unreplayed_message(connector, record, request, token, self.settings, self.store.clock())
            note = f"{note}: not replayed past its replay window; its job, if it started, runs unobserved"
        try:
            ended = await self._store(self.store.cancelled, record, TaskExecution.ABORTED, message, note)
        except RecordChanged:
            logger.info("%s was taken over before it could be ended", record.name)
            return True
        if ended is not None and refused:
            logger.info("cancelled %s: %s", record.name, reason)
            metrics.task_cancelled(record.task_type, note.partition(":")[0], ok=True)
        elif ended is not None:
            report_unreplayed(record, message)
        return True

    def _retry_heartbeat(self, record: TaskRecord, hold: float = 0.0) -> float:
        """The heartbeat that makes the reaper try again after a back-off: one minute, doubling
        with each failure noted, up to the abandonment window; never before ``hold`` has passed."""
        window = self.settings.abandoned_after_minutes * 60
        failures = sum(" failed: " in note for note in record.notes)
        return self.store.clock() - window + max(hold, min(window, FIRST_RETRY_SECONDS * 2**failures))

    async def _find_job(self, connector: AsyncConnector[Any], record: TaskRecord, connection: dict[str, str]) -> Any:
        """The job's ResourceMeta: stored, or found by replaying create with the attempt's token.
        None when the replayed create was refused (no job)."""
        if record.resource_meta is not None:
            return self.calls.decode_meta(connector, record)
        if not record.create_request:
            return None
        request = unpack_create_request(record.create_request)
        kwargs = {**dict(request.connection.configs), **connection}  # the caller's secrets, the task's configs
        try:
            self.secrets.require(connector, record.task_type, kwargs)  # a refusal like the connector's own
            inputs = literals.inputs_to_native(request.inputs, request.template.interface)
            return await self.calls.call(
                connector,
                "create",
                connector.create(
                    task_template=request.template,
                    output_prefix=request.output_prefix,
                    inputs=inputs,
                    task_execution_metadata=request.task_execution_metadata,
                    **kwargs,
                    idempotency_token=record.key.idempotency_token(self.settings.token_salt),
                ),
            )
        except literals.LiteralConversionError:
            return None  # its inputs never converted, so create was never called with them
        except ConnectError as error:
            # A refusal proves no job only when the first create was refused too: a replay can be
            # refused for reasons of its own (no secrets in the reaper, "already exists" by name).
            if error.code in _REFUSED and record.create_error in REFUSED_CODES:
                return None
            raise

    @staticmethod
    async def _store(method: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args)
        except RecordChanged:
            raise
        except ConnectError as error:  # the store is down: the lease expires and the reaper retries
            logger.warning("could not record the cancel of %s: %s", args[0].name, error.message)
            return None


__all__ = [
    "REFUSED_CODES",
    "Canceller",
    "CleanupReport",
    "pack_create_request",
    "replay_settle_seconds",
    "request_digest",
    "task_digest",
    "unpack_create_request",
]
