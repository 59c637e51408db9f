"""athena_query through the served app against moto's Athena over HTTP."""

from __future__ import annotations

import datetime

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import literals
from connectors.builtin.aws.athena import AthenaQueryConnector, AthenaQueryMeta
from connectors.dev.aws_resources.athena_query import RESULTS, WORK_GROUP
from connectors.errors import Code
from tests.aws_world import DATAFRAME, DATETIME, INT, STR

TYPE = "athena_query"


def query_ids(world) -> set[str]:
    return set(world.boto("athena").list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"])


def started_query(world, handle: bytes) -> dict:
    meta = AthenaQueryMeta.decode(world.record(handle).resource_meta)
    return world.boto("athena").get_query_execution(QueryExecutionId=meta.query_execution_id)["QueryExecution"]


def test_a_query_runs_to_success_with_typed_parameters_and_its_result_as_a_dataframe(aws_world):
    world = aws_world(AthenaQueryConnector())
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    request = world.request(
        TYPE,
        {"query": "select * from t where a = ? and b = ? and c > ?", "work_group": WORK_GROUP, "database": "default"},
        inputs={"a": (STR, "it's"), "b": (INT, 7), "c": (DATETIME, when)},
        outputs={"results": DATAFRAME},
    )
    handle = world.create(request)
    query = started_query(world, handle)
    assert query["ExecutionParameters"] == ["'it''s'", "7", "timestamp '2026-01-02 03:04:05.000'"]
    assert query["QueryExecutionContext"] == {"Database": "default"} and query["WorkGroup"] == WORK_GROUP
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    frame = world.outputs(resource, {"results": DATAFRAME})["results"]
    assert frame == literals.DataFrameRef(uri=f"{RESULTS}{query['QueryExecutionId']}.csv", format="csv")
    assert resource.custom_info["query_execution_id"] == query["QueryExecutionId"]
    assert "statistics" in resource.custom_info and resource.log_links[0].uri.startswith("https://")
    world.delete(handle, TYPE)  # a finished query: delete is accepted and changes nothing
    assert started_query(world, handle)["Status"]["State"] == "SUCCEEDED"


def test_a_running_query_is_stopped_by_delete(aws_world):
    world = aws_world(AthenaQueryConnector())
    world.hold("athena::execution")
    try:
        handle = world.create(world.request(TYPE, {"query": "select 1", "work_group": WORK_GROUP}))
        assert world.poll(handle, TYPE).phase in (TaskExecution.QUEUED, TaskExecution.RUNNING)
        world.delete(handle, TYPE)
        assert started_query(world, handle)["Status"]["State"] == "CANCELLED"
    finally:
        world.release("athena::execution")


@pytest.mark.parametrize("retryable, phase", [(False, TaskExecution.FAILED), (True, TaskExecution.RETRYABLE_FAILED)])
def test_a_failed_query_is_failed_with_athenas_reason_and_retryable_when_athena_says_so(aws_world, retryable, phase):
    world = aws_world(AthenaQueryConnector())
    handle = world.create(world.request(TYPE, {"query": "select nope", "work_group": WORK_GROUP}))
    world.fate(
        "athena",
        started_query(world, handle)["QueryExecutionId"],
        "FAILED",
        "COLUMN_NOT_FOUND: Column 'nope' cannot be resolved",
        retryable=retryable,
    )
    resource = world.wait(handle, TYPE)
    assert resource.phase == phase and "COLUMN_NOT_FOUND" in resource.message


def test_a_create_retried_after_a_crash_starts_one_query(aws_world):
    world = aws_world(AthenaQueryConnector())
    request = world.request(TYPE, {"query": "select 2", "work_group": WORK_GROUP})
    before = query_ids(world)
    # The first try started the query and died before its record was finished: the same
    # attempt's token reaches Athena again, which answers the query it already has.
    first = world.first_try(AthenaQueryConnector(), request)
    handle = world.create(request)
    assert query_ids(world) - before == {first.query_execution_id}
    assert started_query(world, handle)["QueryExecutionId"] == first.query_execution_id


@pytest.mark.parametrize(
    "custom, inputs, needle",
    [
        ({}, {}, "template.custom.query is required"),
        ({"query": "select ?", "parameters": ["x"]}, {}, "'x', which is not an input"),
        ({"query": "select 1", "parameters": ["a"]}, {"a": (INT, 1)}, "0 '?' placeholders for 1"),
        ({"query": "select 1", "output_location": "/tmp/x"}, {}, "output_location must be an s3:// URI"),
        ({"query": "select 1", "work_group": 5}, {}, "work_group must be a string"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, custom, inputs, needle):
    world = aws_world(AthenaQueryConnector())
    error = world.error(world.create, world.request(TYPE, {"work_group": WORK_GROUP, **custom}, inputs=inputs))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_aws_refusing_the_query_is_its_code_by_kind_with_awss_message(aws_world):
    world = aws_world(AthenaQueryConnector())
    error = world.error(world.create, world.request(TYPE, {"query": "select 1", "work_group": "no-such-group"}))
    assert error.code == Code.INVALID_ARGUMENT and "WorkGroup does not exist" in error.message
    assert "athena StartQueryExecution" in error.message
