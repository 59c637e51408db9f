"""``databricks`` (the flyte SDK's Databricks connector, ported) through the served app, against a
fake Databricks Jobs API on loopback HTTPS (tests/fake_databricks.py), and side by side with the
original connector module of flyteplugins-databricks 2.12.1."""

from __future__ import annotations

import asyncio
import importlib.util
import types
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.core import tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.literals_pb2 import KeyValuePair
from flyteidl2.plugins.spark_pb2 import SparkApplication, SparkJob
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from connectors.builtin.flyteplugins.databricks import DatabricksConnector, DatabricksJobMetadata
from connectors.errors import Code
from tests.fake_databricks import FakeDatabricks
from tests.oracle_wheels import oracle_wheel

TYPE = "databricks"
TOKEN = "dapi-0123456789abcdef"
IMAGE = "ghcr.io/example/spark-task:abc123"
ARGS = ["a0", "--inputs", "s3://bucket/inputs.pb", "--outputs-path", "s3://bucket/out", "--version", "v1"]
ENV = {"FLYTE_INTERNAL_EXECUTION_ID": "r1", "_F_PRJ": "flytesnacks"}
ROOT = Path(__file__).resolve().parents[3]
WHEELS = ROOT / ".venv" / "wheels"


# -- templates, as flyteplugins.databricks's DatabricksFunctionTask writes them ------------------


def databricks_custom(
    databricks_conf: dict | None,
    instance: str | None = None,
    spark_conf: dict | None = None,
    secret: str | None = "databricks_token",
) -> dict[str, Any]:
    """``DatabricksFunctionTask.custom_config``: a SparkJob as a dict, plus the secret's name.
    (The task class itself needs pyspark, which this venv does not hold.)"""
    job = SparkJob(
        sparkConf=spark_conf or {},
        hadoopConf={},
        mainApplicationFile="local:///root/entrypoint.py",
        executorPath="/usr/bin/python3",
        mainClass="",
        applicationType=SparkApplication.PYTHON,
        databricksConf=databricks_conf,
        databricksInstance=instance,
    )
    custom = MessageToDict(job)
    custom["secrets"] = {"databricks_token": secret}
    return custom


def template(custom: dict[str, Any], *, env: dict[str, str] | None = None) -> tasks_pb2.TaskTemplate:
    struct = Struct()
    struct.update(custom)
    env = ENV if env is None else env
    return tasks_pb2.TaskTemplate(
        type=TYPE,
        custom=struct,
        container=tasks_pb2.Container(
            image=IMAGE, args=ARGS, env=[KeyValuePair(key=k, value=v) for k, v in env.items()]
        ),
    )


def request(world: Any, tpl: tasks_pb2.TaskTemplate, *, secrets: dict[str, str] | None = None, run: str | None = None):
    """A CreateTaskRequest as the stock executor sends it: no connection secrets (the service reads
    ``databricks_token`` from Secrets Manager), unless ``secrets`` are given."""
    created = world.request(TYPE, {}, run=run, secrets=secrets or {})
    created.template.CopyFrom(tpl)
    return created


NEW_CLUSTER = {
    "run_name": "nightly",
    "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 2},
    "timeout_seconds": 3600,
}


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=TOKEN) as served:
        monkeypatch.setenv("SSL_CERT_FILE", served.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", served.instance)  # the deployment lists it
        yield served


def databricks_world(aws_world: Any, monkeypatch: Any, token: str | None = TOKEN) -> Any:
    """The served app with the port, its ``databricks_token`` in (moto's) Secrets Manager under
    ``<SECRETS_PREFIX>/databricks/databricks_token``, as a deployment keeps it."""
    prefix = f"flyte-connectors-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(DatabricksConnector())
    if token is not None:
        world.boto("secretsmanager").create_secret(Name=f"{prefix}/{TYPE}/databricks_token", SecretString=token)
    return world


@pytest.fixture
def world(aws_world, fake, monkeypatch):
    return databricks_world(aws_world, monkeypatch)


def run_of(world: Any, handle: bytes) -> DatabricksJobMetadata:
    return DatabricksJobMetadata.decode(world.record(handle).resource_meta)


# -- the lifecycle through the served app ----------------------------------------------------


def test_a_run_is_submitted_polled_to_success_and_its_cancel_after_the_end_is_quiet(world, fake):
    handle = world.create(request(world, template(databricks_custom(NEW_CLUSTER, fake.instance, {"spark.a": "1"}))))
    (submit,) = fake.calls("runs/submit")
    body = submit.body
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    assert body["new_cluster"] == {
        "spark_version": "13.3.x-scala2.12",
        "node_type_id": "m5.xlarge",
        "num_workers": 2,
        "docker_image": {"url": IMAGE},
        "spark_conf": {"spark.a": "1"},
        "spark_env_vars": ENV,
    }
    assert body["spark_python_task"] == {
        "python_file": "flyteplugins/databricks/entrypoint.py",
        "parameters": ARGS,
        "source": "GIT",
    }
    assert body["git_source"]["git_url"] == "https://github.com/flyteorg/flytetools"
    assert body["run_name"] == "nightly" and body["timeout_seconds"] == 3600
    assert len(body["idempotency_token"]) <= 64
    assert isinstance(body["new_cluster"]["num_workers"], int) and isinstance(body["timeout_seconds"], int)
    meta = run_of(world, handle)
    assert meta == DatabricksJobMetadata(databricks_instance=fake.instance, run_id=str(next(iter(fake.runs))))

    phases = [world.poll(handle, TYPE) for _ in range(2)]
    assert [p.phase for p in phases] == [TaskExecution.INITIALIZING, TaskExecution.RUNNING]
    assert phases[0].message == "run is pending"
    done = world.wait(handle, TYPE)
    assert done.phase == TaskExecution.SUCCEEDED
    (link,) = done.log_links
    job_id = fake.runs[int(meta.run_id)].job_id
    assert (link.name, link.uri) == ("Databricks Console", f"https://{fake.instance}/#job/{job_id}/run/{meta.run_id}")
    world.delete(handle, TYPE)  # the service knows the run ended
    asyncio.run(DatabricksConnector().delete(meta, databricks_token=TOKEN))  # Databricks: 200, a no-op
    assert fake.calls("runs/cancel")[-1].body == {"run_id": meta.run_id}
    assert fake.runs[int(meta.run_id)].state()["result_state"] == "SUCCESS"


def test_delete_cancels_a_running_run(world, fake):
    handle = world.create(request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
    run_id = run_of(world, handle).run_id
    fake.script(run_id, [("RUNNING", None)])
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING
    world.delete(handle, TYPE)
    (cancel,) = fake.calls("runs/cancel")
    assert cancel.body == {"run_id": run_id} and cancel.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.runs[int(run_id)].state() == {
        "life_cycle_state": "TERMINATED",
        "result_state": "CANCELED",
        "state_message": "Run cancelled.",
    }


@pytest.mark.parametrize(
    "states, phase",
    [
        ([("TERMINATED", "FAILED")], TaskExecution.FAILED),
        ([("TERMINATED", "TIMEDOUT")], TaskExecution.FAILED),
        ([("TERMINATED", "CANCELED")], TaskExecution.FAILED),
        ([("SKIPPED", None)], TaskExecution.FAILED),
        ([("INTERNAL_ERROR", None)], TaskExecution.RETRYABLE_FAILED),
        ([("QUEUED", None)], TaskExecution.QUEUED),
        ([("BLOCKED", None)], TaskExecution.QUEUED),
        ([("TERMINATING", None)], TaskExecution.RUNNING),
    ],
)
def test_phases_and_messages(world, fake, states, phase):
    handle = world.create(request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
    fake.script(run_of(world, handle).run_id, states, message="Workload failed, see run output for details")
    resource = world.poll(handle, TYPE)
    assert resource.phase == phase
    assert resource.message == "Workload failed, see run output for details"


def test_an_existing_cluster_run_keeps_its_conf_and_the_instance_comes_from_the_environment(world, fake, monkeypatch):
    monkeypatch.setenv("FLYTE_DATABRICKS_INSTANCE", fake.instance)
    conf = {"existing_cluster_id": "0101-abc", "run_name": "on-existing"}
    handle = world.create(request(world, template(databricks_custom(conf))))
    (submit,) = fake.calls("runs/submit")
    assert "new_cluster" not in submit.body and submit.body["existing_cluster_id"] == "0101-abc"
    assert run_of(world, handle).databricks_instance == fake.instance


def test_a_create_retried_after_a_crash_starts_one_run(world, fake):
    created = request(world, template(databricks_custom(NEW_CLUSTER, fake.instance)))
    # The first try started its run, then crashed before its record was finished (world.first_try, with the token).
    first = asyncio.run(
        DatabricksConnector().create(
            created.template,
            created.output_prefix,
            {},
            created.task_execution_metadata,
            idempotency_token=world.token(created),
            databricks_token=TOKEN,
        )
    )
    handle = world.create(created)
    assert run_of(world, handle).run_id == first.run_id
    assert len(fake.runs) == 1 and len(fake.calls("runs/submit")) == 2
    tokens = {call.body["idempotency_token"] for call in fake.calls("runs/submit")}
    assert tokens == {world.token(created)}
    # Another attempt is another run.
    other = request(world, template(databricks_custom(NEW_CLUSTER, fake.instance)), run="another-run")
    world.create(other)
    assert len(fake.runs) == 2


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "custom, message",
    [
        (databricks_custom(None, "x.cloud.databricks.com"), "Missing Databricks job configuration in task template."),
        (
            databricks_custom({"run_name": "n"}, "x.cloud.databricks.com"),
            "Either existing_cluster_id or new_cluster must be specified",
        ),
        (
            databricks_custom(NEW_CLUSTER),
            "Missing databricks instance. Please set the value through the task config or "
            "set the FLYTE_DATABRICKS_INSTANCE environment variable in the connector.",
        ),
    ],
)
def test_a_bad_template_is_invalid_argument_with_the_originals_message(world, fake, monkeypatch, custom, message):
    monkeypatch.delenv("FLYTE_DATABRICKS_INSTANCE", raising=False)
    error = world.error(world.create, request(world, template(custom)))
    assert error.code == Code.INVALID_ARGUMENT and message in error.message
    assert fake.requests == []


@pytest.mark.parametrize(
    "status, body, code",
    [
        (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "Cluster size must be positive"},
            Code.INVALID_ARGUMENT,
        ),
        (403, {"error_code": "PERMISSION_DENIED", "message": "User cannot create clusters"}, Code.PERMISSION_DENIED),
        (429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests"}, Code.RESOURCE_EXHAUSTED),
        (500, {"error_code": "INTERNAL_ERROR", "message": "Something went wrong"}, Code.UNAVAILABLE),
        (503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Try again"}, Code.UNAVAILABLE),
    ],
)
def test_databricks_errors_map_to_codes_with_databricks_message(world, fake, status, body, code):
    fake.fail("runs/submit", status, body, times=5)
    error = world.error(world.create, request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
    assert error.code == code
    assert f"Failed to create databricks job with error: {body['error_code']}: {body['message']}" in error.message


def test_a_wrong_token_is_unauthenticated_and_the_token_is_not_echoed(world, fake):
    error = world.error(
        world.create,
        request(
            world,
            template(databricks_custom(NEW_CLUSTER, fake.instance)),
            secrets={"databricks_token": "dapi-wrong-token-value"},
        ),
    )
    assert error.code == Code.UNAUTHENTICATED and "Invalid access token." in error.message
    assert "dapi-wrong-token-value" not in error.message
    assert fake.runs == {}


def test_a_missing_token_is_unauthenticated_before_any_call(aws_world, fake, monkeypatch):
    world = databricks_world(aws_world, monkeypatch, token=None)
    error = world.error(world.create, request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
    assert error.code == Code.UNAUTHENTICATED and "databricks_token" in error.message
    assert fake.requests == []


def test_databricks_unreachable_is_unavailable(world, fake, monkeypatch):
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", f"127.0.0.1:{port}")
    error = world.error(world.create, request(world, template(databricks_custom(NEW_CLUSTER, f"127.0.0.1:{port}"))))
    assert error.code == Code.UNAVAILABLE and "Databricks did not answer" in error.message


def test_a_run_databricks_does_not_know_is_not_found_to_get_and_quiet_to_delete(fake):
    connector = DatabricksConnector()
    gone = DatabricksJobMetadata(databricks_instance=fake.instance, run_id="424242")
    with pytest.raises(Exception) as caught:
        asyncio.run(connector.get(gone, databricks_token=TOKEN))
    assert caught.value.code == Code.NOT_FOUND and "Run 424242 does not exist." in caught.value.message
    asyncio.run(connector.delete(gone, databricks_token=TOKEN))
    fake.fail("runs/cancel", 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 424242 does not exist."})
    asyncio.run(connector.delete(gone, databricks_token=TOKEN))
    fake.fail("runs/cancel", 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Try again"})
    with pytest.raises(Exception) as caught:
        asyncio.run(connector.delete(gone, databricks_token=TOKEN))
    assert caught.value.code == Code.UNAVAILABLE


def test_the_connector_declares_its_secret():
    assert DatabricksConnector.secret_names == ("databricks_token",)
    assert (DatabricksConnector.task_type_name, DatabricksConnector.task_type_version) == ("databricks", 0)
    assert DatabricksConnector.name == "Databricks Connector"


# -- the differential test: the flyte SDK's own connector module ---------------------------------


@pytest.fixture(scope="session")
def original() -> types.ModuleType:
    """flyteplugins/databricks/connector.py from the flyteplugins-databricks 2.12.1 wheel, imported
    alone (the package's __init__ imports the task side, which needs pyspark). The wheel is fetched
    locked by hash in tools/oracle-wheels.txt, in .venv/wheels."""
    wheel_path = oracle_wheel("flyteplugins-databricks")
    unpacked = WHEELS / wheel_path.name.split("-py")[0]
    source = unpacked / "flyteplugins" / "databricks" / "connector.py"
    if not source.exists():
        with zipfile.ZipFile(wheel_path) as wheel:
            wheel.extractall(unpacked)
    from flyte.connectors import ConnectorRegistry

    spec = importlib.util.spec_from_file_location("flyteplugins_databricks_connector_2_12_1", source)
    module = importlib.util.module_from_spec(spec)
    register = ConnectorRegistry.register
    ConnectorRegistry.register = staticmethod(lambda connector, override=False: None)  # not into flyte's registry
    try:
        spec.loader.exec_module(module)
    finally:
        ConnectorRegistry.register = register
    return module


def trusting(module: types.ModuleType, cafile: str) -> None:
    """The original's ``aiohttp.ClientSession()`` trusting the fake's certificate."""
    import ssl

    import aiohttp

    context = ssl.create_default_context(cafile=cafile)
    module.aiohttp = types.SimpleNamespace(
        ClientSession=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    )


DIFFERENTIAL_CASES = {
    "new cluster": (NEW_CLUSTER, {"spark.executor.memory": "4g"}, ENV),
    "new cluster with its own image, conf and environment": (
        {
            "new_cluster": {
                "num_workers": 1,
                "docker_image": {"url": "mine:1"},
                "spark_conf": {"x": "y"},
                "spark_env_vars": {"MINE": "1", "_F_PRJ": "overridden"},
            },
            "run_name": "own",
        },
        {"spark.ignored": "1"},
        ENV,
    ),
    "existing cluster": ({"existing_cluster_id": "0101-abc", "libraries": [{"pypi": {"package": "pandas"}}]}, {}, {}),
    "no environment": ({"new_cluster": {"num_workers": 0, "autoscale": {"min_workers": 1, "max_workers": 3}}}, {}, {}),
}
SCRIPT = [("PENDING", None), ("QUEUED", None), ("RUNNING", None), ("TERMINATING", None), ("TERMINATED", "SUCCESS")]


def without_token(calls: list[Any]) -> list[tuple]:
    keys = []
    for call in calls:
        method, path, query, body, auth, content_type = call.key()
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "idempotency_token"}
        keys.append((method, path, query, body, auth, content_type))
    return keys


def through_original(
    module: types.ModuleType,
    fake: FakeDatabricks,
    tpl: tasks_pb2.TaskTemplate,
    script: list,
    message: str,
    cancel: bool = False,
) -> tuple[list, list]:
    """create, a poll per scripted state (a ValueError where the flyte SDK's phase words end), and
    with ``cancel`` a delete (the service calls none once the run has ended)."""
    trusting(module, fake.cafile)
    connector = module.DatabricksConnector()

    async def run() -> tuple[list, list]:
        meta = await connector.create(tpl, inputs=None, databricks_token=TOKEN)
        fake.script(meta.run_id, script, message=message)
        seen = []
        for _ in script:
            try:
                resource = await connector.get(meta, databricks_token=TOKEN)
                seen.append(
                    (
                        resource.phase,
                        resource.message,
                        [(link.name, link.uri.replace(fake.instance, "<instance>")) for link in resource.log_links],
                    )
                )
            except ValueError as error:
                seen.append(("error", str(error)))
        if cancel:
            await connector.delete(meta, databricks_token=TOKEN)
        return seen, [meta.run_id]

    return asyncio.run(run())


def through_port(
    world: Any, fake: FakeDatabricks, tpl: tasks_pb2.TaskTemplate, script: list, message: str, cancel: bool = False
):
    handle = world.create(request(world, tpl))
    run_id = run_of(world, handle).run_id
    fake.script(run_id, script, message=message)
    seen = []
    for _ in script:
        resource = world.poll(handle, TYPE)
        seen.append(
            (
                resource.phase,
                resource.message,
                [(link.name, link.uri.replace(fake.instance, "<instance>")) for link in resource.log_links],
            )
        )
    if cancel:
        world.delete(handle, TYPE)
    return seen, [run_id]


@pytest.mark.parametrize("case", sorted(DIFFERENTIAL_CASES))
def test_differential_the_same_requests_phases_messages_and_links_as_the_flyte_sdk_connector(
    original, aws_world, monkeypatch, case
):
    conf, spark_conf, env = DIFFERENTIAL_CASES[case]
    message = "In run"
    with FakeDatabricks(token=TOKEN) as theirs, FakeDatabricks(token=TOKEN) as ours:
        # The same template but for the instance, each pointed at its own fake (the same run ids).
        their_seen, their_runs = through_original(
            original, theirs, template(databricks_custom(conf, theirs.instance, spark_conf), env=env), SCRIPT, message
        )
        monkeypatch.setenv("SSL_CERT_FILE", ours.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", ours.instance)
        world = databricks_world(aws_world, monkeypatch)
        our_seen, our_runs = through_port(
            world, ours, template(databricks_custom(conf, ours.instance, spark_conf), env=env), SCRIPT, message
        )

    assert their_runs == our_runs
    assert without_token(ours.requests) == without_token(theirs.requests)
    assert all("idempotency_token" not in call.body for call in theirs.calls("runs/submit"))
    # The original sends the Struct's floats (2.0); the port whole numbers as ints: equal values.
    if "num_workers" in conf.get("new_cluster", {}):
        assert isinstance(theirs.calls("runs/submit")[0].body["new_cluster"]["num_workers"], float)
        assert isinstance(ours.calls("runs/submit")[0].body["new_cluster"]["num_workers"], int)
    assert all(len(call.body["idempotency_token"]) == 32 for call in ours.calls("runs/submit"))
    # QUEUED is not a word of the flyte SDK's convert_to_flyte_phase: the original fails that poll.
    queued = SCRIPT.index(("QUEUED", None))
    assert their_seen[queued] == ("error", "Unrecognized state: queued")
    assert our_seen[queued][0] == TaskExecution.QUEUED
    del their_seen[queued], our_seen[queued]
    assert our_seen == their_seen
    assert [phase for phase, _, _ in our_seen] == [
        TaskExecution.INITIALIZING,
        TaskExecution.RUNNING,
        TaskExecution.RUNNING,
        TaskExecution.SUCCEEDED,
    ]
    assert {m for _, m, _ in our_seen} == {message}


@pytest.mark.parametrize(
    "life, result",
    [
        ("TERMINATED", "FAILED"),
        ("TERMINATED", "TIMEDOUT"),
        ("TERMINATED", "CANCELED"),
        ("SKIPPED", None),
        ("INTERNAL_ERROR", None),
        ("TERMINATED", "SUCCESS"),
    ],
)
def test_differential_terminal_phases(original, aws_world, monkeypatch, life, result):
    script = [(life, result)]
    tpl = lambda fake: template(databricks_custom(NEW_CLUSTER, fake.instance))  # noqa: E731
    with FakeDatabricks(token=TOKEN) as theirs, FakeDatabricks(token=TOKEN) as ours:
        their_seen, _ = through_original(original, theirs, tpl(theirs), script, "ended")
        monkeypatch.setenv("SSL_CERT_FILE", ours.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", ours.instance)
        our_seen, _ = through_port(databricks_world(aws_world, monkeypatch), ours, tpl(ours), script, "ended")
    assert our_seen == their_seen
    assert without_token(ours.requests) == without_token(theirs.requests)


@pytest.mark.parametrize("life", ["PENDING", "RUNNING", "TERMINATING"])
def test_differential_cancel_of_an_active_run(original, aws_world, monkeypatch, life):
    script = [(life, None)]
    tpl = lambda fake: template(databricks_custom(NEW_CLUSTER, fake.instance))  # noqa: E731
    with FakeDatabricks(token=TOKEN) as theirs, FakeDatabricks(token=TOKEN) as ours:
        their_seen, _ = through_original(original, theirs, tpl(theirs), script, "busy", cancel=True)
        monkeypatch.setenv("SSL_CERT_FILE", ours.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", ours.instance)
        our_seen, _ = through_port(
            databricks_world(aws_world, monkeypatch), ours, tpl(ours), script, "busy", cancel=True
        )
        assert ours.runs[1001].state()["result_state"] == theirs.runs[1001].state()["result_state"] == "CANCELED"
    assert our_seen == their_seen
    assert without_token(ours.requests) == without_token(theirs.requests)
    assert [call.path for call in ours.requests][-1] == "/api/2.1/jobs/runs/cancel"


@pytest.mark.parametrize(
    "conf, instance",
    [(None, "x.cloud.databricks.com"), ({"run_name": "n"}, "x.cloud.databricks.com"), (NEW_CLUSTER, None)],
)
def test_differential_template_errors_have_the_originals_message(
    original, aws_world, fake, monkeypatch, conf, instance
):
    monkeypatch.delenv("FLYTE_DATABRICKS_INSTANCE", raising=False)
    tpl = template(databricks_custom(conf, instance))
    with pytest.raises(ValueError) as theirs:
        asyncio.run(original.DatabricksConnector().create(tpl, databricks_token=TOKEN))
    ours = databricks_world(aws_world, monkeypatch)
    error = ours.error(ours.create, request(ours, tpl))
    assert error.code == Code.INVALID_ARGUMENT and str(theirs.value) in error.message


def test_differential_a_refused_submit_names_the_same_call(original, aws_world, fake, monkeypatch):
    body = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Cluster size must be positive"}
    fake.fail("runs/submit", 400, body, times=10)
    trusting(original, fake.cafile)
    tpl = template(databricks_custom(NEW_CLUSTER, fake.instance))
    with pytest.raises(RuntimeError) as theirs:
        asyncio.run(original.DatabricksConnector().create(tpl, databricks_token=TOKEN))
    world = databricks_world(aws_world, monkeypatch)
    error = world.error(world.create, request(world, tpl))
    assert str(theirs.value).startswith("Failed to create databricks job with error:")
    assert error.message.startswith("Failed to create databricks job with error:")
    assert body["message"] in str(theirs.value) and body["message"] in error.message


def test_a_token_kept_only_in_secrets_manager_reaches_databricks_and_nothing_else(aws_world, fake, monkeypatch, caplog):
    """The issue's case: no request carries the token; the fake Databricks API receives it from
    (moto's) Secrets Manager; the table, every log record at DEBUG and every answer lack it."""
    import json
    import logging

    from tests.conftest import scan_table

    world = databricks_world(aws_world, monkeypatch)
    caplog.set_level(logging.DEBUG)
    caplog.clear()  # the fixture's own CreateSecret is logged by botocore (the test's call, not the service's)
    handle = world.create(request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
    answers = [world.poll(handle, TYPE), world.wait(handle, TYPE)]
    world.delete(handle, TYPE)
    assert fake.requests and {call.headers["authorization"] for call in fake.requests} == {f"Bearer {TOKEN}"}
    stored = json.dumps(scan_table(world.dynamodb_client, world.settings.tasks_table), default=str)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert TOKEN not in stored and TOKEN not in logged
    assert all(TOKEN not in str(answer) for answer in answers)
