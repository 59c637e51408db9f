"""CreateTask, step by step: :meth:`connectors.service.ConnectorService.create_task` reads as
these steps, top to bottom.

1. **admit** the request: what it must hold, the connector that serves it, the connection's
   credentials, its inputs, and the record it would write. Refused here, nothing is read or written.
2. **claim** the attempt: one read refuses another principal's action or another task under its
   name, then one conditional write claims it. A claim that exists already is answered from its
   record (:func:`answer_existing`).
3. **look at the other attempts**: an attempt older than one that exists starts nothing; the older
   ones are kept, to supersede once this one is created.
4. **create** the job: ``connector.create`` with the attempt's idempotency token, unless an earlier
   try's outcome is unknown and past its replay window. A failure releases the claim.
5. **keep** the job: its metadata into the record (ACTIVE, QUEUED). A job whose metadata cannot be
   kept, or whose attempt a newer one superseded meanwhile, is cancelled.
6. **supersede** the older attempts: their jobs are cancelled (:mod:`connectors.cancel`).

A record's states and the writes between them are in :mod:`connectors.store.lifecycle`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from . import caller, literals, task_roles
from .cancel import REFUSED_CODES, pack_create_request, replay_settle_seconds, request_digest, task_digest
from .connector import AsyncConnector
from .connector_calls import connection_kwargs, deadline_passed, log_connector_failure, redact
from .errors import Code, ConnectError, deadline_exceeded, failed_precondition, internal, invalid_argument, unavailable
from .job_events import job_key_of
from .observability import logs
from .replay import past_replay_window, report_unreplayed, unreplayed_message
from .settings import Settings
from .store import (
    CLAIMED,
    AttemptOwner,
    ClaimResult,
    RecordChanged,
    TaskExecutionKey,
    TaskRecord,
    TaskStore,
    new_secret,
)

logger = logging.getLogger(__name__)

# Codes of a failed create that leave open whether it started a job (its answer was lost, its
# deadline passed, it broke half-way); any other code is the remote or the connector refusing.
OUTCOME_UNKNOWN = frozenset(
    {Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE, Code.INTERNAL, Code.UNKNOWN, Code.ABORTED, Code.CANCELED, Code.DATA_LOSS}
)
# The highest retry attempt CreateTask accepts. The executor counts attempts from 0, one per retry
# of the task (its retries + 1 in all, and each attempt is a remote job): no retry policy comes near
# ten thousand. The proto allows up to 4294967295, and an attempt far above the real ones would be
# "newer" than every attempt the executor will ever make (docs/security.md).
MAX_RETRY_ATTEMPT = 9_999


@dataclass(frozen=True)
class NewTask:
    """A CreateTask that was admitted: what the later steps need. Nothing is written yet."""

    request: pb.CreateTaskRequest
    key: TaskExecutionKey
    connector: AsyncConnector[Any]
    connection: dict[str, str]  # the request's, completed from Secrets Manager
    inputs: dict[str, Any]  # native values
    record: TaskRecord  # what the claim writes

    @property
    def task_type(self) -> str:
        return self.request.template.type


class Creator:
    """The steps of CreateTask, on the service's registry, store, settings, connector calls,
    secrets and canceller (read through it: a test may swap them)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    @property
    def store(self) -> TaskStore:
        return self.service.store

    @property
    def settings(self) -> Settings:
        return self.service.settings

    # -- 1. admit ----------------------------------------------------------------------------------

    async def admit(self, request: pb.CreateTaskRequest) -> NewTask:
        """The request checked, its connector found, its credentials completed and its inputs
        converted; ``invalid_argument`` (or the connector's ``not_found``, a missing credential's
        ``failed_precondition``, a passed deadline) before any record is read or written."""
        if not request.HasField("template"):
            raise invalid_argument("CreateTaskRequest.template is required")
        template = request.template
        if not template.type:
            raise invalid_argument("CreateTaskRequest.template.type is required: it names the connector")
        key = TaskExecutionKey.from_metadata(request.task_execution_metadata)
        if key is None:  # without it there is no key to de-duplicate on, and no idempotency token
            raise invalid_argument(
                "CreateTaskRequest.task_execution_metadata.task_execution_id is required: "
                "it names the run, action and attempt this task starts once for"
            )
        logs.task_keys(execution=_execution_fields(key), attempt=key.attempt)
        _check_attempt_number(key.attempt, request.task_execution_metadata.max_attempts)
        # A role the task may not have is refused here, before any AWS call or record (task_roles.py).
        task_roles.enter_create(self.settings.task_role_arn_pattern, _execution_fields(key), key.attempt, request)
        connection = connection_kwargs(request.connection)
        connector = self.service.registry.get_connector(template.type, template.task_type_version)
        logs.add_keys(task_type=template.type)  # a task type the service serves: a bounded metric dimension
        connection = await self.service.secrets.complete(connector, template.type, connection)
        self.service.secrets.require(connector, template.type, connection)  # refused before any record is written
        if deadline_passed():  # no time to start a job and record it: start nothing
            raise deadline_exceeded("the caller's deadline passed before this CreateTask could start its job")
        try:
            inputs = literals.inputs_to_native(request.inputs, template.interface)
        except literals.LiteralConversionError as error:
            raise invalid_argument(str(error)) from None
        return NewTask(request, key, connector, connection, inputs, _new_record(request, key))

    # -- 2. claim ----------------------------------------------------------------------------------

    async def claim(self, task: NewTask) -> ClaimResult:
        """The attempt claimed (one conditional write), or the record of whoever holds it."""
        record = task.record
        # Another principal's action, or another task under this action's name: refused before
        # anything is written, so that a refused request leaves nothing behind to block the real ones.
        _check_other_attempts(record, await self.service.run_store(self.store.attempt_owners, record.action_id))
        # A connector whose look-up lags keeps its claim until a create killed mid-call has settled.
        settle = replay_settle_seconds(task.connector)
        lease = max(
            self.settings.create_claim_seconds, settle + self.settings.connector_timeout_seconds if settle else 0
        )
        return await self.service.run_store(self.store.claim, record, lease)

    # -- 3. the other attempts ---------------------------------------------------------------------

    async def older_attempts(self, task: NewTask, claim: ClaimResult) -> list[TaskRecord]:
        """The action's attempts older than this one (one Query), for superseding once this one is
        created. A CreateTask of an attempt older than one that exists (late, or re-sent) starts
        nothing: no executor would watch its job. From here the record stays until its job is
        known finished or cancelled."""
        record, took_over = task.record, claim.took_over
        attempts = [
            other
            for other in await self.service.run_store(self.store.attempts, record.action_id)
            if not other.withdrawn
        ]
        try:  # what the check before the claim saw may have changed since: a newer claim of another's
            _check_other_attempts(record, [other for other in attempts if other.attempt != record.attempt])
        except ConnectError as refused:
            if took_over:  # an earlier try of this attempt may have started a job: leave it for a canceller
                await self._release(record, refused.message)
            else:  # connector.create was never called for this claim: it leaves nothing to block others
                try:
                    await self.service.run_store(self.store.withdraw_claim, record, refused.message)
                except (ConnectError, RecordChanged) as error:  # its lease expires
                    logger.warning("could not withdraw the claim on %s: %s", record.name, error)
            raise
        newer = [other.attempt for other in attempts if other.attempt > record.attempt]
        if not newer:
            return [other for other in attempts if other.attempt < record.attempt]
        message = f"attempt {max(newer)} of this action exists; attempt {record.attempt} is not started"
        if took_over:  # an earlier try of this attempt may have started a job: leave it for a canceller
            await self._release(record, message)
        else:  # a fresh claim: connector.create was never called for this attempt
            try:
                await self.service.run_store(self.store.end_create, record, TaskExecution.ABORTED, message)
            except (ConnectError, RecordChanged) as error:  # its lease expires; a canceller replays create
                logger.warning("could not end the claim on %s: %s", record.name, error)
        raise failed_precondition(message)

    # -- 4. create ---------------------------------------------------------------------------------

    async def create(self, task: NewTask, claim: ClaimResult) -> Any:
        """The job's metadata, from ``connector.create`` with the attempt's idempotency token."""
        connector, request, record = task.connector, task.request, task.record
        # An earlier try of this attempt whose outcome is unknown keeps the outcome unknown, and its
        # job is found only by replaying create, within its window.
        known = not claim.took_over or claim.prior_create_error in REFUSED_CODES
        if not known:
            await self._refuse_past_replay_window(task)
        try:
            return await self.service.secrets.call(
                self.service.calls,
                connector,
                task.task_type,
                "create",
                task.connection,
                lambda kwargs: connector.create(
                    task_template=request.template,
                    output_prefix=request.output_prefix,
                    inputs=task.inputs,
                    task_execution_metadata=request.task_execution_metadata,
                    **kwargs,
                    idempotency_token=task.key.idempotency_token(self.settings.token_salt),
                ),
            )
        except ConnectError as error:
            # A job the connector finds again only by a look-up that lags must have time to show.
            unknown = not known or error.code in OUTCOME_UNKNOWN
            hold = replay_settle_seconds(connector) if unknown else 0.0
            await self._release(
                record, f"create failed ({error.code.value}): {error.message}", error.code.value if known else "", hold
            )
            raise

    async def _refuse_past_replay_window(self, task: NewTask) -> None:
        """A retry that took over a claim past its connector's replay window does not call create
        (it could start a second job): the record ends saying where the first try's job may be."""
        connector, record = task.connector, task.record
        if not past_replay_window(connector, record, self.settings, self.store.clock()):
            return
        token = task.key.idempotency_token(self.settings.token_salt)
        message = unreplayed_message(connector, record, task.request, token, self.settings, self.store.clock())
        try:
            await self.service.run_store(self.store.end_create, record, TaskExecution.ABORTED, message)
            report_unreplayed(record, message)
        except (ConnectError, RecordChanged) as error:  # its lease expires; a canceller finds it past the window too
            logger.warning("could not end the claim on %s: %s", record.name, error)
        raise failed_precondition(message)

    # -- 5. keep -----------------------------------------------------------------------------------

    async def keep(self, task: NewTask, meta: Any) -> TaskRecord:
        """The record with the job's metadata, ACTIVE and QUEUED: the task is created."""
        try:
            encoded = self._encode_meta(task.connector, task.record, meta)
        except ConnectError as problem:
            await self._cancel_unkept_job(task, task.record, meta, problem)
            raise
        try:
            return await self.service.run_store(
                self.store.finish_create,
                task.record,
                encoded,
                TaskExecution.QUEUED,
                _job_key(task.connector, meta),  # what the job's state-change events are matched by
            )
        except RecordChanged as changed:
            current = changed.current
            if current is not None and current.lease_owner == task.record.secret and current.superseded_by is not None:
                unkept = failed_precondition(
                    f"attempt {current.superseded_by} of this action started while this "
                    f"attempt was being created; this attempt's job is not kept"
                )
                await self._cancel_unkept_job(task, current, meta, unkept)
                raise unkept from None
            raise ConnectError(Code.ABORTED, "another CreateTask took over this task execution; retry") from None

    def _encode_meta(self, connector: AsyncConnector[Any], record: TaskRecord, meta: Any) -> bytes:
        if not hasattr(meta, "encode"):
            raise internal(f"connector {connector.name} returned {type(meta).__name__} from create, not a ResourceMeta")
        try:
            encoded = meta.encode()
        except Exception as error:
            log_connector_failure(connector, "metadata encode", error)
            raise internal(
                redact(f"connector {connector.name} returned metadata that does not encode: {error}")
            ) from None
        if not isinstance(encoded, bytes):
            raise internal(f"connector {connector.name} encoded its metadata as {type(encoded).__name__}, not bytes")
        self.store.check_metadata_fits(record, encoded)
        return encoded

    async def _cancel_unkept_job(self, task: NewTask, record: TaskRecord, meta: Any, problem: ConnectError) -> None:
        """create started a job whose metadata cannot be kept: stop it before answering the error."""
        connector = task.connector
        try:
            await self.service.calls.call(connector, "delete", connector.delete(resource_meta=meta, **task.connection))
        except ConnectError as error:
            await self._release(
                record,
                f"{problem.message}; cancelling its job failed ({error.message}), "
                "a newer attempt or the reaper will retry",
            )
            return
        try:
            await self.service.run_store(
                self.store.end_create, record, TaskExecution.ABORTED, f"{problem.message}; its job was cancelled"
            )
        except (ConnectError, RecordChanged) as error:  # the lease expires; a canceller finds the job again
            logger.warning("could not record that %s's job was cancelled: %s", record.name, error)

    # -- 6. supersede ------------------------------------------------------------------------------

    async def supersede(self, task: NewTask, created: TaskRecord, older: list[TaskRecord]) -> None:
        """The older attempts' jobs cancelled (a first attempt has none). The task is created
        whatever happens here: a failure is logged, and the reaper catches what is left."""
        if task.key.attempt == 0:
            return
        try:
            report = await self.service.canceller.supersede(created, older, task.connection)
            if report.cancelled or report.failed or report.skipped:
                logger.info("earlier attempts of %s: %s", created.name, report.as_dict())
        except ConnectError as error:  # the task is created: answer it; the reaper catches what is left
            logger.warning("could not look for earlier attempts of %s: %s", created.name, error.message)

    async def _release(self, record: TaskRecord, message: str, create_error: str = "", hold: float = 0.0) -> None:
        try:
            await self.service.run_store(self.store.release_claim, record, message, create_error, hold)
        except ConnectError as error:  # the lease then expires on its own
            logger.warning("could not release the claim on %s: %s", record.name, error.message)


def answer_existing(existing: TaskRecord, wanted: TaskRecord) -> pb.CreateTaskResponse:
    """The answer to a CreateTask whose attempt is claimed already: the task's handle when it is
    the same request's and its job is kept; otherwise why not."""
    caller.check_principal(existing, wanted.principal or "")
    if existing.withdrawn:  # a refused claim, replaced by the next claim
        raise unavailable("a CreateTask for this task execution was just refused; retry")
    if existing.category != wanted.category:
        raise failed_precondition(
            f"this task execution was created as task type {existing.task_type} "
            f"(version {existing.task_version}), not {wanted.task_type} (version {wanted.task_version})"
        )
    if existing.request_digest is not None and existing.request_digest != wanted.request_digest:
        raise failed_precondition(
            "this task execution was created with another request (template, inputs or "
            "output prefix); a retry must send the same one"
        )
    if existing.state == CLAIMED and existing.superseded_by is not None:
        raise failed_precondition(f"attempt {existing.superseded_by} of this action superseded this one")
    if existing.state == CLAIMED:
        raise unavailable("a CreateTask for this task execution is in progress; retry")
    if existing.resource_meta is None:
        raise failed_precondition(f"this task execution ended before its job could be tracked: {existing.message}")
    return pb.CreateTaskResponse(resource_meta=existing.handle.encode())


def _new_record(request: pb.CreateTaskRequest, key: TaskExecutionKey) -> TaskRecord:
    """The record a claim writes for ``request``: its own secret, the caller's principal, what a
    replayed create needs and what tells a retry of the same request from another."""
    template = request.template
    return TaskRecord(
        action_id=key.action_digest().hex(),
        attempt=key.attempt,
        secret=new_secret(),
        task_type=template.type,
        task_version=template.task_type_version,
        output_prefix=request.output_prefix,
        outputs_interface=template.interface.outputs.SerializeToString(),
        execution=_execution_fields(key),
        create_request=pack_create_request(request),
        request_digest=request_digest(request),
        principal=caller.principal(),
        task_digest=task_digest(request),
    )


def _check_attempt_number(attempt: int, max_attempts: int) -> None:
    """``invalid_argument`` for an attempt no executor makes: past the attempts the request itself
    allows (``max_attempts``, when sent), or past :data:`MAX_RETRY_ATTEMPT`."""
    if max_attempts > 0 and attempt >= max_attempts:
        raise invalid_argument(
            f"retry_attempt {attempt} is beyond task_execution_metadata.max_attempts {max_attempts} "
            f"(attempts count from 0)"
        )
    if attempt > MAX_RETRY_ATTEMPT:
        raise invalid_argument(f"retry_attempt {attempt} is over {MAX_RETRY_ATTEMPT}, more than any retry policy makes")


def _check_other_attempts(record: TaskRecord, others: Sequence[TaskRecord | AttemptOwner]) -> None:
    """Before a CreateTask claims ``record``'s attempt: every other attempt of its action (the same
    attempt too, for its principal) is the caller's, ``permission_denied`` otherwise, and runs the
    same task, ``failed_precondition`` otherwise (the same attempt's request is compared on the
    claim). Withdrawn claims started nothing and are passed by; records written before principals
    and task digests were kept are open."""
    counted = [other for other in others if not other.withdrawn]
    for other in counted:
        caller.check_principal(other, record.principal or "")
    for other in counted:
        if other.attempt == record.attempt or other.task_digest is None or record.task_digest is None:
            continue
        if other.task_digest != record.task_digest:
            raise failed_precondition(
                f"attempt {other.attempt} of this action runs another task (its template or inputs differ): "
                f"attempt {record.attempt} is not started, and no attempt is superseded by it"
            )


def _execution_fields(key: TaskExecutionKey) -> dict[str, str]:
    return {"org": key.org, "project": key.project, "domain": key.domain, "run": key.run, "action": key.action}


def _job_key(connector: AsyncConnector[Any], meta: Any) -> str | None:
    """The job's indexed key; None when ``job_key`` fails: the job started, so the task is kept."""
    try:
        return job_key_of(connector, meta)
    except Exception as error:
        log_connector_failure(connector, "job_key", error, after="; the task is kept, not indexed for events")
        return None


__all__ = ["MAX_RETRY_ATTEMPT", "OUTCOME_UNKNOWN", "Creator", "NewTask", "answer_existing"]
