"""Adversarial tests for issue 10: connector secrets from Secrets Manager/SSM, the four ports of
flyte's own connectors, and the build setting.

Each break found was an ``xfail(strict=True)`` test until it was fixed (its comment names it); the others
are attacks that held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb

from connectors.builtin.flyteplugins.databricks import DatabricksConnector
from connectors.errors import Code
from connectors.secrets import SecretResolver, SecretSource
from tests.conftest import scan_table
from tests.fake_databricks import FakeDatabricks
from tests.sample_connectors import CountingConnector

ROOT = Path(__file__).resolve().parents[2]
DB = "databricks"
NEW_CLUSTER = {
    "run_name": "nightly",
    "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 2},
}


# -- helpers -------------------------------------------------------------------------------------


def _db_request(world: Any, instance: str | None, run: str | None = None) -> pb.CreateTaskRequest:
    from flyteidl2.core import tasks_pb2
    from google.protobuf.struct_pb2 import Struct

    custom: dict[str, Any] = {
        "databricksConf": json.loads(json.dumps(NEW_CLUSTER)),
        "secrets": {"databricks_token": "databricks_token"},
    }
    if instance is not None:
        custom["databricksInstance"] = instance
    struct = Struct()
    struct.update(custom)
    created = world.request(DB, {}, run=run)
    created.template.CopyFrom(
        tasks_pb2.TaskTemplate(type=DB, custom=struct, container=tasks_pb2.Container(image="img:1", args=["a0"]))
    )
    return created


def _db_world(aws_world: Any, monkeypatch: Any, token: str) -> Any:
    prefix = f"flyte-adv-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(DatabricksConnector())
    world.prefix = prefix
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{DB}/databricks_token", SecretString=token)
    return world


def _everything(world: Any, caplog: Any) -> str:
    stored = json.dumps(scan_table(world.dynamodb_client, world.settings.tasks_table), default=str)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    return stored + "\n" + logged


@pytest.fixture
def two_databricks(monkeypatch, tmp_path) -> Iterator[tuple[FakeDatabricks, FakeDatabricks]]:
    """The deployment's Databricks and another host (an attacker's), both trusted by the CA bundle."""
    with FakeDatabricks(token="dapi-deployment-secret-0123") as real, FakeDatabricks(token="whatever") as other:
        bundle = tmp_path / "bundle.pem"
        bundle.write_text(Path(real.cafile).read_text() + Path(other.cafile).read_text())
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        yield real, other


# -- (b) Databricks: the deployment's token and the task-chosen instance --------------------------


# Was a break, now fixed: databricks: a task's databricksInstance receives the deployment's Secrets Manager token (Bearer) even when FLYTE_DATABRICKS_INSTANCE names the real one
def test_databricks_token_from_secrets_manager_is_not_sent_to_a_host_the_task_chooses(
    aws_world, two_databricks, monkeypatch
):
    real, attacker = two_databricks
    world = _db_world(aws_world, monkeypatch, real.token)
    monkeypatch.setenv("FLYTE_DATABRICKS_INSTANCE", real.instance)  # the deployment's workspace
    with contextlib.suppress(Exception):  # whatever is answered, what matters is what the other host saw
        world.create(_db_request(world, attacker.instance))
    seen = {call.headers.get("authorization") for call in attacker.requests}
    assert f"Bearer {real.token}" not in seen, "the deployment's token reached a host the task chose"


def test_databricks_token_reaches_the_deployments_instance(aws_world, two_databricks, monkeypatch):
    """Control for the test above: without a task-chosen instance the token goes where it should."""
    real, attacker = two_databricks
    world = _db_world(aws_world, monkeypatch, real.token)
    monkeypatch.setenv("FLYTE_DATABRICKS_INSTANCE", real.instance)
    world.create(_db_request(world, None))
    assert real.calls("runs/submit") and not attacker.requests


# Was a break, now fixed: databricks: a token stored with a trailing newline (file://token.txt) is echoed in httpx's LocalProtocolError repr, not redacted: answer, table, log
def test_a_token_with_a_trailing_newline_is_not_echoed(aws_world, monkeypatch, caplog):
    token = "dapi-newline-secret-9f8e7d6c5b4a"
    with FakeDatabricks(token=token) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", fake.instance)
        world = _db_world(aws_world, monkeypatch, token + "\n")  # as `--secret-string file://token.txt` stores it
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        handle = world.create(_db_request(world, fake.instance))  # the newline is dropped when read
        answer = world.poll(handle, "databricks")
        assert fake.requests and {r.headers["authorization"] for r in fake.requests} == {f"Bearer {token}"}
        assert token not in str(answer)
        assert token not in _everything(world, caplog)


# -- (b) Snowflake: the deployment's key and task-chosen connection arguments ---------------------


# Was a break, now fixed: snowflake: template connection_kwargs (host=...) steer the deployment's Secrets Manager private key (a signed JWT) to a host the task chooses
def test_snowflake_deployment_key_is_not_used_with_a_task_chosen_host(aws_world, monkeypatch):
    from connectors.builtin.flyteplugins import snowflake as port
    from connectors.builtin.flyteplugins import snowflake_connections
    from tests.aws_world import task_request
    from tests.fake_snowflake import FakeSnowflake
    from tests.functional.flyteplugins.test_snowflake import CUSTOM, rsa_pem

    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    snowflake_connections._connections.clear()
    prefix = f"flyte-adv-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(port.SnowflakeConnector())
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/snowflake/snowflake_private_key", SecretString=rsa_pem())
    made = task_request(
        "snowflake", {**CUSTOM, "connection_kwargs": {"host": "collector.attacker.example", "jwt_timeout": 3600}}
    )
    made.template.sql.statement = "SELECT 1"
    try:
        error = world.error(world.create, made)
    finally:
        snowflake_connections._connections.clear()
    assert error.code == Code.PERMISSION_DENIED and "host, jwt_timeout" in error.message
    steered = [c for c in fake.connects if c.get("host") == "collector.attacker.example" and c.get("private_key")]
    assert not steered, "connect() got the deployment's key together with the task's host"


# -- (a) secrets: failures of AWS, caches, isolation ----------------------------------------------


class _FakeSecretsManager:
    """A Secrets Manager endpoint that answers every call with one error."""

    def __init__(self, status: int, code: str) -> None:
        body = json.dumps({"__type": code, "message": f"{code} from the fake"}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class VaultA(CountingConnector):
    name = "Vault A"
    task_type_name = "adv_vault_a"
    secret_names = ("api_token",)


class VaultB(CountingConnector):
    name = "Vault B"
    task_type_name = "adv_vault_b"
    secret_names = ("api_token",)


@pytest.mark.parametrize(
    "status, code, expected",
    [(400, "AccessDeniedException", "permission_denied"), (500, "InternalServiceError", "unavailable")],
)
def test_secrets_manager_denying_or_failing_starts_nothing_and_writes_no_record(
    aws_world, monkeypatch, status, code, expected
):
    failing = _FakeSecretsManager(status, code)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", failing.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        monkeypatch.setenv("SECRETS_PREFIX", f"flyte-adv-{uuid.uuid4().hex[:8]}")
        connector = VaultA()
        world = aws_world(connector)
        run = f"r{uuid.uuid4().hex[:10]}"
        error = world.error(world.create, world.request(VaultA.task_type_name, {}, run=run))
        assert error.code.value == expected, (error.code, error.message)
        assert "adv_vault_a/api_token" in error.message
        assert not [k for k in connector.kwargs if k["operation"] == "create"]
        assert world.records(run) == {}
    finally:
        failing.close()


def test_one_secret_name_under_two_task_types_and_two_prefixes_stays_apart(aws_endpoint):
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    p1, p2 = f"flyte-adv-{uuid.uuid4().hex[:6]}", f"flyte-adv-{uuid.uuid4().hex[:6]}"
    for prefix in (p1, p2):
        for task_type in (VaultA.task_type_name, VaultB.task_type_name):
            sm.create_secret(Name=f"{prefix}/{task_type}/api_token", SecretString=f"{prefix}:{task_type}")
    r1, r2 = SecretResolver(SecretSource(prefix=p1)), SecretResolver(SecretSource(prefix=p2))

    async def everything() -> list[str]:
        calls = [r.complete(c(), c.task_type_name, {}) for _ in range(5) for r in (r1, r2) for c in (VaultA, VaultB)]
        return [found["api_token"] for found in await asyncio.gather(*calls)]

    got = asyncio.run(everything())
    assert got == [f"{p}:{c.task_type_name}" for _ in range(5) for p in (p1, p2) for c in (VaultA, VaultB)]


def test_a_secret_only_in_ssm_is_read_under_the_leading_slash_name(aws_endpoint):
    import boto3

    prefix = f"flyte-adv-{uuid.uuid4().hex[:6]}"
    ssm = boto3.client("ssm", endpoint_url=aws_endpoint, region_name="us-east-1")
    ssm.put_parameter(Name=f"/{prefix}/{VaultA.task_type_name}/api_token", Value="from-ssm", Type="SecureString")
    found = asyncio.run(SecretResolver(SecretSource(prefix=prefix)).complete(VaultA(), VaultA.task_type_name, {}))
    assert found == {"api_token": "from-ssm"}


def test_a_fetched_secret_stays_out_of_the_stored_request_the_table_and_debug_logs(aws_world, monkeypatch, caplog):
    """A connector that fails create quoting its token (URL-quoted and JSON-escaped too)."""
    from connectors.errors import internal

    token = 'tok/with space&"quote"-' + uuid.uuid4().hex

    class Leaky(VaultA):
        async def create(self, *args: Any, **kwargs: Any) -> Any:
            from urllib.parse import quote

            raise internal(
                f"refused {kwargs['api_token']} / {quote(kwargs['api_token'], safe='')} / "
                f"{json.dumps(kwargs['api_token'])}"
            )

    prefix = f"flyte-adv-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(Leaky())
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{VaultA.task_type_name}/api_token", SecretString=token)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    error = world.error(world.create, world.request(VaultA.task_type_name, {}))
    assert "refused ***" in error.message
    text = _everything(world, caplog) + error.message
    core = token.split("-")[-1]  # the random part, in whatever quoting
    assert core not in text, text[max(0, text.find(core) - 300) : text.find(core) + 50]


# -- (b) Slurm: shell metacharacters from the template ---------------------------------------------


def test_slurm_template_fields_with_shell_metacharacters_stay_single_arguments(aws_world, monkeypatch):
    from connectors.builtin.flyteplugins.slurm import SlurmConnector
    from tests.fake_slurm import FakeSlurm
    from tests.functional.flyteplugins.test_slurm import request, template

    monkeypatch.setenv("FLYTE_SLURM_ALLOWED_HOSTS", "127.0.0.1")
    with FakeSlurm() as fake:
        world = aws_world(SlurmConnector())
        tpl = template(fake, env={"X": "$(touch /tmp/pwned1); `id` 'a' \"b\" \n c"})
        tpl.custom["working_dir"] = "/tmp/w;touch${IFS}/tmp/pwned2$(id)"
        tpl.custom["modules"] = ["gcc;touch${IFS}/tmp/pwned3"]
        world.create(request(world, fake, tpl))
        commands = fake.commands()
        (job_id,) = fake.jobs
        script = fake.jobs[job_id].script
    for command in commands:
        words = shlex.split(command)
        assert not any(w in (";", "&&", "|", "||") for w in words), command
    mkdir = [shlex.split(c) for c in commands if c.startswith("mkdir")]
    assert mkdir == [["mkdir", "-p", "/tmp/w;touch${IFS}/tmp/pwned2$(id)"]]
    assert "export X='$(touch /tmp/pwned1); `id` '\"'\"'a'\"'\"' \"b\" \n c'" in script
    assert "module load 'gcc;touch${IFS}/tmp/pwned3'" in script


@pytest.mark.parametrize(
    "key, value",
    [("partition", "main\n#SBATCH --output=/home/flyte/.ssh/authorized_keys"), ("partition", "main --output=/x")],
)
def test_slurm_sbatch_values_cannot_add_directives(key, value):
    from connectors.builtin.flyteplugins.slurm import render_container_job
    from connectors.errors import ConnectError

    with pytest.raises(ConnectError):
        render_container_job(
            job_name="j",
            stdout_path="/o",
            stderr_path="/e",
            image="i",
            command=["c"],
            env={},
            sbatch_fields={key: value},
        )


# Was a break, now fixed: slurm: sbatch_options accept abbreviated long options (--outp, --err, --job-na) that getopt_long takes as the reserved --output/--error/--job-name
def test_slurm_reserved_sbatch_options_cannot_be_set_by_an_abbreviation():
    from connectors.builtin.flyteplugins.slurm import render_container_job
    from connectors.errors import ConnectError

    for key in ("outp", "err", "job-na", "chd"):
        with pytest.raises(ConnectError):
            render_container_job(
                job_name="j",
                stdout_path="/o",
                stderr_path="/e",
                image="i",
                command=["c"],
                env={},
                sbatch_fields={},
                sbatch_extra={key: "/home/flyte/.ssh/authorized_keys"},
            )


# -- (d) a build without an extra ---------------------------------------------------------------


def test_a_build_without_the_extras_serves_none_of_them_and_does_not_crash():
    script = textwrap.dedent("""
        import sys
        BLOCKED = ("asyncssh", "snowflake", "google.cloud.bigquery", "httpx")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Block())
        import os
        os.environ["FLYTE_SDK_CONNECTORS"] = "none"
        from connectors.runtime import load_default_connectors
        registry = load_default_connectors("")
        served = sorted(t.name for c in registry.list_connectors() for t in c.supported_task_categories)
        print(",".join(served))
        for t in ("databricks", "snowflake", "bigquery_query_job_task", "slurm"):
            try:
                registry.get_connector(t, 0)
            except Exception as e:
                print(t, type(e).__name__)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served, *misses = done.stdout.strip().splitlines()
    for task_type in ("databricks", "snowflake", "bigquery_query_job_task", "slurm"):
        assert task_type not in served.split(","), served
    assert len(misses) == 4 and all("NotFound" in line for line in misses), misses


# Was a break, now fixed: secrets: after a rotation that revokes the old token, the cached value is used for up to SECRETS_MAX_AGE_SECONDS (300 s): every GetTask fails unauthenticated (the executor fails the task after 5 errors, ~150 s)
def test_a_rotated_token_is_refetched_when_the_remote_refuses_the_cached_one(aws_world, monkeypatch):
    with FakeDatabricks(token="dapi-old-token-1111") as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", fake.instance)
        world = _db_world(aws_world, monkeypatch, fake.token)
        handle = world.create(_db_request(world, fake.instance))
        world.boto("secretsmanager").put_secret_value(
            SecretId=f"{world.prefix}/{DB}/databricks_token", SecretString="dapi-new-token-2222"
        )
        fake.token = "dapi-new-token-2222"  # the old token is revoked, as a rotation does
        resource = world.poll(handle, DB)  # raises unauthenticated today
        assert resource.phase
