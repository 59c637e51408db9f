"""The task table: DynamoDB calls, their errors as Connect codes, the reads, and the schema.

Writes are the lifecycle's (:mod:`.lifecycle`), each one conditional. Botocore's standard retry
mode retries throttling with backoff; what still fails answers ``unavailable``.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import internal, not_found, unavailable
from ..observability import tracing
from .handle import TaskHandle
from .record import ACTIVE_SHARDS, CLAIMED, TaskRecord

logger = logging.getLogger(__name__)

# Sparse: only records that are not ended carry active_shard and heartbeat_at. It projects the
# keys only: the reaper reads a task's key and heartbeat there, then claims it with a
# conditional write that answers the whole record.
ACTIVE_INDEX = "active-by-heartbeat"
# Sparse, keys only: the tasks whose connector's remote publishes state-change events, by the
# key those events carry (a job id, an ARN), so that an event leads to its task with one query.
JOB_INDEX = "by-job-key"

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


@dataclass(frozen=True)
class StaleTask:
    """An index entry: a task not ended whose heartbeat is older than the reaper's cutoff."""

    action_id: str
    attempt: int
    heartbeat_at: float


@dataclass(frozen=True)
class AttemptOwner:
    """Who created one attempt of an action, and for which task: what a CreateTask checks of
    the action's other attempts before it claims its own (TaskRecord has the same attributes)."""

    attempt: int
    principal: str | None
    task_digest: bytes | None
    withdrawn: bool | None


def new_client(endpoint_url: str | None = None) -> Any:
    """A DynamoDB client; AWS_ENDPOINT_URL_DYNAMODB (a local server) is honoured by botocore."""
    return boto3.client("dynamodb", endpoint_url=endpoint_url, config=CLIENT_CONFIG)


class TaskTable:
    def __init__(self, table_name: str, client: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self._client = client
        self.clock = clock

    # -- calls -----------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            with tracing.subsegment(f"store {operation}", operation=operation):
                return getattr(self._client, operation)(TableName=self.table_name, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                item = error.response.get("Item")
                raise RecordChanged(TaskRecord.from_item(item) if item else None) from None
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            # AWS's server errors whatever their code (its common InternalFailure, ServiceUnavailable):
            # the table's bad moment, as botocore itself reads them when it retries.
            if code in _RETRYABLE_ERRORS or status >= 500:
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

    def _update(self, record: TaskRecord, update: str, condition: str, values: dict[str, Any]) -> TaskRecord:
        """One conditional UpdateItem on ``record``'s key; the new record, or RecordChanged with
        the current one."""
        expressions = update + " " + condition
        names = {name: name[1:] for name in ("#state", "#phase", "#message") if name in expressions}
        # Transitions build their values from shared parts; DynamoDB refuses a value left unused.
        values = {
            name: value
            for name, value in values.items()
            if re.search(re.escape(name) + r"(?![A-Za-z0-9_])", expressions)
        }
        result = self._call(
            "update_item",
            Key=self._key(record.action_id, record.attempt),
            UpdateExpression=update,
            ConditionExpression=condition,
            **({"ExpressionAttributeNames": names} if names else {}),
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return TaskRecord.from_item(result["Attributes"])

    @staticmethod
    def _key(action_id: str, attempt: int) -> dict[str, Any]:
        return {"action_id": {"S": action_id}, "attempt": {"N": str(attempt)}}

    # -- reads -----------------------------------------------------------------------------

    def load(self, handle: TaskHandle) -> TaskRecord:
        """The record a handle names (strongly consistent); ``not_found`` if absent or forged."""
        result = self._call("get_item", Key=self._key(handle.action_id, handle.attempt), ConsistentRead=True)
        item = result.get("Item")
        if item is None:
            raise not_found("no task with this resource_meta: it never existed or its record has expired")
        record = TaskRecord.from_item(item)
        if not handle.matches(record.secret):
            raise not_found("no task with this resource_meta: it never existed or its record has expired")
        if record.state == CLAIMED:  # pragma: no cover - a handle is issued only once the claim is finished
            raise unavailable("this task is still being created; retry")
        return record

    def attempts(self, action_id: str) -> list[TaskRecord]:
        """Every attempt of one action, oldest first (one strongly consistent Query)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "action_id = :a",
            "ExpressionAttributeValues": {":a": {"S": action_id}},
            "ConsistentRead": True,
        }
        records: list[TaskRecord] = []
        while True:
            page = self._call("query", **kwargs)
            records += [TaskRecord.from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def attempt_owners(self, action_id: str) -> list[AttemptOwner]:
        """Every attempt of one action, oldest first, with only its owner and task digest (one
        strongly consistent Query that reads those attributes, not the records' requests)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "action_id = :a",
            "ExpressionAttributeValues": {":a": {"S": action_id}},
            "ProjectionExpression": "#attempt, #principal, #task, #withdrawn",
            "ExpressionAttributeNames": {
                "#attempt": "attempt",
                "#principal": "principal",
                "#task": "task_digest",
                "#withdrawn": "withdrawn",
            },
            "ConsistentRead": True,
        }
        owners: list[AttemptOwner] = []
        while True:
            page = self._call("query", **kwargs)
            owners += [
                AttemptOwner(
                    attempt=int(item["attempt"]["N"]),
                    principal=item["principal"]["S"] if "principal" in item else None,
                    task_digest=item["task_digest"]["B"] if "task_digest" in item else None,
                    withdrawn=item["withdrawn"]["BOOL"] if "withdrawn" in item else None,
                )
                for item in page.get("Items", [])
            ]
            if "LastEvaluatedKey" not in page:
                return owners
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def records_of_job(self, job_key: str, limit: int = 10) -> list[TaskRecord]:
        """The records whose job an event with ``job_key`` is about (one index query, then each
        record read strongly consistent): usually one; none for a job this service did not start."""
        page = self._call(
            "query",
            IndexName=JOB_INDEX,
            KeyConditionExpression="job_key = :k",
            ExpressionAttributeValues={":k": {"S": job_key}},
            Limit=limit,
        )
        records = []
        for keys in page.get("Items", []):
            key = self._key(keys["action_id"]["S"], int(keys["attempt"]["N"]))
            item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
            if item is not None:
                records.append(TaskRecord.from_item(item))
        return records

    def stale_tasks(self, cutoff: float, page_size: int = 100) -> Iterator[list[StaleTask]]:
        """Pages of tasks not ended whose heartbeat is older than ``cutoff``, oldest first in each
        shard (starting at a random shard), read lazily from the keys-only sparse index (one Query per page)."""
        first = random.randrange(ACTIVE_SHARDS)  # noqa: S311 - spreads passes over shards; nothing secret
        for shard in [(first + n) % ACTIVE_SHARDS for n in range(ACTIVE_SHARDS)]:
            kwargs: dict[str, Any] = {
                "IndexName": ACTIVE_INDEX,
                "KeyConditionExpression": "active_shard = :s AND heartbeat_at < :cutoff",
                "ExpressionAttributeValues": {":s": {"S": f"active#{shard}"}, ":cutoff": {"N": repr(cutoff)}},
                "Limit": page_size,
            }
            while True:
                page = self._call("query", **kwargs)
                found = [
                    StaleTask(item["action_id"]["S"], int(item["attempt"]["N"]), float(item["heartbeat_at"]["N"]))
                    for item in page.get("Items", [])
                ]
                if found:
                    yield found
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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
                    {"AttributeName": "heartbeat_at", "AttributeType": "N"},
                    {"AttributeName": "job_key", "AttributeType": "S"},
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
                            {"AttributeName": "heartbeat_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    },
                    {
                        "IndexName": JOB_INDEX,
                        "KeySchema": [{"AttributeName": "job_key", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    },
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


__all__ = ["ACTIVE_INDEX", "JOB_INDEX", "AttemptOwner", "RecordChanged", "StaleTask", "TaskTable", "new_client"]
