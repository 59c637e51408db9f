"""redshift_query through the served app against moto's Redshift Data API over HTTP."""

from __future__ import annotations

import datetime
import pathlib
import uuid

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors import literals
from connectors.builtin.aws.redshift import PHASES, RedshiftQueryConnector, RedshiftQueryMeta
from connectors.dev.aws_resources.redshift_query import CLUSTER, DATABASE, DB_USER, UNLOAD_PREFIX, UNLOAD_ROLE_NAME
from connectors.errors import Code
from connectors.store.record import TaskExecutionKey
from tests.aws_world import DATAFRAME, DATETIME, FLOAT, INT, STR

TYPE = "redshift_query"
MODEL = "redshiftdata::statement"
ROLE = f"arn:aws:iam::123456789012:role/{UNLOAD_ROLE_NAME}"
EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "redshift_query.json"


@pytest.fixture(autouse=True)
def listed(monkeypatch) -> None:
    """The deployment lists the example's database user (RedshiftDbUsers)."""
    monkeypatch.setenv("REDSHIFT_ALLOWED_DB_USERS", DB_USER)


def custom(**extra):
    return {"query": "select 1", "database": DATABASE, "cluster_identifier": CLUSTER, "db_user": DB_USER, **extra}


def statement_id(world, handle: bytes) -> str:
    return RedshiftQueryMeta.decode(world.record(handle).resource_meta).statement_id


def statement(world, handle: bytes) -> dict:
    """The statement as DescribeStatement answers it (which, in moto, moves it on)."""
    return world.boto("redshift-data").describe_statement(Id=statement_id(world, handle))


def statement_ids(world) -> set[str]:
    return {s["Id"] for s in world.boto("redshift-data").list_statements(Status="ALL")["Statements"]}


def token_of(request: pb.CreateTaskRequest) -> str:
    return TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()


def test_a_query_runs_to_success_with_the_inputs_it_names_as_parameters(aws_world):
    world = aws_world(RedshiftQueryConnector())
    request = world.request(
        TYPE,
        custom(query="select * from events where day = :day and n > :n and x::int > 0"),
        inputs={"day": (STR, "2026-01-02"), "n": (INT, 7), "unused": (FLOAT, 1.5)},
    )
    handle = world.create(request)
    started = statement(world, handle)
    assert started["QueryParameters"] == [{"name": "day", "value": "2026-01-02"}, {"name": "n", "value": "7"}]
    assert started["ClusterIdentifier"] == CLUSTER and started["DbUser"] == DB_USER and started["Database"] == DATABASE
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED and not resource.outputs.literals
    assert resource.custom_info["statement_id"] == started["Id"] and resource.custom_info["result_rows"] == 3
    assert resource.custom_info["status"] == "FINISHED"
    assert resource.log_links[0].uri.startswith("https://") and CLUSTER in resource.log_links[0].uri
    world.delete(handle, TYPE)  # a finished statement: CancelStatement refuses, delete is quiet and changes nothing
    assert statement(world, handle)["Status"] == "FINISHED"


def test_a_dataframe_output_unloads_the_query_as_parquet_under_the_attempts_token(aws_world):
    world = aws_world(RedshiftQueryConnector())
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    request = world.request(
        TYPE,
        custom(
            query="select * from t where a = :a and b = :b and c > :c;",
            unload_prefix=UNLOAD_PREFIX + "/",
            unload_iam_role=ROLE,
        ),
        inputs={"a": (STR, "it's"), "b": (INT, 7), "c": (DATETIME, when)},
        outputs={"results": DATAFRAME},
    )
    handle = world.create(request)
    token = token_of(request)
    uri = f"{UNLOAD_PREFIX}/{token}/"
    started = statement(world, handle)
    assert started["QueryString"] == (
        "UNLOAD ('select * from t where a = ''it''''s'' and b = 7 and c > ''2026-01-02 03:04:05''') "  # noqa: S608
        f"TO '{uri}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET"  # S608: the SQL the connector must send, not one run here
    )
    assert not started.get("QueryParameters")  # AWS binds no parameters inside UNLOAD
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert world.outputs(resource, {"results": DATAFRAME})["results"] == literals.DataFrameRef(
        uri=uri, format="parquet"
    )
    assert resource.custom_info["unload_uri"] == uri


def test_a_serverless_workgroup_is_named_instead_of_a_cluster(aws_world):
    world = aws_world(RedshiftQueryConnector())
    handle = world.create(
        world.request(TYPE, {"query": "select 1", "database": DATABASE, "workgroup_name": "analytics"})
    )
    started = statement(world, handle)
    assert started["WorkgroupName"] == "analytics" and not started.get("ClusterIdentifier")
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED and "workgroup=analytics" in resource.log_links[0].uri


def test_a_running_statement_is_cancelled_by_delete_and_one_cancelled_elsewhere_is_aborted(aws_world):
    world = aws_world(RedshiftQueryConnector())
    world.hold(MODEL)
    try:
        handle = world.create(world.request(TYPE, custom()))
        assert world.poll(handle, TYPE).phase in (TaskExecution.QUEUED, TaskExecution.RUNNING)
        world.delete(handle, TYPE)
        assert statement(world, handle)["Status"] == "ABORTED"
        world.delete(handle, TYPE)  # again: accepted
        other = world.create(world.request(TYPE, custom()))
        world.boto("redshift-data").cancel_statement(Id=statement(world, other)["Id"])
        resource = world.wait(other, TYPE)
        # stopped, but not by this service (no DeleteTask, no canceller): a failure with AWS's word,
        # not ABORTED, which the executor reads as the user's abort (issue 17)
        assert resource.phase == TaskExecution.FAILED and "aborted" in resource.message.lower()
        assert "not by this service" in resource.message
    finally:
        world.release(MODEL)


def test_a_failed_statement_is_failed_with_awss_error_text(aws_world):
    world = aws_world(RedshiftQueryConnector())
    handle = world.create(world.request(TYPE, custom(query="select * from nope")))
    error = 'ERROR: relation "nope" does not exist'
    world.fate("redshift-data", statement_id(world, handle), "FAILED", error)
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.FAILED and resource.message == error
    world.delete(handle, TYPE)  # a failed statement: quiet
    assert statement(world, handle)["Status"] == "FAILED"


def test_a_create_retried_after_a_crash_starts_one_statement(aws_world):
    world = aws_world(RedshiftQueryConnector())
    request = world.request(TYPE, custom(query="select 2"))
    before = statement_ids(world)
    # The first try started the statement and died before its record was finished: the same
    # attempt's token reaches the Data API again as ClientToken, which answers that statement.
    first = world.first_try(RedshiftQueryConnector(), request)
    handle = world.create(request)
    assert statement_ids(world) - before == {first.statement_id}
    assert statement(world, handle)["Id"] == first.statement_id


def test_a_newer_attempt_cancels_the_older_attempts_statement(aws_world):
    world = aws_world(RedshiftQueryConnector())
    world.hold(MODEL)
    try:
        run = f"rs-supersede-{uuid.uuid4().hex[:8]}"
        first = world.create(world.request(TYPE, custom(), run=run))
        second = world.create(world.request(TYPE, custom(), run=run, attempt=1))
        assert statement(world, first)["Status"] == "ABORTED"
        assert statement(world, second)["Status"] in ("SUBMITTED", "PICKED", "STARTED")
    finally:
        world.release(MODEL)


@pytest.mark.parametrize(
    "fields, outputs, needle",
    [
        ({"query": None}, {}, "template.custom.query is required"),
        ({"database": None}, {}, "template.custom.database is required"),
        ({"cluster_identifier": None}, {}, "exactly one of cluster_identifier, workgroup_name"),
        (
            {"workgroup_name": "wg1"},
            {},
            "exactly one of cluster_identifier, workgroup_name (got cluster_identifier, workgroup_name)",
        ),
        ({}, {"results": DATAFRAME}, "needs template.custom.unload_prefix"),
        (
            {"unload_prefix": "/tmp/x", "unload_iam_role": ROLE},
            {"results": DATAFRAME},
            "unload_prefix must be an s3:// URI",
        ),
        ({"unload_prefix": UNLOAD_PREFIX}, {"results": DATAFRAME}, "template.custom.unload_iam_role is required"),
        (
            {"unload_prefix": UNLOAD_PREFIX, "unload_iam_role": "admin"},
            {"results": DATAFRAME},
            "unload_iam_role must be an IAM role ARN",
        ),
        ({"database": 5}, {}, "database must be a string"),
    ],
)
def test_a_template_that_lacks_or_spoils_a_field_is_invalid_argument_naming_it(aws_world, fields, outputs, needle):
    world = aws_world(RedshiftQueryConnector())
    given = {key: value for key, value in custom(**fields).items() if value is not None}
    error = world.error(world.create, world.request(TYPE, given, outputs=outputs))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message


def test_an_input_that_cannot_be_written_safely_into_unload_is_invalid_argument_naming_it(aws_world):
    world = aws_world(RedshiftQueryConnector())
    request = world.request(
        TYPE,
        custom(query="select :path", unload_prefix=UNLOAD_PREFIX, unload_iam_role=ROLE),
        inputs={"path": (STR, "a\\'; drop table t; --")},
        outputs={"results": DATAFRAME},
    )
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT and "input 'path'" in error.message


def test_aws_refusing_the_statement_is_its_code_by_kind_with_awss_message(aws_world):
    world = aws_world(RedshiftQueryConnector())
    error = world.error(world.create, world.request(TYPE, custom(cluster_identifier="no-such-cluster")))
    assert error.code == Code.INVALID_ARGUMENT and "Redshift endpoint doesn't exist in this region" in error.message
    assert "redshift-data ExecuteStatement" in error.message


def test_the_phase_table_covers_every_status_of_the_data_api():
    assert {
        word: PHASES.phase(word) for word in ("SUBMITTED", "PICKED", "STARTED", "FINISHED", "FAILED", "ABORTED")
    } == {
        "SUBMITTED": TaskExecution.QUEUED,
        "PICKED": TaskExecution.QUEUED,
        "STARTED": TaskExecution.RUNNING,
        "FINISHED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,
        "ABORTED": TaskExecution.ABORTED,
    }
    assert set(RedshiftQueryConnector.iam_actions) == {"create", "get", "delete"}


def test_the_example_runs_to_success(aws_world):
    world = aws_world(RedshiftQueryConnector())
    request = json_format.Parse(EXAMPLE.read_text(), pb.CreateTaskRequest())
    handle = world.create(request)
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    frame = world.outputs(resource, {"results": DATAFRAME})["results"]
    assert frame.uri == f"{UNLOAD_PREFIX}/{token_of(request)}/" and frame.format == "parquet"
