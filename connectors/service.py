"""The service core: one method per RPC, called by every transport (Connect, REST, Lambda).

handler -> transport -> ConnectorService.<operation> -> registry -> connector, with the task
store beside it. Methods take and return flyteidl2 messages and raise ConnectError with the
right code; nothing else escapes (an unexpected error is logged with its stack trace and
answered as ``internal`` with the connector's message only). A record's states and the writes
between them are in :mod:`connectors.store.lifecycle`; connector calls run through
:mod:`connectors.connector_calls`; cancelling older attempts through :mod:`connectors.cancel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from . import caller, literals, task_roles
from .answers import stored_resource
from .cancel import (
    REFUSED_CODES,
    Canceller,
    pack_create_request,
    replay_settle_seconds,
    request_digest,
    task_digest,
)
from .connector import AsyncConnector
from .connector_calls import ConnectorCalls, connection_kwargs, deadline_passed, request_deadline
from .errors import (
    Code,
    ConnectError,
    deadline_exceeded,
    failed_precondition,
    internal,
    invalid_argument,
    permission_denied,
    unavailable,
    unimplemented,
)
from .job_events import job_key_of
from .observability import logs, metrics, observed
from .phase import phase_name
from .polling import Poller
from .registry import ConnectorRegistry
from .replay import past_replay_window, report_unreplayed, unreplayed_message
from .secrets import SecretResolver
from .settings import Settings
from .store import (
    ACTIVE,
    CLAIMED,
    AttemptOwner,
    RecordChanged,
    TaskExecutionKey,
    TaskHandle,
    TaskRecord,
    TaskStore,
    new_secret,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


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


class ConnectorService:
    def __init__(self, registry: ConnectorRegistry, store: TaskStore, settings: Settings | None = None) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings or Settings()
        self.calls = ConnectorCalls(self.settings)
        self.secrets = SecretResolver()
        self.canceller = Canceller(registry, store, self.calls, self.settings, self.secrets)
        self.poller = Poller(self)

    # -- AsyncConnectorService ---------------------------------------------------------------

    @observed("create")
    async def create_task(self, request: pb.CreateTaskRequest) -> pb.CreateTaskResponse:
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
        connector = self.registry.get_connector(template.type, template.task_type_version)
        logs.add_keys(task_type=template.type)  # a task type the service serves: a bounded metric dimension
        connection = await self.secrets.complete(connector, template.type, connection)
        self.secrets.require(connector, template.type, connection)  # refused before any record is written
        if deadline_passed():  # no time to start a job and record it: start nothing
            raise deadline_exceeded("the caller's deadline passed before this CreateTask could start its job")
        try:
            inputs = literals.inputs_to_native(request.inputs, template.interface)
        except literals.LiteralConversionError as error:
            raise invalid_argument(str(error)) from None

        record = TaskRecord(
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
        # Another principal's action, or another task under this action's name: refused before
        # anything is written, so that a refused request leaves nothing behind to block the real ones.
        _check_other_attempts(record, await self.run_store(self.store.attempt_owners, record.action_id))
        # A connector whose look-up lags keeps its claim until a create killed mid-call has settled.
        settle = replay_settle_seconds(connector)
        lease = max(
            self.settings.create_claim_seconds, settle + self.settings.connector_timeout_seconds if settle else 0
        )
        claim = await self.run_store(self.store.claim, record, lease)
        if not claim.claimed:
            return self._answer_duplicate_create(claim.record, record)
        # From here the record stays until its job is known finished or cancelled.
        older = await self._older_attempts(record, claim.took_over)
        # An earlier try whose outcome is unknown is found only by replaying create, within its window.
        if claim.took_over and claim.prior_create_error not in REFUSED_CODES:
            await self._refuse_past_replay_window(connector, record, request, key)
        try:
            meta = await self.secrets.call(
                self.calls,
                connector,
                template.type,
                "create",
                connection,
                lambda kwargs: connector.create(
                    task_template=template,
                    output_prefix=request.output_prefix,
                    inputs=inputs,
                    task_execution_metadata=request.task_execution_metadata,
                    **kwargs,
                    idempotency_token=key.idempotency_token(self.settings.token_salt),
                ),
            )
        except ConnectError as error:
            # An earlier try of this attempt whose outcome is unknown keeps the outcome unknown.
            known = not claim.took_over or claim.prior_create_error in REFUSED_CODES
            # A job the connector finds again only by a look-up that lags must have time to show.
            unknown = not known or error.code in OUTCOME_UNKNOWN
            hold = replay_settle_seconds(connector) if unknown else 0.0
            await self._release(
                record, f"create failed ({error.code.value}): {error.message}", error.code.value if known else "", hold
            )
            raise
        try:
            encoded = self._encode_meta(connector, record, meta)
        except ConnectError as problem:
            await self._cancel_unkept_job(connector, record, meta, connection, problem)
            raise
        try:
            created = await self.run_store(
                self.store.finish_create, record, encoded, TaskExecution.QUEUED, job_key_of(connector, meta)
            )
        except RecordChanged as changed:
            current = changed.current
            if current is not None and current.lease_owner == record.secret and current.superseded_by is not None:
                unkept = failed_precondition(
                    f"attempt {current.superseded_by} of this action started while this "
                    f"attempt was being created; this attempt's job is not kept"
                )
                await self._cancel_unkept_job(connector, current, meta, connection, unkept)
                raise unkept from None
            raise ConnectError(Code.ABORTED, "another CreateTask took over this task execution; retry") from None
        logger.info("created %s task %s", template.type, created.name)
        metrics.task_created(template.type)
        if key.attempt > 0:
            try:
                report = await self.canceller.supersede(created, older, connection)
                if report.cancelled or report.failed or report.skipped:
                    logger.info("earlier attempts of %s: %s", created.name, report.as_dict())
            except ConnectError as error:  # the task is created: answer it; the reaper catches what is left
                logger.warning("could not look for earlier attempts of %s: %s", created.name, error.message)
        return pb.CreateTaskResponse(resource_meta=created.handle.encode())

    async def _older_attempts(self, record: TaskRecord, took_over: bool) -> list[TaskRecord]:
        """The action's attempts older than this one (one Query), for superseding once this one is
        created. A CreateTask of an attempt older than one that exists (late, or re-sent) starts
        nothing: no executor would watch its job."""
        attempts = [
            other for other in await self.run_store(self.store.attempts, record.action_id) if not other.withdrawn
        ]
        try:  # what the check before the claim saw may have changed since: a newer claim of another's
            _check_other_attempts(record, [other for other in attempts if other.attempt != record.attempt])
        except ConnectError as refused:
            if took_over:  # an earlier try of this attempt may have started a job: leave it for a canceller
                await self._release(record, refused.message)
            else:  # connector.create was never called for this claim: it leaves nothing to block others
                try:
                    await self.run_store(self.store.withdraw_claim, record, refused.message)
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
                await self.run_store(self.store.end_create, record, TaskExecution.ABORTED, message)
            except (ConnectError, RecordChanged) as error:  # its lease expires; a canceller replays create
                logger.warning("could not end the claim on %s: %s", record.name, error)
        raise failed_precondition(message)

    async def _refuse_past_replay_window(
        self, connector: AsyncConnector[Any], record: TaskRecord, request: pb.CreateTaskRequest, key: TaskExecutionKey
    ) -> None:
        """A retry that took over a claim past its connector's replay window does not call create
        (it could start a second job): the record ends saying where the first try's job may be."""
        if not past_replay_window(connector, record, self.settings, self.store.clock()):
            return
        token = key.idempotency_token(self.settings.token_salt)
        message = unreplayed_message(connector, record, request, token, self.settings, self.store.clock())
        try:
            await self.run_store(self.store.end_create, record, TaskExecution.ABORTED, message)
            report_unreplayed(record, message)
        except (ConnectError, RecordChanged) as error:  # its lease expires; a canceller finds it past the window too
            logger.warning("could not end the claim on %s: %s", record.name, error)
        raise failed_precondition(message)

    def _encode_meta(self, connector: AsyncConnector[Any], record: TaskRecord, meta: Any) -> bytes:
        if not hasattr(meta, "encode"):
            raise internal(f"connector {connector.name} returned {type(meta).__name__} from create, not a ResourceMeta")
        try:
            encoded = meta.encode()
        except Exception as error:
            logger.exception("connector %s metadata does not encode", connector.name)
            raise internal(f"connector {connector.name} returned metadata that does not encode: {error}") from None
        if not isinstance(encoded, bytes):
            raise internal(f"connector {connector.name} encoded its metadata as {type(encoded).__name__}, not bytes")
        self.store.check_metadata_fits(record, encoded)
        return encoded

    async def _cancel_unkept_job(
        self,
        connector: AsyncConnector[Any],
        record: TaskRecord,
        meta: Any,
        connection: dict[str, str],
        problem: ConnectError,
    ) -> None:
        """create started a job whose metadata cannot be kept: stop it before answering the error."""
        try:
            await self.calls.call(connector, "delete", connector.delete(resource_meta=meta, **connection))
        except ConnectError as error:
            await self._release(
                record,
                f"{problem.message}; cancelling its job failed ({error.message}), "
                "a newer attempt or the reaper will retry",
            )
            return
        try:
            await self.run_store(
                self.store.end_create, record, TaskExecution.ABORTED, f"{problem.message}; its job was cancelled"
            )
        except (ConnectError, RecordChanged) as error:  # the lease expires; a canceller finds the job again
            logger.warning("could not record that %s's job was cancelled: %s", record.name, error)

    async def _release(self, record: TaskRecord, message: str, create_error: str = "", hold: float = 0.0) -> None:
        try:
            await self.run_store(self.store.release_claim, record, message, create_error, hold)
        except ConnectError as error:  # the lease then expires on its own
            logger.warning("could not release the claim on %s: %s", record.name, error.message)

    def _answer_duplicate_create(self, existing: TaskRecord, wanted: TaskRecord) -> pb.CreateTaskResponse:
        _check_principal(existing, wanted.principal or "")
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

    @observed("get")
    async def get_task(self, request: pb.GetTaskRequest) -> pb.GetTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        # Completed from AWS by the poller, only for a connector call: a transient failure of
        # Secrets Manager is then ridden out as one of the remote's (polling.py).
        connection = connection_kwargs(request.connection)
        fresh: pb.Resource | None = None
        if record.state == ACTIVE:
            record, fresh, answer = await self.poller.poll(connector, record, connection)
            if answer is not None:
                return answer
        if record.phase == TaskExecution.SUCCEEDED and (fresh is None or fresh.phase != TaskExecution.SUCCEEDED):
            fresh = await self.poller.read_outputs(connector, record, connection)
        return pb.GetTaskResponse(resource=stored_resource(record, fresh))

    @observed("delete")
    async def delete_task(self, request: pb.DeleteTaskRequest) -> pb.DeleteTaskResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if record.state != ACTIVE:
            return pb.DeleteTaskResponse()  # ended, or a canceller is already stopping it
        connection = await self.secrets.complete(connector, record.task_type, connection_kwargs(request.connection))
        meta = self.calls.decode_meta(connector, record)
        try:  # marked first: a poll that then sees the job cancelled knows who stopped it
            record = await self.run_store(self.store.mark_deleting, record)
        except RecordChanged as changed:
            if changed.current is None or changed.current.state != ACTIVE:
                return pb.DeleteTaskResponse()  # it ended, or a canceller is stopping it
            record = changed.current
        await self.secrets.call(
            self.calls,
            connector,
            record.task_type,
            "delete",
            connection,
            lambda kwargs: connector.delete(resource_meta=meta, **kwargs),
        )
        with contextlib.suppress(RecordChanged):  # it ended or a canceller took it: the job is stopped either way
            await self.run_store(self.store.delete_task, record, TaskExecution.ABORTED, "deleted by DeleteTask")
        return pb.DeleteTaskResponse()

    @observed("get_metrics")
    async def get_task_metrics(self, request: pb.GetTaskMetricsRequest) -> pb.GetTaskMetricsResponse:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if not _overrides(connector, "get_metrics"):
            raise unimplemented(f"connector {connector.name} does not serve metrics")
        meta = self.calls.decode_meta(connector, record)
        secrets = await self.secrets.complete(connector, record.task_type, {})
        self.secrets.require(connector, record.task_type, secrets)
        kwargs = {
            **secrets,
            "queries": list(request.queries),
            "start_time": request.start_time,
            "end_time": request.end_time,
            "step": request.step,
        }
        return await self.calls.call(connector, "get_metrics", connector.get_metrics(resource_meta=meta, **kwargs))

    @observed("get_logs")
    async def get_task_logs(self, request: pb.GetTaskLogsRequest) -> AsyncIterator[pb.GetTaskLogsResponse]:
        record, connector = await self._find(request.resource_meta, request.task_category)
        if not _overrides(connector, "get_logs"):
            raise unimplemented(f"connector {connector.name} does not serve logs")
        meta = self.calls.decode_meta(connector, record)
        secrets = await self.secrets.complete(connector, record.task_type, {})
        self.secrets.require(connector, record.task_type, secrets)
        try:
            result = connector.get_logs(resource_meta=meta, token=request.token, lines=request.lines, **secrets)
        except NotImplementedError:
            raise unimplemented(f"connector {connector.name} does not implement get_logs") from None
        except Exception as error:  # raised before any await: the same redacting report as a call's failure
            raise self.calls.failure(connector, "get_logs", error) from None
        async for message in self.calls.stream(connector, "get_logs", result):
            yield message

    # -- ConnectorMetadataService ------------------------------------------------------------

    @observed("get_connector")
    async def get_connector(self, request: pb.GetConnectorRequest) -> pb.GetConnectorResponse:
        if not request.name:
            raise invalid_argument("GetConnectorRequest.name is required")
        return pb.GetConnectorResponse(connector=self.registry.get_connector_metadata(request.name))

    @observed("list_connectors")
    async def list_connectors(self, request: pb.ListConnectorsRequest) -> pb.ListConnectorsResponse:
        return pb.ListConnectorsResponse(connectors=self.registry.list_connectors())

    # -- helpers -------------------------------------------------------------------------------

    async def _find(self, resource_meta: bytes, category: pb.TaskCategory) -> tuple[TaskRecord, AsyncConnector[Any]]:
        handle = TaskHandle.decode(resource_meta)
        if not category.name:
            raise invalid_argument("task_category.name is required")
        record = await self.run_store(self.store.load, handle)
        _check_principal(record, caller.principal())
        if record.category != (category.name, category.version):
            raise invalid_argument(
                f"task_category {category.name} (version {category.version}) does not match this task's "
                f"{record.task_type} (version {record.task_version})"
            )
        connector = self.registry.get_connector(record.task_type, record.task_version)
        logs.task_keys(record.task_type, record.execution, record.attempt)
        task_roles.enter_record(self.settings.task_role_arn_pattern, record.execution, record.attempt)
        return record, connector

    async def run_store(self, method: Callable[..., T], *args: Any) -> T:
        """Run a (blocking) store call off the event loop."""
        return await asyncio.to_thread(method, *args)


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


def _check_principal(record: TaskRecord | AttemptOwner, principal: str) -> None:
    """``permission_denied`` unless ``principal`` created ``record`` (connectors/caller.py). A
    record written before principals were kept (None) is open to any caller."""
    if record.principal is not None and record.principal != principal:
        raise permission_denied(
            f"attempt {record.attempt} of this action was created by another principal: "
            "only the principal that created a task may read it, delete it or start a newer attempt of it"
        )


def _check_other_attempts(record: TaskRecord, others: Sequence[TaskRecord | AttemptOwner]) -> None:
    """Before a CreateTask claims ``record``'s attempt: every other attempt of its action (the same
    attempt too, for its principal) is the caller's, ``permission_denied`` otherwise, and runs the
    same task, ``failed_precondition`` otherwise (the same attempt's request is compared on the
    claim). Withdrawn claims started nothing and are passed by; records written before principals
    and task digests were kept are open."""
    counted = [other for other in others if not other.withdrawn]
    for other in counted:
        _check_principal(other, record.principal or "")
    for other in counted:
        if other.attempt == record.attempt or other.task_digest is None or record.task_digest is None:
            continue
        if other.task_digest != record.task_digest:
            raise failed_precondition(
                f"attempt {other.attempt} of this action runs another task (its template or inputs differ): "
                f"attempt {record.attempt} is not started, and no attempt is superseded by it"
            )


def _overrides(connector: AsyncConnector[Any], method: str) -> bool:
    return getattr(type(connector), method) is not getattr(AsyncConnector, method)


def _execution_fields(key: TaskExecutionKey) -> dict[str, str]:
    return {"org": key.org, "project": key.project, "domain": key.domain, "run": key.run, "action": key.action}


__all__ = ["ConnectorService", "connection_kwargs", "phase_name", "request_deadline"]
