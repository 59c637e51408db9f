"""Issue 18: a third-party credential goes only to a host the deployment lists, through the served app.

With none listed (each parameter's default), a task that would use the credential is
``failed_precondition`` naming the parameter, before any connection: the loopback listener a task
names receives none. A host not listed is ``permission_denied``, also before any connection, and
so is a poll or a cancel of a task whose host is no longer listed (a record made before the list).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.builtin.flyteplugins.databricks import DatabricksConnector
from connectors.builtin.flyteplugins.slurm import SlurmConnector
from connectors.errors import Code
from tests.fake_databricks import FakeDatabricks
from tests.fake_slurm import FakeSlurm
from tests.functional.flyteplugins import test_databricks as databricks
from tests.functional.flyteplugins import test_slurm as slurm
from tests.functional.flyteplugins import test_snowflake as snowflake


class Listener:
    """A loopback TCP listener that records every connection it is offered."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:  # the timeout, or closed
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    yield served
    served.close()


def secrets_world(aws_world: Any, monkeypatch: Any, connector: Any, task_type: str, values: dict[str, str]) -> Any:
    """The served app with the connector, its credentials in (moto's) Secrets Manager as a deployment keeps them."""
    prefix = f"flyte-sec18-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(connector)
    for name, value in values.items():
        world.boto("secretsmanager").create_secret(Name=f"{prefix}/{task_type}/{name}", SecretString=value)
    return world


def no_list(monkeypatch: Any, *variables: str) -> None:
    for variable in variables:
        monkeypatch.delenv(variable, raising=False)


# -- databricks ----------------------------------------------------------------------------------


def databricks_request(world: Any, instance: str) -> Any:
    return databricks.request(
        world, databricks.template(databricks.databricks_custom(databricks.NEW_CLUSTER, instance))
    )


def test_databricks_with_no_workspace_listed_sends_its_token_nowhere(aws_world, monkeypatch, listener):
    no_list(monkeypatch, "FLYTE_DATABRICKS_ALLOWED_INSTANCES", "FLYTE_DATABRICKS_INSTANCE")
    world = secrets_world(aws_world, monkeypatch, DatabricksConnector(), "databricks", {"databricks_token": "dapi-x"})
    error = world.error(world.create, databricks_request(world, f"127.0.0.1:{listener.port}"))
    assert error.code == Code.FAILED_PRECONDITION, error.message
    assert "DatabricksInstances" in error.message and "FLYTE_DATABRICKS_ALLOWED_INSTANCES" in error.message
    assert listener.connections == 0


def test_databricks_sends_its_token_to_no_workspace_but_those_listed(aws_world, monkeypatch, listener):
    no_list(monkeypatch, "FLYTE_DATABRICKS_INSTANCE")
    monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", "dbc-1234.cloud.databricks.com")
    world = secrets_world(aws_world, monkeypatch, DatabricksConnector(), "databricks", {"databricks_token": "dapi-x"})
    error = world.error(world.create, databricks_request(world, f"127.0.0.1:{listener.port}"))
    assert error.code == Code.PERMISSION_DENIED and "dbc-1234.cloud.databricks.com" in error.message, error.message
    assert listener.connections == 0


def test_a_databricks_task_whose_workspace_is_no_longer_listed_is_neither_polled_nor_cancelled(aws_world, monkeypatch):
    with FakeDatabricks(token=databricks.TOKEN) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", fake.instance)
        world = secrets_world(
            aws_world, monkeypatch, DatabricksConnector(), "databricks", {"databricks_token": databricks.TOKEN}
        )
        handle = world.create(databricks_request(world, fake.instance))
        seen = len(fake.requests)
        monkeypatch.delenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES")
        assert world.error(world.poll, handle, "databricks").code == Code.FAILED_PRECONDITION
        assert world.error(world.delete, handle, "databricks").code == Code.FAILED_PRECONDITION
        assert len(fake.requests) == seen, "the token went to a workspace the deployment no longer lists"


# -- snowflake -------------------------------------------------------------------------------------


def test_snowflake_with_no_account_listed_signs_in_nowhere(aws_world, monkeypatch):
    from connectors.builtin.flyteplugins import snowflake as port
    from connectors.builtin.flyteplugins import snowflake_connections
    from tests.fake_snowflake import FakeSnowflake

    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    snowflake_connections._connections.clear()
    no_list(monkeypatch, "FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS")
    world = secrets_world(
        aws_world, monkeypatch, port.SnowflakeConnector(), "snowflake", {"snowflake_private_key": snowflake.rsa_pem()}
    )
    error = world.error(world.create, snowflake.request())
    assert error.code == Code.FAILED_PRECONDITION, error.message
    assert "SnowflakeAccounts" in error.message and "myorg-myaccount.snowflakecomputing.com" in error.message
    monkeypatch.setenv("FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS", "otherorg-account")
    error = world.error(world.create, snowflake.request())
    assert error.code == Code.PERMISSION_DENIED and "otherorg-account" in error.message, error.message
    assert fake.connects == [], "the client was asked to sign in"
    monkeypatch.setenv("FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS", "otherorg-account, MYORG-MYACCOUNT")  # any case
    world.create(snowflake.request())
    assert [connect["account"] for connect in fake.connects] == ["myorg-myaccount"]
    snowflake_connections._connections.clear()


# -- slurm -----------------------------------------------------------------------------------------


def test_slurm_with_no_login_node_listed_uses_its_key_nowhere(aws_world, monkeypatch, listener):
    no_list(monkeypatch, "FLYTE_SLURM_ALLOWED_HOSTS", "FLYTE_SLURM_HOST")
    with FakeSlurm() as fake:  # only for a key and a template; the task names the listener
        world = secrets_world(aws_world, monkeypatch, SlurmConnector(), "slurm", slurm.secrets(fake))
        request = slurm.request(world, fake, slurm.template(fake, port=listener.port), secret_values={})
        error = world.error(world.create, request)
        assert error.code == Code.FAILED_PRECONDITION, error.message
        assert "SlurmHosts" in error.message and "FLYTE_SLURM_ALLOWED_HOSTS" in error.message
        monkeypatch.setenv("FLYTE_SLURM_ALLOWED_HOSTS", "login.hpc.example.com")
        error = world.error(world.create, slurm.request(world, fake, slurm.template(fake, port=listener.port)))
        assert error.code == Code.PERMISSION_DENIED and "login.hpc.example.com" in error.message, error.message
    assert listener.connections == 0


def test_the_login_node_flyte_slurm_host_names_is_the_deployments_own(aws_world, monkeypatch):
    no_list(monkeypatch, "FLYTE_SLURM_ALLOWED_HOSTS")
    with FakeSlurm() as fake:
        monkeypatch.setenv("FLYTE_SLURM_HOST", "127.0.0.1")  # wins over the task's host
        world = aws_world(SlurmConnector())
        world.create(slurm.request(world, fake, slurm.template(fake, host="login.attacker.example")))
        assert len(fake.jobs) == 1
