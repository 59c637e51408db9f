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

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.aws_calls import region
from connectors.event_queue import receive_records
from connectors.event_receiver import EventReceiver
from connectors.job_events import INDEX_KEY_BYTES, JobEvents, event_job_key, job_key_of
from tests.conftest import make_indexed_table
from tests.functional.test_iam_matches_calls import EventedConnector, EventedMeta

LONG = "j" * 3000


# -- the fake AWS refuses what DynamoDB refuses ----------------------------------------------------


@pytest.fixture(scope="module")
def indexed(dynamodb_client: Any) -> str:
    return make_indexed_table(dynamodb_client, "keys", "job")


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
    assert refused.value.response["Error"]["Message"] == (
        "One or more parameter values were invalid: Size limit exceeded for Index Key job "
        f"Actual Size: {INDEX_KEY_BYTES + 1} bytes Max Size: {INDEX_KEY_BYTES} bytes IndexName: by-job"
    )
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


def test_a_refused_update_of_a_new_item_creates_nothing(dynamodb_client, indexed):
    pk = uuid.uuid4().hex  # refused for its size: moto had made the item before applying the update
    with pytest.raises(ClientError):
        dynamodb_client.update_item(
            TableName=indexed,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET big = :b",
            ExpressionAttributeValues={":b": {"S": "x" * 500_000}},
        )
    assert dynamodb_client.get_item(TableName=indexed, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item") is None


def test_a_query_by_a_key_dynamodb_cannot_hold_is_refused(dynamodb_client, indexed):
    with pytest.raises(ClientError) as refused:
        dynamodb_client.query(
            TableName=indexed,
            IndexName="by-job",
            KeyConditionExpression="job = :k",
            ExpressionAttributeValues={":k": {"S": "k" * (INDEX_KEY_BYTES + 1)}},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


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


class Ambiguous:
    """A value that cannot be tested for truth (as a numpy array)."""

    def __bool__(self) -> bool:
        raise ValueError("The truth value of an array with more than one element is ambiguous")


class AmbiguousKeyConnector(LongKeyConnector):
    name = "Ambiguous Key Connector"
    task_type_name = "ambiguous_key"

    def job_key(self, resource_meta: EventedMeta) -> Any:
        return Ambiguous()


SECRET = f"tok-{uuid.uuid4().hex}"


class LeakyKeyConnector(LongKeyConnector):
    """Its job_key fails with the request's token in the message."""

    name = "Leaky Key Connector"
    task_type_name = "leaky_key"

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        self.token = kwargs["api_token"]
        return await super().create(task_template, output_prefix, inputs, task_execution_metadata, **kwargs)

    def job_key(self, resource_meta: EventedMeta) -> str:
        raise RuntimeError(f"the jobs API refused token {self.token}")


def test_a_key_that_cannot_be_tested_or_whose_failure_holds_a_secret_keeps_the_task_and_the_secret(aws_world, caplog):
    ambiguous, leaky = AmbiguousKeyConnector(), LeakyKeyConnector()
    world = aws_world(ambiguous, leaky)
    with caplog.at_level(logging.INFO):
        first = world.create(world.request(ambiguous.task_type_name, {}))
        second = world.create(world.request(leaky.task_type_name, {}, secrets={"api_token": SECRET}))
    for handle in (first, second):
        assert world.record(handle).state == "active" and world.record(handle).job_key is None
    logged = "\n".join(logging.Formatter("%(message)s").format(r) for r in caplog.records)
    assert "the jobs API refused token ***" in logged and SECRET not in logged


def strict_key(detail: Any) -> str:
    return detail["executionArn"]  # raises for the other connector's jobs, on the same events


class StrictKeyConnector(EventedConnector):
    name = "Strict Key Connector"
    task_type_name = "strict_key"
    job_events = JobEvents("test.jobs", "Test Job State Change", strict_key)


def event(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "test.jobs",
        "detail-type": "Test Job State Change",
        "region": region(),
        "time": "2099-01-01T00:00:00Z",
        "detail": detail,
    }


def test_a_key_function_that_raises_neither_redelivers_the_event_nor_stops_the_other_connectors(aws_world):
    strict, plain = StrictKeyConnector(), EventedConnector()
    world = aws_world(strict, plain)  # registered first: asked first
    receiver = EventReceiver(world.service)
    foreign = {"messageId": "m1", "body": json.dumps(event({"jobId": "someone else's", "status": "FAILED"}))}
    assert asyncio.run(receive_records(receiver, [foreign])) == {"batchItemFailures": []}
    handle = world.create(world.request(plain.task_type_name, {}))
    job = world.record(handle).job_key.split("#", 1)[1]
    assert asyncio.run(receiver.receive(event({"status": "FAILED", "jobId": job}))) == "applied"
    assert world.record(handle).phase == TaskExecution.FAILED


@dataclass
class UnencodableMeta(EventedMeta):
    token: str = ""

    def encode(self) -> bytes:
        raise ValueError(f"cannot encode a job started with {self.token}")


class UnencodableConnector(LongKeyConnector):
    """Beside the key, the other value CreateTask derives from the metadata after the job started."""

    name = "Unencodable Connector"
    task_type_name = "unencodable"

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        return UnencodableMeta(job_id="job-1", token=kwargs["api_token"])


def test_metadata_that_does_not_encode_keeps_the_secret_out_of_the_answer_and_the_log(aws_world, caplog):
    connector = UnencodableConnector()
    world = aws_world(connector)
    with caplog.at_level(logging.INFO):
        refused = world.error(world.create, world.request(connector.task_type_name, {}, secrets={"api_token": SECRET}))
    assert refused.code.value == "internal" and "cannot encode a job started with ***" in refused.message
    logged = "\n".join(logging.Formatter("%(message)s").format(r) for r in caplog.records)
    assert "cannot encode a job started with ***" in logged and SECRET not in logged
