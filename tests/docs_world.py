"""The executed-docs test's world: `make serve` on free ports, a working directory holding the
checkout, and how a documentation block is run. tests/e2e/test_documentation*.py use it."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.dev.local_dynamodb import HOST, free_port
from tests.doc_blocks import ROOT, Block, all_blocks

BLOCKS = all_blocks()
DOCUMENTED_PORTS = ("8080", "8000", "8081", "9090")
_PORT = re.compile(r"(?P<host>127\.0\.0\.1|localhost|0\.0\.0\.0):(?P<port>8080|8000|8081|9090)\b")
_MAKE_SERVE = re.compile(r"^make serve\b[^#\n]*?(&)?\s*(#.*)?$", re.MULTILINE)
SERIALIZE = textwrap.dedent(
    """
    import importlib.util, pathlib, sys
    import flyte.extras
    from flyte._task import TaskTemplate

    path = pathlib.Path(sys.argv[1])
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    tasks = {id(v): v for v in vars(module).values() if isinstance(v, TaskTemplate)}
    for task in tasks.values():
        flyte.extras.serialize(task)
    print(f"docs-test: {len(tasks)} task(s) serialized")
    if sys.argv[2] == "run":  # then the local run, as `python <script>` would run it
        import runpy

        sys.argv = [str(path)]
        runpy.run_path(str(path), run_name="__main__")
    """
)


def of(disposition: str) -> list[Block]:
    return [block for block in BLOCKS if block.disposition == disposition]


class Docs:
    """make serve on free ports, the working directory, and the values placeholders stand for."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {port: str(free_port()) for port in DOCUMENTED_PORTS}
        self.values: dict[str, str] = {}
        self.process: subprocess.Popen[str] | None = None

    @property
    def api(self) -> str:
        return f"http://{HOST}:{self.ports['8080']}"

    def env(self) -> dict[str, str]:
        kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TASKS_", "PYTEST_", "SECRETS_"))}
        return kept | {
            "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            "AWS_ENDPOINT_URL": f"http://{HOST}:{self.ports['8000']}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def start(self) -> None:
        env = self.env() | {"PORT": self.ports["8080"], "DYNAMODB_PORT": self.ports["8000"]}
        env.pop("AWS_ENDPOINT_URL")  # make serve points the service at its own moto
        self.process = subprocess.Popen(
            ["make", "-s", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, self.process.stdout.read() if self.process.stdout else ""
            try:
                listed = httpx.post(
                    f"{self.api}/flyteidl2.connector.ConnectorMetadataService/ListConnectors", json={}, timeout=5
                )
                if listed.status_code == 200:
                    self.listed = listed.json()
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "make serve did not answer within 120 s"
            time.sleep(0.3)

    def stop(self) -> str:
        if self.process is None:
            return ""
        os.killpg(self.process.pid, signal.SIGINT)  # make and the server it started
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate()
        return output or ""

    def made_task(self) -> None:
        """A task on make serve for the placeholders: ``$HANDLE``, its run ``$RUN``."""
        body = json.loads((ROOT / "examples" / "athena_query.json").read_text())
        made = httpx.post(f"{self.api}/flyteidl2.connector.AsyncConnectorService/CreateTask", json=body, timeout=30)
        assert made.status_code == 200, made.text
        self.values["HANDLE"] = made.json()["resourceMeta"]
        self.values["TABLE"] = "connector-tasks"
        self.values["RUN"] = body["taskExecutionMetadata"]["taskExecutionId"]["nodeExecutionId"]["executionId"]["name"]

    def text(self, block: Block) -> str:
        text = _PORT.sub(lambda m: f"{m.group('host')}:{self.ports[m.group('port')]}", block.text)
        for placeholder, variable in block.substitutions().items():
            assert placeholder in text, f"{block.where}: 'with {placeholder}' but the block has no {placeholder}"
            text = text.replace(placeholder, self.values[variable])
        return text

    @functools.cached_property
    def moto_clients(self) -> dict[str, Any]:
        """Secrets Manager and SSM on make serve's moto, made once (the environment's keys are not this process's)."""
        import boto3

        return {
            name: boto3.client(
                name,
                endpoint_url=f"http://{HOST}:{self.ports['8000']}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in ("secretsmanager", "ssm")
        }

    @contextlib.contextmanager
    def secrets_left_as_they_were(self) -> Iterator[None]:
        """What a block stores in Secrets Manager or SSM is deleted after it: the next block that
        documents the same secret (docs/connectors/index.md's and the Databricks page's) creates it as written."""
        clients = self.moto_clients

        def stored() -> tuple[set[str], set[str]]:
            secrets = {s["Name"] for s in clients["secretsmanager"].list_secrets(MaxResults=100)["SecretList"]}
            parameters = {p["Name"] for p in clients["ssm"].describe_parameters(MaxResults=50)["Parameters"]}
            return secrets, parameters

        before = stored()
        try:
            yield
        finally:
            secrets, parameters = stored()
            for name in secrets - before[0]:
                clients["secretsmanager"].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            for name in parameters - before[1]:
                clients["ssm"].delete_parameter(Name=name)

    def write_files(self) -> None:
        for block in of("file"):
            (self.workdir / str(block.directive("file"))).write_text(self.text(block))


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Iterator[Docs]:
    workdir = tmp_path_factory.mktemp("docs")
    for entry in ROOT.iterdir():
        if entry.name not in (".git",):
            (workdir / entry.name).symlink_to(entry)
    served = Docs(workdir)
    try:
        served.start()
        served.made_task()
        served.write_files()
        yield served
    finally:
        output = served.stop()
        assert "Traceback" not in output, output[-4000:]


def run_shell(docs: Docs, block: Block) -> subprocess.CompletedProcess[str]:
    script = _MAKE_SERVE.sub("true  # make serve: the test's, already running", docs.text(block))
    return run(docs, ["bash", "-e", "-o", "pipefail", "-c", script])


def run(docs: Docs, command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=docs.workdir,
        env=docs.env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def run_in_background(docs: Docs, block: Block) -> str:
    address = _PORT.sub(
        lambda m: f"{m.group('host')}:{docs.ports[m.group('port')]}", str(block.directive("background"))
    )
    host, _, port = address.rpartition(":")
    process = subprocess.Popen(
        ["bash", "-e", "-c", f"exec {docs.text(block).strip()}"],
        cwd=docs.workdir,
        env=docs.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"{block.where} exited: {process.stdout.read() if process.stdout else ''}"
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return address
            except OSError:
                assert time.monotonic() < deadline, f"{block.where}: nothing listening on {address} within 60 s"
                time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=20)


def run_python(docs: Docs, block: Block) -> subprocess.CompletedProcess[str]:
    """Imported as a module, every task it defines serialized (what a deploy does); then, with a
    __main__ part (a local run), run as the script it is."""
    script = docs.workdir / f"docs_block_{block.path.stem}_{block.line}.py"
    script.write_text(docs.text(block))
    runs_main = 'if __name__ == "__main__":' in block.text and block.directive("definitions only") is None
    python = str(ROOT / ".venv" / "bin" / "python")  # one process: flyte takes seconds to import
    return run(docs, [python, "-c", SERIALIZE, str(script), "run" if runs_main else "import"])


def ran_well(block: Block, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (
        f"{block.where} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
