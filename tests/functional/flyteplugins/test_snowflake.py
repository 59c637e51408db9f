"""``snowflake`` (connectors/builtin/flyteplugins/snowflake.py) through the served app, against a
recording fake of the ``snowflake.connector`` client (tests/fake_snowflake.py); and the same
tasks through flyte-sdk 2.12.1's own connector module, compared at that client boundary."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import inspect
import math
import pathlib
import sys
import types
import uuid
import zipfile
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from snowflake.connector import errors

from connectors.builtin.flyteplugins import snowflake as port
from connectors.builtin.flyteplugins import snowflake_connections
from connectors.errors import Code
from connectors.literals import DataFrameRef
from tests.aws_world import CALL_SECONDS, DATAFRAME, INT, STR
from tests.fake_snowflake import FakeSnowflake
from tests.flyte_requests import execution_metadata
from tests.oracle_wheels import oracle_wheel

TYPE = "snowflake"
ROOT = pathlib.Path(__file__).resolve().parents[3]
WHEELS = ROOT / ".venv" / "wheels"
REAL_CONNECT = snowflake_connections.snowflake_connect  # before any fixture replaces it
LOGIN_BOUND = math.ceil(0.75 * CALL_SECONDS)  # the sign-in's share of a call's deadline
CUSTOM = {
    "account": "myorg-myaccount",
    "user": "FLYTE",
    "database": "ANALYTICS",
    "schema": "PUBLIC",
    "warehouse": "COMPUTE_WH",
}


def rsa_pem(passphrase: str | None = None) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


@pytest.fixture
def fake(monkeypatch) -> FakeSnowflake:
    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    monkeypatch.setenv("FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS", CUSTOM["account"])  # the deployment lists the account
    snowflake_connections._connections.clear()
    yield fake
    snowflake_connections._connections.clear()


@pytest.fixture(scope="session")
def deployment_key() -> str:
    return rsa_pem()


@pytest.fixture
def world(aws_world, fake, deployment_key, monkeypatch):
    """The served app with the port, its key in (moto's) Secrets Manager as a deployment keeps it."""
    prefix = f"flyte-connectors-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(port.SnowflakeConnector())
    world.boto("secretsmanager").create_secret(
        Name=f"{prefix}/{TYPE}/snowflake_private_key", SecretString=deployment_key
    )
    return world


def request(
    custom: dict[str, Any] | None = None, sql: str = "SELECT COUNT(*) FROM users", **kwargs: Any
) -> pb.CreateTaskRequest:
    from tests.aws_world import task_request

    made = task_request(TYPE, {**CUSTOM, **(custom or {})} if custom is not False else {}, **kwargs)
    made.template.sql.statement = sql
    return made


# -- the port through the served app ---------------------------------------------------------------


def test_a_query_is_submitted_tagged_polled_to_success_and_gives_its_dataframe(world, fake):
    pem = rsa_pem("s3cret")
    made = request(
        sql="SELECT * FROM users WHERE id = %(id)s AND name = %(name)s",
        inputs={"id": (INT, 7), "name": (STR, "ann")},
        outputs={"results": DATAFRAME},
        secrets={"snowflake_private_key": pem, "snowflake_private_key_passphrase": "s3cret"},
    )
    handle = world.create(made)
    (connect,) = fake.connects
    assert {k: v for k, v in connect.items() if k not in ("private_key", "login_timeout")} == CUSTOM
    # 3/4 of the call's deadline (the world's 15 s; the driver's own default: 120 s)
    assert 1 <= connect["login_timeout"] <= LOGIN_BOUND
    assert connect["private_key"] == snowflake_connections.private_key_der(pem, "s3cret")
    lookup, submitted = fake.statements
    token = world.token(made)
    assert (
        lookup.kind == "execute"
        and lookup.sql == port.LOOKUP_SQL
        and lookup.params == {"user": "FLYTE", "token": token}
    )
    assert submitted.kind == "execute_async" and submitted.sql == made.template.sql.statement
    assert submitted.params == {"id": 7, "name": "ann"}
    assert submitted.kwargs == {"_statement_params": {"QUERY_TAG": token}}
    query = fake.only_query()
    phases = [world.poll(handle, TYPE) for _ in range(3)]
    assert [r.phase for r in phases] == [TaskExecution.QUEUED, TaskExecution.RUNNING, TaskExecution.SUCCEEDED]
    assert [r.message for r in phases] == ["QUEUED", "RUNNING", "SUCCESS"]
    (link,) = phases[-1].log_links
    assert link.uri == f"https://app.snowflake.com/myorg/myaccount/#/compute/history/queries/{query.query_id}/detail"
    assert link.name == "Snowflake Dashboard" and link.ready and link.link_type == TaskLog.DASHBOARD
    frame = world.outputs(phases[-1], {"results": DATAFRAME})["results"]
    assert frame == DataFrameRef(uri=f"snowflake://FLYTE/myorg-myaccount/COMPUTE_WH/ANALYTICS/PUBLIC/{query.query_id}")
    # Connections are reused: one for the create (with the key), one for the polls (this world's
    # GetTask carries no connection secrets), not one per call.
    assert len(fake.connects) <= 2


def test_a_batch_insert_becomes_one_multi_row_values_clause(world, fake):
    from flyteidl2.core import types_pb2

    ints = types_pb2.LiteralType(collection_type=INT)
    strs = types_pb2.LiteralType(collection_type=STR)
    made = request(
        {"batch": True},
        sql="INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)",
        inputs={"a": (ints, [1, 2]), "b": (strs, ["x", "y"])},
    )
    world.create(made)
    (submitted,) = fake.submitted()
    assert submitted.sql == "INSERT INTO t (a, b) VALUES (%(a_0)s, %(b_0)s), (%(a_1)s, %(b_1)s)"
    assert submitted.params == {"a_0": 1, "b_0": "x", "a_1": 2, "b_1": "y"}
    bad = request(
        {"batch": True},
        sql="INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)",
        inputs={"a": (ints, [1, 2]), "b": (strs, ["x"])},
    )
    error = world.error(world.create, bad)
    assert error.code == Code.INVALID_ARGUMENT and "All batch input lists must have the same length." in error.message


def test_a_failed_query_is_failed_with_snowflakes_error(world, fake):
    fake.fail_with = "Numeric value 'abc' is not recognized"
    handle = world.create(request())
    resource = world.wait(handle, TYPE)
    assert resource.phase == TaskExecution.FAILED
    assert "Numeric value 'abc' is not recognized" in resource.message and resource.log_links


def test_delete_cancels_a_running_query_and_is_quiet_once_it_has_ended(world, fake):
    fake.plan = ("RUNNING",)
    handle = world.create(request())
    query = fake.only_query()
    world.delete(handle, TYPE)
    assert fake.executed()[-1].sql == f"SELECT SYSTEM$CANCEL_QUERY('{query.query_id}')"
    assert query.plan == ["ABORTED"]
    world.delete(handle, TYPE)  # again: quiet

    fake.plan = ("SUCCESS",)
    done = world.create(request())
    assert world.wait(done, TYPE).phase == TaskExecution.SUCCEEDED
    fake.cancel_error = errors.ProgrammingError(
        msg="Statement not found", errno=2003, sqlstate="02000", send_telemetry=False
    )
    world.delete(done, TYPE)  # refused for a finished query: quiet


def test_a_cancel_that_fails_while_the_query_runs_is_an_error(world, fake):
    fake.plan = ("RUNNING",)
    handle = world.create(request())
    fake.cancel_error = errors.OperationalError(msg="Connection reset", errno=251011, send_telemetry=False)
    error = world.error(world.delete, handle, TYPE)
    assert error.code == Code.UNAVAILABLE and "Connection reset" in error.message


def test_a_retried_create_adopts_the_query_its_first_try_started(world, fake):
    connector = port.SnowflakeConnector()
    made = request()
    first = world.first_try(connector, made)  # started, then the answer was lost
    handle = world.create(made)
    assert len(fake.submitted()) == 1
    assert port.SnowflakeJobMetadata.decode(world.record(handle).resource_meta).query_id == first.query_id


def test_a_session_query_tag_is_kept_before_the_token(world, fake):
    made = request({"connection_kwargs": {"role": "ANALYST", "session_parameters": {"QUERY_TAG": "team-a"}}})
    world.create(made)
    assert fake.connects[0]["role"] == "ANALYST" and fake.connects[0]["session_parameters"] == {"QUERY_TAG": "team-a"}
    assert fake.submitted()[0].kwargs["_statement_params"]["QUERY_TAG"] == f"team-a {world.token(made)}"


@pytest.mark.parametrize(
    "custom, message",
    [
        ({"account": ""}, "Missing Snowflake account. Set it through task configuration."),
        ({"warehouse": ""}, "User, database and warehouse must be specified in the task configuration."),
        ({"connection_kwargs": "role=x"}, "connection_kwargs must be an object"),
    ],
)
def test_a_template_without_its_fields_is_invalid_argument(world, fake, custom, message):
    error = world.error(world.create, request(custom))
    assert error.code == Code.INVALID_ARGUMENT and message in error.message
    assert fake.connects == []


@pytest.mark.parametrize(
    "where, raised, code",
    [
        (
            "connect",
            errors.DatabaseError(
                msg="Incorrect username or password was specified.",
                errno=390100,
                sqlstate="28000",
                send_telemetry=False,
            ),
            Code.UNAUTHENTICATED,
        ),
        ("connect", errors.ForbiddenError(msg="403 Forbidden"), Code.PERMISSION_DENIED),
        (
            "connect",
            errors.OperationalError(
                msg="Failed to connect to DB: timed out", errno=250001, sqlstate="08001", send_telemetry=False
            ),
            Code.UNAVAILABLE,
        ),
        (
            "submit",
            errors.ProgrammingError(
                msg="SQL compilation error: syntax error line 1", errno=1003, sqlstate="42000", send_telemetry=False
            ),
            Code.INVALID_ARGUMENT,
        ),
        (
            "submit",
            errors.ProgrammingError(
                msg="Insufficient privileges to operate on table 'T'",
                errno=3001,
                sqlstate="42501",
                send_telemetry=False,
            ),
            Code.PERMISSION_DENIED,
        ),
        (
            "submit",
            errors.OperationalError(msg="Connection aborted", errno=251011, send_telemetry=False),
            Code.UNAVAILABLE,
        ),
    ],
)
def test_snowflake_errors_at_create_become_connect_codes_with_their_message(world, fake, where, raised, code):
    if where == "connect":
        fake.connect_error = raised
    else:
        fake.submit_error = raised
    error = world.error(world.create, request())
    assert error.code == code and raised.raw_msg in error.message


def test_a_status_poll_that_cannot_reach_snowflake_is_unavailable_then_reconnects(world, fake):
    handle = world.create(request())
    fake.status_error = errors.OperationalError(msg="Connection reset by peer", errno=251011, send_telemetry=False)
    answer = world.poll(handle, TYPE)  # a status read failing in passing: the stored phase, saying so
    assert "unavailable" in answer.message and "Connection reset by peer" in answer.message
    fake.status_error = None
    assert world.wait(handle, TYPE).phase == TaskExecution.SUCCEEDED
    assert len(fake.connects) == 2  # the broken connection was dropped


def test_an_unreadable_private_key_is_invalid_argument(world, fake):
    error = world.error(
        world.create,
        request(secrets={"snowflake_private_key": rsa_pem("right"), "snowflake_private_key_passphrase": "wrong"}),
    )
    assert error.code == Code.INVALID_ARGUMENT and "snowflake_private_key cannot be read" in error.message
    assert fake.connects == []


# -- the differential test: flyte-sdk 2.12.1's connector module and the port -------------------------


def _plugin_wheel() -> pathlib.Path:
    return oracle_wheel("flyteplugins-snowflake")


@pytest.fixture(scope="session")
def original(tmp_path_factory) -> types.SimpleNamespace:
    """flyte-sdk's connector.py, _crypto.py and task.py, imported alone from the plugin's wheel
    (its package __init__ imports the pandas DataFrame handlers)."""
    where = tmp_path_factory.mktemp("flyte_sdk_snowflake")
    with zipfile.ZipFile(_plugin_wheel()) as wheel:
        for name in ("connector.py", "_crypto.py", "task.py"):
            (where / name).write_bytes(wheel.read(f"flyteplugins/snowflake/{name}"))
    package = types.ModuleType("flyte_sdk_snowflake")
    package.__path__ = [str(where)]
    sys.modules["flyte_sdk_snowflake"] = package
    return types.SimpleNamespace(
        connector=importlib.import_module("flyte_sdk_snowflake.connector"),
        task=importlib.import_module("flyte_sdk_snowflake.task"),
    )


def sdk_task(original, **kwargs: Any) -> tuple[Any, Any]:
    """The plugin's own task class, serialized by the flyte SDK as a deploy does."""
    import flyte
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.models import SerializationContext

    name = f"sf_{uuid.uuid4().hex[:8]}"
    config = original.task.SnowflakeConfig(**CUSTOM, connection_kwargs={"role": "ANALYST"})
    task = original.task.Snowflake(
        name=name,
        plugin_config=config,
        snowflake_private_key="sf-key",
        snowflake_private_key_passphrase="sf-pass",
        **kwargs,
    )
    flyte.TaskEnvironment.from_task(f"env_{name}", task)
    return task, get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain="development"))


def sdk_inputs(task: Any, template: Any, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The inputs as the executor sends them, and as flyte's connector server gives them to create."""
    from flyte._internal.runtime.convert import (
        Inputs,
        convert_from_inputs_to_native,
        convert_from_native_to_inputs,
    )
    from flyte.models import NativeInterface
    from flyte.types import TypeEngine

    proto = asyncio.run(convert_from_native_to_inputs(task.native_interface, **values)).proto_inputs
    guessed = {
        entry.key: (TypeEngine.guess_python_type(entry.value.type), inspect.Parameter.empty)
        for entry in template.interface.inputs.variables
    }
    interface = NativeInterface.from_types(inputs=guessed, outputs={})
    return proto, asyncio.run(convert_from_inputs_to_native(interface, Inputs(proto_inputs=proto)))


def through_original(
    original, monkeypatch, template, native, secrets, polls: int, like: FakeSnowflake
) -> tuple[FakeSnowflake, list[Any]]:
    fake = FakeSnowflake()
    fake.plan, fake.fail_with = like.plan, like.fail_with
    module = original.connector
    monkeypatch.setattr(module, "snowflake_connect", fake.connect)
    module._get_snowflake_connection.cache_clear()
    connector = module.SnowflakeConnector()

    async def lifecycle() -> list[Any]:  # in one event loop, as flyte's connector server runs it
        meta = await connector.create(
            task_template=template,
            inputs=native,
            output_prefix="s3://bucket/prefix",
            task_execution_metadata=execution_metadata(),
            **secrets,
        )
        meta = type(meta).decode(meta.encode())
        answers = [await connector.get(resource_meta=meta, **secrets) for _ in range(polls)]
        await connector.delete(resource_meta=meta, **secrets)
        return answers

    answers = asyncio.run(lifecycle())
    return fake, answers


def through_port(world, fake, template, proto, secrets, polls: int) -> list[Any]:
    made = pb.CreateTaskRequest(
        inputs=proto,
        template=template,
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=execution_metadata(),
        connection={"secrets": secrets},
    )
    handle = world.create(made)
    category = pb.TaskCategory(name=TYPE)
    answers = [
        world.client.get_task(
            pb.GetTaskRequest(resource_meta=handle, task_category=category, connection={"secrets": secrets})
        ).resource
        for _ in range(polls)
    ]  # the executor sends the connection with every call
    world.client.delete_task(
        pb.DeleteTaskRequest(resource_meta=handle, task_category=category, connection={"secrets": secrets})
    )
    return answers


def same_calls(theirs: FakeSnowflake, ours: FakeSnowflake, cancelled: bool = False) -> None:
    """Same connects and submitted SQL; with ``cancelled``, the same cancel statement (the service
    calls delete only for a task that has not ended: the original is asked to cancel a finished one too)."""
    # account, user, database, schema, warehouse, role, private key (DER); the port alone bounds the sign-in
    assert [{k: v for k, v in c.items() if k != "login_timeout"} for c in ours.connects] == theirs.connects
    assert all(1 <= c["login_timeout"] <= LOGIN_BOUND for c in ours.connects)
    (their_query,), (our_query,) = theirs.queries.values(), ours.queries.values()
    assert [(s.sql, s.params) for s in ours.submitted()] == [(s.sql, s.params) for s in theirs.submitted()]
    if cancelled:
        cancels = [s.sql.replace(our_query.query_id, "<id>") for s in ours.executed() if "CANCEL" in s.sql]
        assert cancels == [s.sql.replace(their_query.query_id, "<id>") for s in theirs.executed()]
        assert cancels == ["SELECT SYSTEM$CANCEL_QUERY('<id>')"]


def same_answers(theirs: list[Any], ours: list[Any], their_id: str, our_id: str) -> None:
    for their, our in zip(theirs, ours, strict=True):
        assert our.phase == their.phase
        assert our.message.replace(our_id, "<id>") == their.message.replace(their_id, "<id>")
        their_links = [
            (link.uri.replace(their_id, "<id>"), link.name, link.ready, link.link_type) for link in their.log_links
        ]
        assert [
            (link.uri.replace(our_id, "<id>"), link.name, link.ready, link.link_type) for link in our.log_links
        ] == their_links


def test_differential_a_parameterized_query_with_a_dataframe(original, monkeypatch, world, fake):
    from flyte.io import DataFrame

    task, template = sdk_task(
        original,
        query_template="SELECT *\n FROM users\tWHERE id = %(id)s AND since > %(since)s",
        inputs={"id": int, "since": datetime.datetime},
        output_dataframe_type=DataFrame,
    )
    assert template.type == TYPE and template.custom["secrets"]["snowflake_private_key"] == "SF_KEY"
    proto, native = sdk_inputs(task, template, {"id": 7, "since": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)})
    pem = rsa_pem("pw")
    secrets = {"snowflake_private_key": pem, "snowflake_private_key_passphrase": "pw"}
    fake.plan = ("RUNNING", "SUCCESS")  # the words the original maps (it fails on QUEUED)
    theirs, their_answers = through_original(original, monkeypatch, template, native, secrets, polls=2, like=fake)
    ours = through_port(world, fake, template, proto, secrets, polls=2)
    same_calls(theirs, fake)
    their_id, our_id = theirs.only_query().query_id, fake.only_query().query_id
    same_answers(their_answers, ours, their_id, our_id)
    their_frame = their_answers[-1].outputs["results"]
    our_frame = world.outputs(ours[-1], {"results": DATAFRAME})["results"]
    assert (our_frame.uri.replace(our_id, "<id>"), our_frame.format) == (
        their_frame.uri.replace(their_id, "<id>"),
        their_frame.format,
    )


def test_differential_a_batch_insert(original, monkeypatch, world, fake):
    task, template = sdk_task(
        original,
        query_template="INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)",
        inputs={"a": list[int], "b": list[str]},
        batch=True,
    )
    proto, native = sdk_inputs(task, template, {"a": [1, 2, 3], "b": ["x", "y", "z"]})
    secrets = {"snowflake_private_key": rsa_pem()}
    fake.plan = ("RUNNING", "SUCCESS")
    theirs, their_answers = through_original(original, monkeypatch, template, native, secrets, polls=2, like=fake)
    ours = through_port(world, fake, template, proto, secrets, polls=2)
    same_calls(theirs, fake)
    same_answers(their_answers, ours, theirs.only_query().query_id, fake.only_query().query_id)
    assert not their_answers[-1].outputs and not ours[-1].outputs.literals


def test_differential_a_failed_query(original, monkeypatch, world, fake):
    task, template = sdk_task(original, query_template="SELECT 1/0")
    proto, native = sdk_inputs(task, template, {})
    secrets = {"snowflake_private_key": rsa_pem()}
    fake.fail_with = "Division by zero"
    theirs, their_answers = through_original(original, monkeypatch, template, native, secrets, polls=2, like=fake)
    ours = through_port(world, fake, template, proto, secrets, polls=2)
    assert [a.phase for a in ours] == [TaskExecution.RUNNING, TaskExecution.FAILED]
    same_answers(their_answers, ours, theirs.only_query().query_id, fake.only_query().query_id)


def test_differential_a_running_query_cancelled(original, monkeypatch, world, fake):
    task, template = sdk_task(original, query_template="SELECT SYSTEM$WAIT(60)")
    proto, native = sdk_inputs(task, template, {})
    secrets = {"snowflake_private_key": rsa_pem()}
    fake.plan = ("RUNNING",)
    theirs, their_answers = through_original(original, monkeypatch, template, native, secrets, polls=1, like=fake)
    ours = through_port(world, fake, template, proto, secrets, polls=1)
    same_calls(theirs, fake, cancelled=True)
    same_answers(their_answers, ours, theirs.only_query().query_id, fake.only_query().query_id)
    assert theirs.only_query().plan == fake.only_query().plan == ["ABORTED"]


# -- a Snowflake the function cannot reach (issue 16, item 6) ---------------------------------------


def test_a_snowflake_that_never_answers_is_unavailable_naming_its_host_before_the_deadline(world, fake, monkeypatch):
    """No route to the account's host (a VPC without NAT): the connect blocks, as a dropped SYN
    does. The answer names the host, not just 'did not finish create within 8 s'."""
    import threading

    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "3")
    released = threading.Event()

    def blackholed(**params: Any) -> Any:
        released.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(snowflake_connections, "snowflake_connect", blackholed)
    try:
        error = world.error(world.create, request())
    finally:
        released.set()
    assert error.code == Code.UNAVAILABLE, error
    assert "myorg-myaccount.snowflakecomputing.com" in error.message and "did not finish" not in error.message


def test_the_real_driver_that_cannot_resolve_the_account_names_its_host(world, monkeypatch):
    """The real snowflake-connector-python (no fake): the account's host does not resolve on this
    machine (no internet), and the driver gives up within the service's deadline."""
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", REAL_CONNECT)
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "4")
    error = world.error(world.create, request())
    assert error.code == Code.UNAVAILABLE, error
    assert "myorg-myaccount.snowflakecomputing.com" in error.message and "did not finish" not in error.message


def test_a_task_may_shorten_the_sign_in_but_not_lengthen_it():
    meta = port.SnowflakeJobMetadata(**CUSTOM, query_id="", has_output=False, connection_kwargs={"login_timeout": 600})
    assert snowflake_connections._connection_params(meta, None, None, 6.0)["login_timeout"] == 6
    meta.connection_kwargs = {"login_timeout": 2}
    assert snowflake_connections._connection_params(meta, None, None, 6.0)["login_timeout"] == 2
