"""Connector secrets from AWS Secrets Manager and SSM Parameter Store (moto over HTTP).

A connector names the secret keyword arguments it takes; the service fetches each one the request
lacks from ``<prefix>/<task type>/<name>`` and passes it on — to create, get, delete, logs and
metrics, and to the reaper's and a newer attempt's cancels — while the value never reaches the
table, a log line or an answer (a connector that echoes it in a message gets it cut).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import Resource
from connectors.secrets import SecretResolver, SecretSource
from tests.conftest import scan_table
from tests.sample_connectors import CountingConnector, JobMeta

TYPE = "vault_job"


class VaultConnector(CountingConnector):
    """Takes two secrets; its get answers with a message that (wrongly) quotes its token."""

    name = "Vault Connector"
    task_type_name = TYPE
    secret_names = ("api_token", "api_password")

    def __init__(self) -> None:
        super().__init__()
        self.log_kwargs: list[dict[str, Any]] = []

    async def get(self, resource_meta: JobMeta, **kwargs) -> Resource:
        await super().get(resource_meta, **kwargs)
        return Resource(phase=TaskExecution.RUNNING, message=f"authorised with {kwargs.get('api_token')}")

    async def get_logs(self, resource_meta: JobMeta, **kwargs):
        self.log_kwargs.append(kwargs)
        yield pb.GetTaskLogsResponse(header=pb.GetTaskLogsResponseHeader(token=""))


@pytest.fixture
def vault(aws_world, monkeypatch):
    prefix = f"flyte-test-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    connector = VaultConnector()
    world = aws_world(connector)
    world.prefix, world.connector = prefix, connector
    return world


def put_secret(world, name: str, value: str) -> None:
    world.boto("secretsmanager").create_secret(Name=f"{world.prefix}/{TYPE}/{name}", SecretString=value)


def put_parameter(world, name: str, value: str) -> None:
    world.boto("ssm").put_parameter(Name=f"/{world.prefix}/{TYPE}/{name}", Value=value, Type="SecureString")


def calls(world, operation: str) -> list[dict[str, Any]]:
    return [kwargs for kwargs in world.connector.kwargs if kwargs["operation"] == operation]


def test_secrets_come_from_secrets_manager_then_ssm_and_reach_every_call(vault, caplog):
    caplog.set_level(logging.DEBUG)
    token, password = f"tok-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    put_secret(vault, "api_token", token)
    put_parameter(vault, "api_password", password)
    caplog.clear()  # the test's own puts above log the values (botocore, DEBUG); the service's calls must not
    handle = vault.create(vault.request(TYPE, {}))
    resource = vault.poll(handle, TYPE)
    vault.logs(handle, TYPE)
    vault.delete(handle, TYPE)
    for operation in ("create", "get", "delete"):
        assert calls(vault, operation)[-1]["api_token"] == token
        assert calls(vault, operation)[-1]["api_password"] == password
    assert vault.connector.log_kwargs[-1] == {"token": "", "lines": 0, "api_token": token, "api_password": password}
    assert resource.message == "authorised with ***"  # cut from the answer, as a request's own secret is
    stored = json.dumps(scan_table(vault.dynamodb_client, vault.settings.tasks_table), default=str)
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    for value in (token, password):
        assert value not in stored, stored[max(0, stored.find(value) - 300) : stored.find(value) + 50]
        assert value not in logged, logged[max(0, logged.find(value) - 400) : logged.find(value) + 50]
        assert value not in str(resource)


def test_a_value_the_executor_sends_wins_and_a_secret_found_nowhere_is_left_out(vault):
    put_secret(vault, "api_token", "from-secrets-manager")
    vault.create(vault.request(TYPE, {}, secrets={"api_token": "from-the-executor"}))
    created = calls(vault, "create")[-1]
    assert created["api_token"] == "from-the-executor" and "api_password" not in created


def test_the_reaper_cancels_with_the_connectors_secrets(vault):
    put_secret(vault, "api_token", "reaper-token")
    handle = vault.create(vault.request(TYPE, {}))
    report = vault.reap(now=time.time() + 7 * 24 * 3600)
    assert report.cancelled and calls(vault, "delete")[-1]["api_token"] == "reaper-token"
    assert vault.record(handle).phase == TaskExecution.ABORTED


def test_values_are_cached_for_their_max_age(aws_endpoint):
    prefix = f"flyte-cache-{uuid.uuid4().hex[:6]}"
    resolver = SecretResolver(SecretSource(prefix=prefix, max_age_seconds=300))
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    sm.create_secret(Name=f"{prefix}/{TYPE}/api_token", SecretString="first")
    import asyncio

    assert asyncio.run(resolver.complete(VaultConnector(), TYPE, {}))["api_token"] == "first"
    sm.put_secret_value(SecretId=f"{prefix}/{TYPE}/api_token", SecretString="second")
    assert asyncio.run(resolver.complete(VaultConnector(), TYPE, {}))["api_token"] == "first"  # cached
    fresh = SecretResolver(SecretSource(prefix=prefix, max_age_seconds=0))
    assert asyncio.run(fresh.complete(VaultConnector(), TYPE, {}))["api_token"] == "second"


def test_a_connector_that_takes_no_secrets_never_reads_aws(vault):
    from connectors.builtin import EchoConnector

    resolver = SecretResolver(SecretSource(prefix="anything"))
    import asyncio

    assert asyncio.run(resolver.complete(EchoConnector(), "echo", {"x": "1"})) == {"x": "1"}
    assert resolver._providers is None  # Powertools not even imported for it


class SlowRunningThenSucceeded(VaultConnector):
    """Its first status read (poll A) is slow and finds the job RUNNING; a read asked later finds
    it SUCCEEDED. It takes one secret: each completion is one Secrets Manager read."""

    secret_names = ("api_token",)

    def __init__(self) -> None:
        super().__init__()
        self.slow_in = threading.Event()
        self.release = threading.Event()

    async def get(self, resource_meta: JobMeta, **kwargs) -> Resource:
        await super().get(resource_meta, **kwargs)
        if self.calls["get"] == 1:
            self.slow_in.set()
            await asyncio.to_thread(self.release.wait, 30)
            return Resource(phase=TaskExecution.RUNNING, message="running")
        return Resource(phase=TaskExecution.SUCCEEDED, message="done")


def calls_counted(counts, operation: str) -> int:
    return counts().get(f"secretsmanager:{operation}", {}).get("calls", 0)


def test_a_get_task_reads_its_secrets_from_aws_once(aws_world, monkeypatch):
    """A poll whose write lost to another poll that ended the record SUCCEEDED reads the job again
    for its outputs: with the secrets it already completed, not read from AWS a second time (with
    SECRETS_MAX_AGE_SECONDS 0, as after the cache's max age, each completion is a Secrets Manager
    read)."""
    prefix = f"flyte-once-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "0")
    connector = SlowRunningThenSucceeded()
    world = aws_world(connector)
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{TYPE}/api_token", SecretString="once")
    handle = world.create(world.request(TYPE, {}))
    with world.faults(services=[]) as counts, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(world.poll, handle, TYPE)  # A
        assert connector.slow_in.wait(15), "the slow read never started"
        before_b = calls_counted(counts, "GetSecretValue")
        assert world.poll(handle, TYPE).phase == TaskExecution.SUCCEEDED  # B ends the record
        read_by_b = calls_counted(counts, "GetSecretValue") - before_b
        connector.release.set()
        assert slow.result(timeout=30).phase == TaskExecution.SUCCEEDED
        read_by_a = calls_counted(counts, "GetSecretValue") - read_by_b
    assert read_by_b == 1
    gets = [kwargs for kwargs in connector.kwargs if kwargs["operation"] == "get"]
    assert len(gets) == 3  # A, B, and A again for the outputs
    assert all(kwargs["api_token"] == "once" for kwargs in gets)
    assert read_by_a == 1, f"one GetTask read its secret {read_by_a} times"


def test_a_secret_kept_in_ssm_is_not_looked_for_in_secrets_manager_at_every_poll(aws_world, monkeypatch):
    """Powertools caches only values it found: a secret kept in SSM cost a Secrets Manager
    GetSecretValue (not found) at every GetTask that read the job. Secrets Manager's miss is now
    remembered as long as the SSM value found instead is; a secret found nowhere is looked for
    again at the next call, so one created after the "create the secret" error is used at once."""
    prefix = f"flyte-ssm-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    connector = VaultConnector()
    world = aws_world(connector, status_read_interval_seconds=0.0)
    world.boto("ssm").put_parameter(Name=f"/{prefix}/{TYPE}/api_token", Value="from-ssm", Type="SecureString")
    handle = world.create(world.request(TYPE, {}))
    with world.faults(services=[]) as counts:
        for _ in range(5):
            assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING
        misses = calls_counted(counts, "GetSecretValue")
    gets = [kwargs for kwargs in connector.kwargs if kwargs["operation"] == "get"]
    assert len(gets) == 5 and all(kwargs["api_token"] == "from-ssm" for kwargs in gets)
    # api_password is found nowhere: looked for at each of the 5 polls; api_token's miss, remembered
    assert misses == 5, f"{misses} Secrets Manager reads in 5 polls"
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{TYPE}/api_password", SecretString="made-now")
    world.poll(handle, TYPE)
    assert connector.kwargs[-1]["api_password"] == "made-now"  # created after a miss: used at once
