"""The task store: task records in one DynamoDB table, written only by conditional writes.

Every write states what it expects the record to be (absent, claimed by this caller, at this
version), so two invocations racing on one task can never both win, and a crash between two
writes leaves a record that the next call recognises and resumes. Botocore's standard retry
mode retries throttling with backoff; what still fails answers ``unavailable``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ConnectError, internal, not_found, resource_exhausted, unavailable
from ..phase import is_terminal_phase
from .handle import TaskHandle
from .record import ACTIVE_SHARDS, CREATED, CREATING, TaskRecord

logger = logging.getLogger(__name__)

ACTIVE_INDEX = "active-by-poll"
_DAY = 86400.0

# DynamoDB refuses an item over 400 KB, and a refused update can leave nothing usable behind:
# a record is checked to fit before its first write, with room kept for what later updates add
# (a message and notes, which are cut to these sizes when stored; answers keep them whole).
MAX_ITEM_BYTES = 400 * 1024
MESSAGE_BYTES = 16 * 1024
NOTE_BYTES = 1024
MAX_NOTES = 20
_LATER_UPDATES_BYTES = MESSAGE_BYTES + 16 * 1024

# Fail fast: the executor gives CreateTask 10 s in all, and an unreachable table should answer
# `unavailable` well within that, after botocore's standard retries (which back off on throttling).
# A table that accepts connections but never answers costs attempts x read_timeout plus the
# backoffs (up to 1 + 2 s): 4 x 4 s took 20 s; 3 x 1.5 s answers within about 7.5 s
# (tests/functional/test_outage.py). DynamoDB answers single-item calls in milliseconds.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=1,
    read_timeout=1.5,
)

_RETRYABLE_ERRORS = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


class RecordChanged(Exception):
    """A conditional write lost: the record is not what the caller read. Carries the current item."""

    def __init__(self, current: TaskRecord | None) -> None:
        super().__init__("task record changed")
        self.current = current


@dataclass
class ClaimResult:
    record: TaskRecord
    claimed: bool  # False: someone else holds (or finished) the claim; record is theirs


def new_client(endpoint_url: str | None = None) -> Any:
    """A DynamoDB client; AWS_ENDPOINT_URL_DYNAMODB (a local server) is honoured by botocore."""
    return boto3.client("dynamodb", endpoint_url=endpoint_url, config=CLIENT_CONFIG)


class TaskStore:
    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        active_retention_days: float = 30.0,
        terminal_retention_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._active_retention = active_retention_days * _DAY
        self._terminal_retention = terminal_retention_days * _DAY
        self.clock = clock

    # -- calls -----------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(TableName=self.table_name, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                item = error.response.get("Item")
                raise RecordChanged(TaskRecord.from_item(item) if item else None) from None
            if code in _RETRYABLE_ERRORS:
                logger.warning("DynamoDB %s throttled or unavailable: %s", operation, code)
                raise unavailable(f"the task store is busy ({code}); retry") from None
            if code == "ResourceNotFoundException":
                logger.error("DynamoDB table %s does not exist", self.table_name)
                raise internal(f"the task table {self.table_name!r} does not exist") from None
            logger.exception("DynamoDB %s failed", operation)
            raise internal(f"the task store failed ({code})") from None
        except BotoCoreError as error:
            logger.warning("DynamoDB %s unreachable: %s", operation, type(error).__name__)
            raise unavailable("the task store is unreachable; retry") from None

    def _expiry(self, record: TaskRecord, now: float) -> int:
        retention = self._terminal_retention if is_terminal_phase(record.phase) else self._active_retention
        return int(now + retention)

    # -- create ----------------------------------------------------------------------------

    def check_fits(self, record: TaskRecord, resource_meta: bytes = b"") -> None:
        """``resource_exhausted`` unless the record, with this connector metadata, fits in one item."""
        size = _item_bytes(record.to_item()) + len("resource_meta") + len(resource_meta) + _LATER_UPDATES_BYTES
        if size > MAX_ITEM_BYTES:
            raise resource_exhausted(
                f"this task's record would need {size} bytes (its output_prefix, interface, ids and the "
                f"connector's {len(resource_meta)} bytes of metadata); the task store holds {MAX_ITEM_BYTES}"
            )

    def claim(self, record: TaskRecord, claim_seconds: float) -> ClaimResult:
        """Write a new claim for ``record``'s key, or take over an expired one; else return the holder's."""
        now = self.clock()
        record.state = CREATING
        record.created_at = record.updated_at = now
        record.claim_expires_at = now + claim_seconds
        record.expires_at = self._expiry(record, now)
        self.check_fits(record)
        try:
            self._call(
                "put_item",
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(action_id) OR (#state = :creating AND claim_expires_at < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":creating": {"S": CREATING}, ":now": {"N": repr(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except RecordChanged as changed:
            if changed.current is None:  # pragma: no cover - DynamoDB always returns the old item
                raise unavailable("a CreateTask for this task execution is in progress; retry") from None
            if changed.current.secret == record.secret:
                # botocore retried this very put after its answer was lost: the claim is ours.
                return ClaimResult(record, claimed=True)
            return ClaimResult(changed.current, claimed=False)
        return ClaimResult(record, claimed=True)

    def finish_create(self, record: TaskRecord, resource_meta: bytes, phase: int) -> TaskRecord:
        """Turn this caller's claim into a created task; RecordChanged if the claim was lost.

        The caller checks ``check_fits(record, resource_meta)`` first, while it can still release
        its claim (CreateTask does, before this write).
        """
        now = self.clock()
        shard = f"active#{int.from_bytes(record.secret[:2], 'big') % ACTIVE_SHARDS}"
        try:
            result = self._finish(record, resource_meta, phase, now, shard)
        except RecordChanged as changed:
            current = changed.current
            if current is not None and current.secret == record.secret and current.state == CREATED:
                return current  # botocore retried this very update after its answer was lost
            raise
        return TaskRecord.from_item(result["Attributes"])

    def _finish(self, record: TaskRecord, resource_meta: bytes, phase: int, now: float, shard: str) -> dict[str, Any]:
        return self._call(
            "update_item",
            Key=self._key(record.action_id, record.attempt),
            UpdateExpression=(
                "SET #state = :created, resource_meta = :meta, phase = :phase, updated_at = :now, "
                "polled_at = :now, active_shard = :shard, version = version + :one REMOVE claim_expires_at"
            ),
            ConditionExpression="#state = :creating AND secret = :secret",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":created": {"S": CREATED},
                ":creating": {"S": CREATING},
                ":secret": {"B": record.secret},
                ":meta": {"B": resource_meta},
                ":phase": {"N": str(phase)},
                ":now": {"N": repr(now)},
                ":shard": {"S": shard},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def release_claim(self, record: TaskRecord) -> None:
        """Remove this caller's claim after connector.create failed, so that a retry starts clean."""
        try:
            self._call(
                "delete_item",
                Key=self._key(record.action_id, record.attempt),
                ConditionExpression="#state = :creating AND secret = :secret",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":creating": {"S": CREATING}, ":secret": {"B": record.secret}},
            )
        except RecordChanged:
            logger.warning("claim on %s/%s was taken over before it could be released", record.action_id, record.attempt)

    # -- read ------------------------------------------------------------------------------

    def load(self, handle: TaskHandle) -> TaskRecord:
        """The record a handle names (strongly consistent); ``not_found`` if absent or forged."""
        result = self._call("get_item", Key=self._key(handle.action_id, handle.attempt), ConsistentRead=True)
        item = result.get("Item")
        if item is None:
            raise not_found("no task with this resource_meta: it never existed or its record has expired")
        record = TaskRecord.from_item(item)
        if not handle.matches(record.secret):
            raise not_found("no task with this resource_meta: it never existed or its record has expired")
        if record.state != CREATED:
            raise unavailable("this task is still being created; retry")
        return record

    def attempts(self, action_id: str) -> list[TaskRecord]:
        """Every attempt of one action, oldest first."""
        result = self._call(
            "query",
            KeyConditionExpression="action_id = :a",
            ExpressionAttributeValues={":a": {"S": action_id}},
            ConsistentRead=True,
        )
        return [TaskRecord.from_item(item) for item in result.get("Items", [])]

    def active_polled_before(self, cutoff: float) -> Iterator[TaskRecord]:
        """Active tasks whose last poll is older than ``cutoff``, from the sparse index."""
        for shard in range(ACTIVE_SHARDS):
            kwargs: dict[str, Any] = {
                "IndexName": ACTIVE_INDEX,
                "KeyConditionExpression": "active_shard = :s AND polled_at < :cutoff",
                "ExpressionAttributeValues": {":s": {"S": f"active#{shard}"}, ":cutoff": {"N": repr(cutoff)}},
            }
            while True:
                page = self._call("query", **kwargs)
                for item in page.get("Items", []):
                    yield TaskRecord.from_item(item)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- update ----------------------------------------------------------------------------

    def record_poll(self, record: TaskRecord, phase: int, message: str, note: str | None = None) -> TaskRecord:
        """Note an executor's poll, and the phase/message when they changed.

        A phase change is conditional on the version read, and a terminal record never changes
        phase again: RecordChanged carries the current record when another call got there first.
        """
        now = self.clock()
        message, note = _clip(message, MESSAGE_BYTES), _clip(note, NOTE_BYTES) if note else note
        names = {"#phase": "phase", "#message": "message"}
        values: dict[str, Any] = {":now": {"N": repr(now)}}
        # Every poll pushes expiry on: a task that runs for months keeps its record.
        terminal = is_terminal_phase(phase)
        expires = now + (self._terminal_retention if terminal else self._active_retention)
        values[":expires"] = {"N": str(int(expires))}
        sets = ["polled_at = :now", "expires_at = :expires"]
        removes: list[str] = []
        condition = "attribute_exists(action_id)"
        if phase != record.phase or message != record.message or note:
            sets += ["#phase = :phase", "#message = :message", "updated_at = :now", "version = version + :one"]
            values.update({":phase": {"N": str(phase)}, ":message": {"S": message}, ":one": {"N": "1"}})
            values[":version"] = {"N": str(record.version)}
            condition = "version = :version"
            if terminal:
                removes += ["active_shard", "polled_at"]
                sets.remove("polled_at = :now")
            if note and len(record.notes) < MAX_NOTES:  # a reaper retrying for weeks must not fill the item
                sets.append("notes = list_append(if_not_exists(notes, :empty), :note)")
                values.update({":note": {"L": [{"S": note}]}, ":empty": {"L": []}})
        elif is_terminal_phase(record.phase):
            return record
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        result = self._call(
            "update_item",
            Key=self._key(record.action_id, record.attempt),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={k: v for k, v in names.items() if k in expression},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return TaskRecord.from_item(result["Attributes"])

    @staticmethod
    def _key(action_id: str, attempt: int) -> dict[str, Any]:
        return {"action_id": {"S": action_id}, "attempt": {"N": str(attempt)}}

    # -- schema (local development and tests; template.yaml defines the deployed table) ---------

    def create_table(self) -> None:
        """Create the table as template.yaml does (key, sparse index); a no-op if it exists."""
        try:
            self._client.create_table(
                TableName=self.table_name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "action_id", "AttributeType": "S"},
                    {"AttributeName": "attempt", "AttributeType": "N"},
                    {"AttributeName": "active_shard", "AttributeType": "S"},
                    {"AttributeName": "polled_at", "AttributeType": "N"},
                ],
                KeySchema=[
                    {"AttributeName": "action_id", "KeyType": "HASH"},
                    {"AttributeName": "attempt", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": ACTIVE_INDEX,
                        "KeySchema": [
                            {"AttributeName": "active_shard", "KeyType": "HASH"},
                            {"AttributeName": "polled_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            return
        self._client.get_waiter("table_exists").wait(TableName=self.table_name)
        self._client.update_time_to_live(
            TableName=self.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[: limit - 3].decode("utf-8", "ignore") + "..."


def _item_bytes(item: dict[str, Any]) -> int:
    """An upper bound of an item's size as DynamoDB counts it: names and values."""
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind in ("B", "N"):
        return len(inner)
    if kind == "M":
        return 3 + len(inner) + _item_bytes(inner)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(item) for item in inner)
    return 1


__all__ = ["ClaimResult", "ConnectError", "RecordChanged", "TaskStore", "new_client"]
