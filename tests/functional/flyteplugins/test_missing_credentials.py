"""A connector whose credential is nowhere answers ``unauthenticated`` before any connection, and
the answer names the Secrets Manager secret and the SSM parameter the service looked in (issue 16,
item 5): the operator learns what to create, not a driver's "Password is empty".

Through the served app, with the deployment's secret prefix set and nothing stored under it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connectors.builtin.flyteplugins import databricks as databricks_port
from connectors.builtin.flyteplugins import slurm as slurm_port
from connectors.builtin.flyteplugins import snowflake as snowflake_port
from connectors.builtin.flyteplugins import snowflake_connections
from connectors.errors import Code
from tests.fake_databricks import FakeDatabricks
from tests.fake_slurm import FakeSlurm
from tests.fake_snowflake import FakeSnowflake


def places(prefix: str, task_type: str, name: str) -> tuple[str, str]:
    return f"{prefix}/{task_type}/{name}", f"/{prefix}/{task_type}/{name}"


@pytest.fixture
def prefix(monkeypatch) -> str:
    made = f"flyte-creds-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", made)
    return made


def assert_names_where_to_put_it(error: Any, prefix: str, task_type: str, name: str) -> None:
    secret, parameter = places(prefix, task_type, name)
    assert error.code == Code.UNAUTHENTICATED, error
    assert f"Secrets Manager secret '{secret}'" in error.message, error.message
    assert f"SSM parameter '{parameter}'" in error.message, error.message


def test_snowflake_without_its_key_names_the_secret_and_never_connects(aws_world, prefix, monkeypatch):
    from tests.functional.flyteplugins.test_snowflake import request

    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    snowflake_connections._connections.clear()
    world = aws_world(snowflake_port.SnowflakeConnector())
    error = world.error(world.create, request())
    assert_names_where_to_put_it(error, prefix, "snowflake", "snowflake_private_key")
    assert "Password is empty" not in error.message
    assert fake.connects == []
    assert "snowflake_private_key_passphrase" not in error.message  # optional: never asked for


def test_slurm_without_its_key_names_the_secret_not_the_tasks_setting(aws_world, prefix, monkeypatch):
    from tests.functional.flyteplugins.test_slurm import request

    monkeypatch.delenv(slurm_port.ENV_SSH_PRIVATE_KEY, raising=False)
    with FakeSlurm() as fake:
        world = aws_world(slurm_port.SlurmConnector())
        error = world.error(world.create, request(world, fake, secret_values={}))
        assert_names_where_to_put_it(error, prefix, "slurm", "ssh_private_key")
        assert slurm_port.ENV_SSH_PRIVATE_KEY in error.message  # the connector's own fallback, still named
        assert fake.connections == 0 and fake.calls == []


def test_slurm_with_its_key_in_the_environment_needs_no_secret(aws_world, prefix, monkeypatch):
    from tests.functional.flyteplugins.test_slurm import request

    with FakeSlurm() as fake:
        monkeypatch.setenv(slurm_port.ENV_SSH_PRIVATE_KEY, fake.private_key)
        monkeypatch.setenv("FLYTE_SLURM_ALLOWED_HOSTS", "127.0.0.1")
        world = aws_world(slurm_port.SlurmConnector())
        handle = world.create(request(world, fake, secret_values={"known_hosts_data": fake.known_hosts}))
        assert handle and fake.jobs


def test_databricks_without_its_token_names_the_secret_and_sends_nothing(aws_world, prefix, monkeypatch):
    from tests.functional.flyteplugins.test_databricks import NEW_CLUSTER, databricks_custom, request, template

    with FakeDatabricks(token="dapi-x") as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        world = aws_world(databricks_port.DatabricksConnector())
        error = world.error(world.create, request(world, template(databricks_custom(NEW_CLUSTER, fake.instance))))
        assert_names_where_to_put_it(error, prefix, "databricks", "databricks_token")
        assert fake.requests == []


def test_without_a_secret_prefix_the_answer_says_the_deployment_reads_none(aws_world, monkeypatch):
    from tests.functional.flyteplugins.test_snowflake import request

    monkeypatch.setenv("SECRETS_PREFIX", "")
    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    world = aws_world(snowflake_port.SnowflakeConnector())
    error = world.error(world.create, request())
    assert error.code == Code.UNAUTHENTICATED
    assert "snowflake_private_key" in error.message and "SECRETS_PREFIX" in error.message
    assert fake.connects == []
