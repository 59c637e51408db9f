"""The task record: one DynamoDB item per attempt of an action.

Key: ``action_id`` (a digest of org/project/domain/run/action) and ``attempt`` (the retry
attempt), so every attempt of one action is one Query away. ``active_shard``/``heartbeat_at``
are set only while the task is not ended: the sparse index ``active-by-heartbeat`` lists those
tasks by when an executor last showed it was watching them. Its states and the writes between
them are in :mod:`.lifecycle`. Connection secrets are never part of a record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from flyteidl2.connector.connector_pb2 import TaskExecutionMetadata

from .handle import TaskHandle

# The states of a record (lifecycle.py has the transitions between them).
CLAIMED = "claimed"  # a CreateTask holds the lease: connector.create may have been called
ACTIVE = "active"  # connector.create answered; resource_meta is set; polls move its phase
CANCELLING = "cancelling"  # a canceller (reaper, newer attempt) holds the lease and is stopping the job
ENDED = "ended"  # the job is known finished or cancelled: the phase never changes again

ACTIVE_SHARDS = 8


@dataclass(frozen=True)
class TaskExecutionKey:
    """Who a task runs for: the executor's task execution id, flattened."""

    org: str = ""
    project: str = ""
    domain: str = ""
    run: str = ""
    action: str = ""
    attempt: int = 0

    @classmethod
    def from_metadata(cls, metadata: TaskExecutionMetadata) -> TaskExecutionKey | None:
        """The key of a request's task execution id, or None when the request carries none."""
        task_execution_id = metadata.task_execution_id
        node = task_execution_id.node_execution_id
        execution = node.execution_id
        if not (execution.name or node.node_id):
            return None
        return cls(
            org=execution.org,
            project=execution.project,
            domain=execution.domain,
            run=execution.name,
            action=node.node_id,
            attempt=task_execution_id.retry_attempt,
        )

    def action_digest(self) -> bytes:
        parts = [self.org, self.project, self.domain, self.run, self.action]
        return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16).digest()

    def idempotency_token(self, salt: str = "") -> str:
        """Deterministic per attempt: the same on every retry of one CreateTask, 32 hex chars.
        ``salt`` (the deployment's, IDEMPOTENCY_TOKEN_SALT) keeps two deployments that share an
        AWS account from finding each other's jobs for the same run name."""
        parts: list[object] = [self.org, self.project, self.domain, self.run, self.action, self.attempt]
        if salt:
            parts.append(salt)
        return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16, person=b"flyte-idem").hexdigest()


@dataclass
class TaskRecord:
    action_id: str
    attempt: int
    secret: bytes
    task_type: str
    task_version: int
    state: str = CLAIMED
    phase: int = 0
    message: str = ""
    resource_meta: bytes | None = None
    output_prefix: str = ""
    outputs_interface: bytes = b""
    execution: dict[str, str] = field(default_factory=dict)
    # The attempt's first claim, just before its first create; a takeover keeps it (the replay
    # window, replay.py, counts from it).
    created_at: float = 0.0
    updated_at: float = 0.0
    heartbeat_at: float | None = None
    lease_owner: bytes | None = None
    lease_expires_at: float | None = None
    # While claimed: the CreateTaskRequest (less its connection), zlib-compressed, so that a
    # canceller can replay connector.create with this attempt's idempotency token to find the job.
    create_request: bytes | None = None
    superseded_by: int | None = None  # a newer attempt marked this claim while its create ran
    create_error: str | None = None  # the code connector.create failed with, when it failed
    request_digest: bytes | None = None  # of the CreateTaskRequest less its connection: retries must match
    # Who created it (connectors/caller.py): only that principal may read it, delete it or start a
    # newer attempt of its action. "" for a caller without one (connectors serve); None (absent) in
    # a record written before principals were kept, which stays open to any caller.
    principal: str | None = None
    # Of what every attempt of one action shares (the template and inputs, not the output prefix):
    # an attempt whose task differs from another attempt's is refused (connectors/cancel.py).
    task_digest: bytes | None = None
    # A claim ended by a CreateTask refused before connector.create (another principal's or another
    # task's attempt appeared meanwhile): it started nothing, blocks nothing, and a claim replaces it.
    withdrawn: bool | None = None
    expires_at: int | None = None
    version: int = 1
    active_shard: str | None = None
    notes: list[str] = field(default_factory=list)
    # Since when every status read of the job has failed in passing (throttled, unavailable, a
    # deadline); None once one succeeds. GetTask answers the stored phase meanwhile (polling.py).
    status_failing_since: float | None = None
    # When a poll last took the turn to read the job's status (at most one per interval).
    status_read_at: float | None = None
    # Set by DeleteTask before it stops the job: a poll that then reads the job cancelled knows
    # this service stopped it (ABORTED), not AWS or a person (FAILED, polling.py).
    delete_requested_at: float | None = None
    # The key the job's state-change events carry (connectors/job_events.py), indexed (JOB_INDEX):
    # set at create for a connector with events, so an event finds its task with one query.
    job_key: str | None = None
    # When an event last told this record the job's status (this service's clock), and the
    # event's own time: an event older than the last one applied moves nothing.
    status_pushed_at: float | None = None
    status_event_at: float | None = None
    # The log links the last status read reported (an event updates them), so that an answer from
    # the record carries them too: serialized TaskLogs, at most LOG_LINKS_BYTES (log_links.py).
    log_links: bytes | None = None

    @property
    def handle(self) -> TaskHandle:
        return TaskHandle(bytes.fromhex(self.action_id), self.attempt, self.secret)

    @property
    def category(self) -> tuple[str, int]:
        return (self.task_type, self.task_version)

    @property
    def name(self) -> str:
        """How logs and notes name this task: run/action/attempt, or the key when it has none."""
        if self.execution.get("run") or self.execution.get("action"):
            return f"{self.execution.get('run', '')}/{self.execution.get('action', '')}/{self.attempt}"
        return f"{self.action_id}/{self.attempt}"

    @property
    def key(self) -> TaskExecutionKey:
        return TaskExecutionKey(
            **{k: self.execution.get(k, "") for k in ("org", "project", "domain", "run", "action")},
            attempt=self.attempt,
        )

    def lease_expired(self, now: float) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at < now

    def to_item(self) -> dict[str, dict[str, Any]]:
        item: dict[str, dict[str, Any]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            item[f.name] = _to_attribute(f.name, value)
        return item

    @classmethod
    def from_item(cls, item: dict[str, dict[str, Any]]) -> TaskRecord:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in item:
                kwargs[f.name] = _from_attribute(f.name, item[f.name])
        return cls(**kwargs)


_INT_FIELDS = {"attempt", "task_version", "phase", "version", "expires_at", "superseded_by"}
_FLOAT_FIELDS = {
    "created_at",
    "updated_at",
    "heartbeat_at",
    "lease_expires_at",
    "status_failing_since",
    "status_read_at",
    "status_pushed_at",
    "status_event_at",
}


def _to_attribute(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: {"S": v} for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [{"S": v} for v in value]}
    raise TypeError(f"cannot store {name}={value!r}")


def _from_attribute(name: str, attribute: dict[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "N":
        return int(value) if name in _INT_FIELDS else float(value)
    if kind == "M":
        return {k: v["S"] for k, v in value.items()}
    if kind == "L":
        return [v["S"] for v in value]
    return value
