"""GetTask of an active task: read the job's status from its remote, store it, answer it.

What is answered is what is stored: a phase is told only once the record holds it. Two things
the remote does are not the job's doing, and never fail the task:

- **A transient failure of the status read** (throttled, unavailable, a deadline: the codes in
  ``TRANSIENT``). The Flyte executor counts every GetTask error against the task and fails it
  after five, for good; a 10-hour job polled every 30 s meets 0.5 % of such errors 6 times. So
  the answer is the stored phase, its message saying that the status read failed and since when,
  and the record keeps ``status_failing_since``. Only when no status read has succeeded for
  longer than ``status_stale_after_minutes`` is the failure answered (the job may be gone, or
  the service may no longer reach it: someone must look).
- **Another poll writing first** (two executors, a relay retry): the poll decides again on the
  record it lost to, never answering ``unavailable``; a reading less far along than the one
  stored (``_progress``: it was read earlier, while this read was slow) is not written over it,
  and the record lost to is the answer. A write the table refuses (busy, after
  botocore's retries) answers the record read, without the report it could not store.

Every answer without a read (the turn not this poll's, a failed read, a busy table, a status an
event keeps current) carries the log links the record keeps from the last read: a poll writes
them with its phase, or alone when only they changed (a log stream's link appearing).

However many pollers ask (two executors in a rollout, a relay retry, an operator), the remote is
read at most once per ``status_read_interval_seconds`` per task: a poll takes the turn with one
conditional write (``status_read_at``), and polls in between answer the stored phase from the
record they already read. While reads fail the turns come further apart (half the time failing,
at most a minute), so a throttled remote is not asked harder. A poll answered without a read
still writes the heartbeat when one is due.

Errors that say something about the job or the deployment (not found, denied, a connector bug)
answer as they are. A job that ended cancelled while its record is active was not stopped by
this service (DeleteTask and the cancellers end or take the record first): AWS stopped it (an
execution time limit) or someone did by hand, so it is FAILED with the remote's reason, never
ABORTED, which the executor reads as the user's abort.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.interface_pb2 import VariableMap

from .answers import answer_resource, stored_resource
from .connector import AsyncConnector, Resource
from .connector_calls import seconds_left
from .errors import Code, ConnectError, internal
from .phase import ends_attempt, phase_name
from .store import ACTIVE, RecordChanged, TaskRecord, TaskStore
from .store.log_links import encode_links

logger = logging.getLogger(__name__)

TRANSIENT = frozenset({Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})
POLL_WRITE_TRIES = 4
# While status reads fail, the turn to read comes at most this far apart (half the time failing).
MAX_BACKOFF_SECONDS = 60.0


class RequestConnection:
    """A GetTask's connection: the request's own values (``given``), and those completed with the
    connector's secrets from AWS (``completed``), at most once in the request: a poll whose write
    lost to a record ended SUCCEEDED reads the job again for its outputs with the same."""

    def __init__(self, given: dict[str, str]) -> None:
        self.given = given
        self.completed: dict[str, str] | None = None


class Poller:
    """Reads an active task's status and moves its record; the service's GetTask uses it."""

    def __init__(self, service: Any) -> None:
        self.service = service  # its store, settings, calls, secrets and run_store

    @property
    def store(self) -> TaskStore:
        return self.service.store

    async def poll(
        self, connector: AsyncConnector[Any], record: TaskRecord, connection: RequestConnection
    ) -> tuple[TaskRecord, pb.Resource | None, pb.GetTaskResponse | None]:
        """The record after this poll, the connector's report (None when it could not be read),
        and the answer when it is already decided."""
        if self._status_fresh(connector, record):
            return record, None, await self._answer_stored(record)
        if self.service.settings.status_read_interval_seconds > 0:
            turn = await self._take_turn(record)
            if isinstance(turn, tuple):
                return turn
            record = turn
        try:
            reported = await self.read(connector, record, connection)
        except ConnectError as error:
            if error.code not in TRANSIENT:
                raise
            record, answer = await self._through_failure(record, error)
            return record, None, answer
        fresh = reported
        for _ in range(POLL_WRITE_TRIES):
            if record.state != ACTIVE:
                break
            fresh = as_told(record, reported)
            try:
                record = await self.service.run_store(
                    self._store_poll, record, fresh.phase, fresh.message, encode_links(fresh.log_links)
                )
                return record, fresh, pb.GetTaskResponse(resource=fresh)
            except RecordChanged as changed:  # another writer came first
                if changed.current is None:  # the record is gone (its TTL): nothing is stored to tell
                    raise _gone() from None
                marked = changed.current.delete_requested_at is not None and record.delete_requested_at is None
                moved = changed.current.version != record.version
                record = changed.current
                if record.state == ACTIVE and moved and not marked and _progress(fresh.phase) < _progress(record.phase):
                    # Another poll stored a reading further along than this one (read later, while
                    # this read was slow): that is the answer, never this older one written over
                    # it. Lost to DeleteTask's mark, a poll decides again on the marked record.
                    return record, fresh, pb.GetTaskResponse(resource=stored_resource(record, fresh))
            except ConnectError as store_error:  # the table is busy: the record read is the answer
                if store_error.code not in TRANSIENT:  # refused for good (denied, a bug): someone must look
                    raise
                logger.warning("could not store the poll of %s: %s", record.name, store_error.message)
                return record, None, pb.GetTaskResponse(resource=stored_resource(record, None))
        else:  # it kept changing under us: tell what is stored now, as any other poll would
            return record, fresh, pb.GetTaskResponse(resource=stored_resource(record, None))
        return record, fresh, None

    def _status_fresh(self, connector: AsyncConnector[Any], record: TaskRecord) -> bool:
        """With events delivered, a job's stored status is current until the safety interval has
        passed since an event or a read last told it (a lost event waits no longer than that).
        Only for a record indexed by its job's key: no event finds one without (a task created
        before the stack delivered events, or one whose create named no key), so every poll reads."""
        minutes = self.service.settings.status_safety_read_minutes
        if (
            minutes <= 0
            or connector.job_events is None
            or record.job_key is None
            or record.status_failing_since is not None
        ):
            return False
        known = max(record.status_pushed_at or 0.0, record.status_read_at or 0.0)
        return known > self.store.clock() - minutes * 60

    async def _take_turn(
        self, record: TaskRecord
    ) -> TaskRecord | tuple[TaskRecord, pb.Resource | None, pb.GetTaskResponse | None]:
        """This poll's turn to read the remote (the record, marked), or the answer without one:
        a status read was taken less than the interval ago (longer while reads fail: a throttled
        remote is not asked harder), so the stored phase is what a read would have told."""
        now = self.store.clock()
        wait = self.service.settings.status_read_interval_seconds
        if record.status_failing_since is not None:  # never sooner than a healthy remote is read
            wait = max(wait, min(MAX_BACKOFF_SECONDS, (now - record.status_failing_since) / 2))
        if record.status_read_at is not None and record.status_read_at > now - wait:
            return record, None, await self._answer_stored(record)
        try:
            return await self.service.run_store(
                self.store.take_status_read, record, now - wait, self._heartbeat_due(record)
            )
        except ConnectError as store_error:  # the table is busy: the record just read is the answer
            if store_error.code not in TRANSIENT:  # refused for good (denied, a bug): someone must look
                raise
            logger.warning("could not take the status read of %s: %s", record.name, store_error.message)
            return record, None, pb.GetTaskResponse(resource=stored_resource(record, None))
        except RecordChanged as changed:  # another poll took the turn, or the record moved on
            if changed.current is None:
                raise _gone() from None
            if changed.current.state != ACTIVE:
                return changed.current, None, None
            return changed.current, None, await self._answer_stored(changed.current)

    async def _answer_stored(self, record: TaskRecord) -> pb.GetTaskResponse:
        await self._heartbeat_if_due(record)
        stored = stored_resource(record, None)
        if record.status_failing_since is not None:
            when = _clock_time(record.status_failing_since)
            stored.message = f"{record.message} [status reads failing since {when}]".lstrip()
        return pb.GetTaskResponse(resource=stored)

    def _heartbeat_due(self, record: TaskRecord) -> bool:
        heartbeat_seconds = self.service.settings.abandoned_after_minutes * 60 / 4
        return record.heartbeat_at is None or record.heartbeat_at <= self.store.clock() - heartbeat_seconds

    async def _heartbeat_if_due(self, record: TaskRecord) -> None:
        """A poll answered without a read still shows the executor is watching (the reaper's clock)."""
        if not self._heartbeat_due(record):
            return
        try:
            await self.service.run_store(self.store.heartbeat, record)
        except (RecordChanged, ConnectError) as error:  # the next poll writes it; the answer stands
            logger.info("heartbeat of %s not written: %s", record.name, type(error).__name__)

    async def read(
        self, connector: AsyncConnector[Any], record: TaskRecord, connection: RequestConnection
    ) -> pb.Resource:
        """The job's report, as it will be stored. The connector's secrets are completed from AWS
        here, within the call's deadline, so that a throttled or slow Secrets Manager is a failed
        status read like the remote's own; once per GetTask (:class:`RequestConnection`)."""
        kwargs = await self._completed(connector, record, connection)
        meta = self.service.calls.decode_meta(connector, record)
        make: Callable[[dict[str, str]], Awaitable[Any]] = lambda kwargs: connector.get(resource_meta=meta, **kwargs)  # noqa: E731
        resource = await self.service.secrets.call(self.service.calls, connector, record.task_type, "get", kwargs, make)
        if not isinstance(resource, Resource):
            raise internal(f"connector {connector.name} returned {type(resource).__name__} from get, not a Resource")
        return answer_resource(record, resource)  # what is answered is what is stored

    async def _completed(
        self, connector: AsyncConnector[Any], record: TaskRecord, connection: RequestConnection
    ) -> dict[str, str]:
        if connection.completed is not None:
            return connection.completed
        seconds = seconds_left(self.service.settings)
        try:
            completed: dict[str, str] = await asyncio.wait_for(
                self.service.secrets.complete(connector, record.task_type, connection.given), timeout=seconds
            )
        except TimeoutError:
            raise ConnectError(
                Code.DEADLINE_EXCEEDED,
                f"reading {record.task_type}'s secrets from AWS took longer than {seconds:.3g} s",
            ) from None
        connection.completed = completed
        return completed

    async def read_outputs(
        self, connector: AsyncConnector[Any], record: TaskRecord, connection: RequestConnection
    ) -> pb.Resource | None:
        """A SUCCEEDED task's report again, for its outputs and links; None when a task that
        declares no outputs meets a transient failure (its stored SUCCEEDED is the whole answer:
        a second executor must not count a throttle against a finished task). A task with outputs
        answers the failure: SUCCEEDED without them would fail it on a missing outputs.pb."""
        try:
            return await self.read(connector, record, connection)
        except ConnectError as error:
            if error.code not in TRANSIENT or _declares_outputs(record):
                raise
            logger.warning(
                "task %s: reading the succeeded job failed (%s); it has no outputs", record.name, error.code.value
            )
            return None

    def _store_poll(self, record: TaskRecord, phase: int, message: str, log_links: bytes | None) -> TaskRecord:
        """The write a poll needs: none when nothing changed (phase, message, the links the record
        keeps for answers without a read) and the heartbeat is recent; a heartbeat (which moves
        the index entry) at most once per quarter of the reaper's window; the mark of failing
        status reads cleared once one succeeds."""
        due = self._heartbeat_due(record)
        if record.status_failing_since is not None:
            record = self.store.status_read_succeeded(record)
        if phase != record.phase or message != record.message or log_links != record.log_links:
            if phase != record.phase:
                logger.info("task %s: %s -> %s", record.name, phase_name(record.phase), phase_name(phase))
            return self.store.record_phase(record, phase, message, heartbeat=due, log_links=log_links)
        return self.store.heartbeat(record) if due else record

    async def _through_failure(
        self, record: TaskRecord, error: ConnectError
    ) -> tuple[TaskRecord, pb.GetTaskResponse | None]:
        """The stored phase, saying the status read failed and since when; the failure itself once
        none has succeeded for longer than the deployment allows."""
        now = self.store.clock()
        limit = self.service.settings.status_stale_after_minutes * 60
        if record.status_failing_since is not None and 0 < limit < now - record.status_failing_since:
            # Past the limit on the record loaded before this read, which may have taken long:
            # another poll may have read the job meanwhile. The failure is decided on what is stored now.
            try:
                record = await self.service.run_store(self.store.load, record.handle)
            except ConnectError as store_error:  # gone, or the store is down: decided on the record in hand
                logger.warning("could not read %s again: %s", record.name, store_error.message)
        if record.status_failing_since is None and record.state == ACTIVE:
            try:
                record = await self.service.run_store(self.store.status_read_failed, record)
            except RecordChanged as changed:
                if changed.current is None:
                    raise _gone() from None
                record = changed.current
            except ConnectError as store_error:  # the store is down too: the stored phase is still known
                if store_error.code not in TRANSIENT:  # refused for good: the staleness clock could never start
                    raise
                logger.warning("could not note the failed status read of %s: %s", record.name, store_error.message)
        if record.state != ACTIVE:  # another poll ended it meanwhile: answered as an ended record is
            return record, None
        since = record.status_failing_since if record.status_failing_since is not None else now
        failing = max(0.0, now - since)
        # A limit of 0 (benchmarks/faults.py's baseline; the template's minimum is 1) answers every one.
        if record.state == ACTIVE and (failing > limit or limit == 0):
            logger.error("task %s: no status read has succeeded for %.0f s: %s", record.name, failing, error.message)
            raise ConnectError(
                error.code,
                f"no status read has succeeded for {failing / 60:.1f} min (the limit is "
                f"{limit / 60:g} min): {error.message}",
            ) from None
        logger.warning("task %s: status read failed (%s), answering the stored phase", record.name, error.code.value)
        await self._heartbeat_if_due(record)
        stored = stored_resource(record, None)
        when = _clock_time(since)
        note = f"status read failed since {when} ({failing:.0f} s; {error.code.value}: {error.message})"
        stored.message = f"{record.message} [{note}]" if record.message else note
        return record, pb.GetTaskResponse(resource=stored)


# How far along a job a phase is. Two polls' readings of one job differ only by when each was
# read, so in a race the one further along is the later (a Batch retry going back to RUNNABLE is
# stored by the next poll, which races no one).
_PROGRESS = {
    TaskExecution.WAITING_FOR_RESOURCES: 1,
    TaskExecution.INITIALIZING: 1,
    TaskExecution.RUNNING: 2,
}


def _progress(phase: int) -> int:
    return 3 if ends_attempt(phase) else _PROGRESS.get(phase, 0)


def as_told(record: TaskRecord, reported: pb.Resource) -> pb.Resource:
    """A job reported cancelled while its record is active and not marked by DeleteTask was not
    stopped by this service (the cancellers take the record first): AWS stopped it (an execution
    time limit) or a person did. FAILED with the remote's reason, not ABORTED."""
    if reported.phase != TaskExecution.ABORTED or record.delete_requested_at is not None:
        return reported
    told = pb.Resource()
    told.CopyFrom(reported)
    told.phase = TaskExecution.FAILED
    told.message = f"the job was stopped, not by this service: {reported.message or 'no reason given'}"
    return told


def _declares_outputs(record: TaskRecord) -> bool:
    return bool(record.outputs_interface) and bool(VariableMap.FromString(record.outputs_interface).variables)


def _gone() -> ConnectError:
    return ConnectError(Code.NOT_FOUND, "this task's record is gone")


def _clock_time(epoch: float) -> str:
    return time.strftime("%H:%M:%SZ", time.gmtime(epoch))


__all__ = ["POLL_WRITE_TRIES", "TRANSIENT", "Poller", "RequestConnection"]
