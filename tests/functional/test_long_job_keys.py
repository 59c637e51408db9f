"""A job key too long for DynamoDB's index never costs a task its record (never orphaned).

The task's record keeps ``job_key`` (the task type, then the connector's key for its job) in the
table's ``job_key`` index, so a state-change event leads to its task with one query. DynamoDB
refuses a write whose index key value is over 2,048 bytes ("Service, account, and table quotas",
partition key value length; a global secondary index's keys are held to the table's limits, and a
write that breaks them is refused with ValidationException). The built-in connectors' keys are
AWS ids and ARNs, far shorter, but a connector's ``job_key`` is anyone's code: a key too long
made CreateTask's last write (the one that keeps the job's metadata) fail after the job had
started. The fake AWS now refuses such writes as DynamoDB does; the service keeps such a task
without the index entry (its polls read the job, as without events), and an event naming such a
key is not looked up.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.job_events import INDEX_KEY_BYTES, event_job_key, job_key_of
from tests.functional.test_iam_matches_calls import EventedConnector, EventedMeta

LONG = "j" * 3000


# -- the fake AWS refuses what DynamoDB refuses ----------------------------------------------------


@pytest.fixture(scope="module")
def indexed(dynamodb_client: Any) -> str:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    dynamodb_client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "job", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-job",
                "KeySchema": [{"AttributeName": "job", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    return name


@pytest.mark.parametrize("exists", [True, False], ids=["existing item", "new item"])
def test_an_update_that_makes_an_index_key_too_long_is_refused_and_changes_nothing(dynamodb_client, indexed, exists):
    pk = uuid.uuid4().hex
    if exists:
        dynamodb_client.put_item(TableName=indexed, Item={"pk": {"S": pk}, "job": {"S": "short"}, "n": {"N": "1"}})
    with pytest.raises(ClientError) as refused:
        dynamodb_client.update_item(
            TableName=indexed,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET job = :job, n = :n",
            ExpressionAttributeValues={":job": {"S": "k" * (INDEX_KEY_BYTES + 1)}, ":n": {"N": "2"}},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "2048 bytes" in refused.value.response["Error"]["Message"]
    item = dynamodb_client.get_item(TableName=indexed, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    assert item == ({"pk": {"S": pk}, "job": {"S": "short"}, "n": {"N": "1"}} if exists else None)


def test_an_index_key_of_exactly_the_limit_is_written(dynamodb_client, indexed):
    pk = uuid.uuid4().hex
    at_limit = "é" * (INDEX_KEY_BYTES // 2)  # 2,048 bytes in UTF-8, 1,024 characters
    dynamodb_client.update_item(
        TableName=indexed,
        Key={"pk": {"S": pk}},
        UpdateExpression="SET job = :job",
        ExpressionAttributeValues={":job": {"S": at_limit}},
    )
    item = dynamodb_client.get_item(TableName=indexed, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert item["job"] == {"S": at_limit}


# -- the service: the task is kept, without the index entry ---------------------------------------


class LongKeyConnector(EventedConnector):
    """Its remote's job keys are longer than DynamoDB indexes."""

    name = "Long Key Connector"
    task_type_name = "long_key"

    def __init__(self) -> None:
        self.gets = 0

    async def get(self, resource_meta: EventedMeta, **kwargs: Any):
        self.gets += 1
        return await super().get(resource_meta, **kwargs)

    def job_key(self, resource_meta: EventedMeta) -> str:
        return f"{resource_meta.job_id}-{LONG}"


class BrokenKeyConnector(LongKeyConnector):
    name = "Broken Key Connector"
    task_type_name = "broken_key"

    def job_key(self, resource_meta: EventedMeta) -> str:
        raise KeyError("jobId")


@pytest.mark.parametrize("connector_class", [LongKeyConnector, BrokenKeyConnector], ids=["too long", "raises"])
def test_a_task_whose_job_key_cannot_be_indexed_is_created_kept_and_polled(aws_world, connector_class, caplog):
    connector = connector_class()
    world = aws_world(connector, status_read_interval_seconds=0.0)
    with caplog.at_level(logging.WARNING):
        handle = world.create(world.request(connector.task_type_name, {}))
    record = world.record(handle)
    assert record.state == "active" and record.job_key is None
    assert any("not indexed" in r.getMessage() and connector.name in r.getMessage() for r in caplog.records)
    before = connector.gets
    answer = world.poll(handle, connector.task_type_name)
    assert answer.phase == TaskExecution.RUNNING and connector.gets == before + 1  # the poll read the job
    assert world.create(world.request(connector.task_type_name, {})) != handle  # another execution: another task


def test_the_index_key_limit_counts_bytes_not_characters():
    class Wide(EventedConnector):
        task_type_name = "w"

        def job_key(self, resource_meta: EventedMeta) -> str:
            return resource_meta.job_id

    prefix = len("w#")
    fits = EventedMeta(job_id="é" * ((INDEX_KEY_BYTES - prefix) // 2))
    assert job_key_of(Wide(), fits) == f"w#{fits.job_id}"
    over = EventedMeta(job_id="é" * ((INDEX_KEY_BYTES - prefix) // 2 + 1))  # 1,024 characters, 2,050 bytes
    assert job_key_of(Wide(), over) is None
    assert job_key_of(Wide(), EventedMeta(job_id="\ud800")) is None  # not encodable: DynamoDB would refuse it
    assert event_job_key(Wide(), {"jobId": over.job_id}) is None
    assert event_job_key(Wide(), {"jobId": fits.job_id}) == f"w#{fits.job_id}"
