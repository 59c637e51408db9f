"""Issue 16, done when: the twelve task types, each written by its flyte SDK task class and serialized
by the flyte SDK, run through `connectors relay` in front of the local service to SUCCEEDED.

The pieces, each as it runs outside a test:

- the service is `connectors serve`, what `make serve` runs (connectors/dev/serve.py: the embedded
  moto with connectors.dev.fake_aws's patches, the tasks table, the examples' AWS resources, every
  built-in connector, hypercorn), in a child process on free ports (PORT, DYNAMODB_PORT). It is
  started through tests/e2e/serve_with_fake_snowflake.py, which only puts the Snowflake client fake
  in place first: that fake replaces a function inside the serving process, the other fakes are
  servers. A child process rather than serve.py's parts in this one: the command runs exactly as
  `make serve` does, and what a service process keeps for its life (boto3 clients bound to their
  endpoint, the default registry's connectors, the environment a deployment sets) cannot leak into
  the other test modules of an xdist worker, nor theirs into it;
- `connectors relay --unsigned --endpoint http://127.0.0.1:<port> --listen 127.0.0.1:<port>`, a
  child process, as an operator runs it next to an executor;
- the executor's side is flyteidl2's generated gRPC stub, what the executor's client speaks to the
  relay, with its default deadline of 10 s a call. It sends no connection secrets (the open-source
  executor resolves none): every credential is in (moto's) Secrets Manager under
  ``<SECRETS_PREFIX>/<task type>/<name>``, and each remote is named by the deployment's environment
  (SSL_CERT_FILE trusting the fake Databricks' CA, FLYTE_DATABRICKS_ALLOWED_INSTANCES,
  FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS, FLYTE_SLURM_ALLOWED_HOSTS, BIGQUERY_EMULATOR_HOST). The tasks
  name no secret either (Databricks' ``custom_config`` writes ``databricks_token: null`` when none
  is named): a task whose template names one fails in the
  open-source executor before it reaches any connector service;
- the remotes: moto for the eight AWS task types, tests/fake_databricks.py (loopback HTTPS),
  tests/fake_bigquery.py, tests/fake_slurm.py (loopback SSH; the test moves its job on) and
  tests/fake_snowflake.py. Only loopback is used.

Each template is the TaskSpec's that ``translate_task_to_wire`` makes (the serialization flyte's
remote controller sends), of a task made with the plugin's own class: flyteplugins.aws's eight
(defined from each example as tests/functional/aws/test_flyte_tasks.py does), flyteplugins.slurm's
``Slurm`` config, and flyte-sdk 2.12.1's ``BigQueryTask`` and ``Snowflake`` from the locked plugin
wheels. Databricks' ``DatabricksFunctionTask`` cannot be made here (it is a PySpark task; pyspark is
not installed), so its template is written as its ``custom_config`` writes it, as
tests/functional/flyteplugins/test_databricks.py does. Inputs are converted by the SDK; declared
outputs are decoded by the SDK into the declared Python types. Slurm's and Databricks' jobs run the
task's own container, which writes the outputs under the output prefix: their answer carries none
(the executor then reads ``<output_prefix>/outputs.pb``), and that is what is checked for them.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import grpc
import httpx
import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.dev.aws_resources import client_factory
from connectors.dev.local_dynamodb import HOST, free_port
from tests.fake_bigquery import FakeBigQuery
from tests.fake_databricks import FakeDatabricks
from tests.fake_slurm import USER, FakeSlurm
from tests.flyte_requests import execution_metadata
from tests.functional.aws.test_flyte_tasks import CLASSES, case
from tests.functional.flyteplugins.test_bigquery import _load
from tests.functional.flyteplugins.test_databricks import NEW_CLUSTER, TOKEN, databricks_custom
from tests.functional.flyteplugins.test_databricks import template as databricks_template
from tests.functional.flyteplugins.test_slurm import IMAGE
from tests.functional.flyteplugins.test_snowflake import CUSTOM as SNOWFLAKE
from tests.functional.flyteplugins.test_snowflake import rsa_pem
from tests.oracle_wheels import oracle_wheel

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "flyte-connectors-e2e"  # the deployment's SECRETS_PREFIX
DEADLINE = 10.0  # the executor's default deadline for a CreateTask or GetTask call
OUTPUT_PREFIX = "s3://flyte-examples/outputs/e2e"
PASSING = {TaskExecution.QUEUED, TaskExecution.WAITING_FOR_RESOURCES, TaskExecution.INITIALIZING, TaskExecution.RUNNING}
TWELVE = {
    *("athena_query", "redshift_query", "aws_batch_job", "sfn_execution", "emr_serverless_job"),
    *("sagemaker_training_job", "sagemaker_processing_job", "glue_job"),
    *("databricks", "snowflake", "bigquery_query_job_task", "slurm"),  # flyte's own connectors, ported
}
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}


def unique(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 90  # a loaded machine (four test workers) starts a server slowly
    while not ready():
        assert process.poll() is None, f"{what} exited with code {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{what} did not answer within 90 s:\n{log.read_text()}"
        time.sleep(0.1)


def answers(url: str) -> bool:
    """The service's own health answer: another test worker's server may hold the free port a
    moment (two workers can draw the same one) and answer something else."""
    try:
        response = httpx.get(url, timeout=2)
        return response.status_code == 200 and "connectors" in response.json()
    except (httpx.TransportError, ValueError):
        return False


@dataclass
class Stack:
    stub: service_pb2_grpc.AsyncConnectorServiceStub
    metadata: service_pb2_grpc.ConnectorMetadataServiceStub
    aws: str  # the fake AWS (moto) endpoint the service's AWS connectors call
    databricks: FakeDatabricks
    bigquery: FakeBigQuery
    slurm: FakeSlurm
    sdk: SimpleNamespace  # flyte-sdk's BigQuery and Snowflake task modules


class Children:
    """Child processes, each one's output in ``<logs>/<name>.log``, stopped together with SIGINT as
    Ctrl-C stops them; a traceback in any log fails the module."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[Any], Path]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[Any], Path]:
        log = self.logs / f"{name}.log"
        with log.open("w") as out:  # the child holds its own copy
            process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.running.append((process, log))
        return process, log

    def __enter__(self) -> Children:
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        for process, _ in self.running:
            process.send_signal(signal.SIGINT)
        for process, log in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if failed is None:  # else the failure in hand already says what went wrong
                assert "Traceback" not in log.read_text(), f"{log.name}:\n{log.read_text()}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("e2e_relay")
    with ExitStack() as stack:
        databricks = stack.enter_context(FakeDatabricks(token=TOKEN))
        bigquery = stack.enter_context(FakeBigQuery())
        slurm = stack.enter_context(FakeSlurm())
        children = stack.enter_context(Children(logs))
        port, dynamodb_port, relay_port = free_port(), free_port(), free_port()
        base, moto = f"http://{HOST}:{port}", f"http://{HOST}:{dynamodb_port}"
        # The deployment's environment; none of the test process's AWS endpoints or table.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "TASKS_TABLE")
        }
        env |= {
            "PORT": str(port),
            "DYNAMODB_PORT": str(dynamodb_port),
            "SECRETS_PREFIX": PREFIX,
            "SSL_CERT_FILE": databricks.cafile,
            "FLYTE_DATABRICKS_ALLOWED_INSTANCES": databricks.instance,
            "FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS": SNOWFLAKE["account"],
            "FLYTE_SLURM_ALLOWED_HOSTS": HOST,
            "BIGQUERY_EMULATOR_HOST": bigquery.url,
        }
        served = children.start("serve", [sys.executable, "-m", "tests.e2e.serve_with_fake_snowflake"], env)
        # Alone while it starts: its embedded moto gives up after 20 s, and two CPUs shared by four
        # test workers are slow enough already.
        wait_until(lambda: answers(f"{base}/healthz"), "connectors serve", *served)
        relay = ["relay", "--unsigned", "--endpoint", base, "--listen", f"{HOST}:{relay_port}"]
        relayed = children.start("relay", [sys.executable, "-m", "connectors.cli", *relay], dict(os.environ))
        # While the relay starts: flyte-sdk's task modules, and each credential where the deployment keeps it.
        sdk = SimpleNamespace(
            bigquery=sdk_task_module("flyteplugins-bigquery", logs),
            snowflake=sdk_task_module("flyteplugins-snowflake", logs),
        )
        secrets = client_factory(moto)("secretsmanager")
        for task_type, name, value in [
            ("databricks", "databricks_token", TOKEN),
            ("snowflake", "snowflake_private_key", rsa_pem()),
            ("bigquery_query_job_task", "google_application_credentials", bigquery.service_account_json()),
            ("slurm", "ssh_private_key", slurm.private_key),
            ("slurm", "known_hosts_data", slurm.known_hosts),
        ]:
            secrets.create_secret(Name=f"{PREFIX}/{task_type}/{name}", SecretString=value)
        channel = stack.enter_context(grpc.insecure_channel(f"{HOST}:{relay_port}"))
        wait_until(lambda: grpc_ready(channel), "connectors relay", *relayed)
        yield Stack(
            service_pb2_grpc.AsyncConnectorServiceStub(channel),
            service_pb2_grpc.ConnectorMetadataServiceStub(channel),
            moto,
            databricks,
            bigquery,
            slurm,
            sdk,
        )


def grpc_ready(channel: grpc.Channel) -> bool:
    try:
        grpc.channel_ready_future(channel).result(timeout=1)
    except grpc.FutureTimeoutError:
        return False
    return True


def sdk_task_module(project: str, where: Path) -> ModuleType:
    """flyte-sdk's ``task.py`` of ``project``'s locked wheel, imported alone (the package's
    ``__init__`` imports pandas, which this venv does not hold)."""
    package = project.removeprefix("flyteplugins-")
    path = where / f"{package}_task.py"
    with zipfile.ZipFile(oracle_wheel(project)) as wheel:
        path.write_bytes(wheel.read(f"flyteplugins/{package}/task.py"))
    return _load(f"_e2e_flyte_sdk_{package}_task", path)


# -- the tasks -----------------------------------------------------------------------------------


@dataclass
class Case:
    request: pb.CreateTaskRequest  # as the executor sends it
    task: Any = None  # the flyte SDK task (None: Databricks, see the module's docstring)
    steer: Callable[[], None] = lambda: None  # moves the remote job on, after each poll that is not final
    outputs_answered: bool = True  # False: the job's own container writes them under the output prefix
    uri_prefix: str = ""  # where a DataFrame output of this remote lives


def executor_request(template: Any, inputs: Any = None) -> pb.CreateTaskRequest:
    return pb.CreateTaskRequest(
        inputs=inputs,
        template=template,
        output_prefix=OUTPUT_PREFIX,
        task_execution_metadata=execution_metadata(unique("r").replace("_", "-")),
    )


def sdk_case(task: Any, values: dict[str, Any], **options: Any) -> Case:
    """The task serialized as flyte's remote controller does, its inputs converted by the SDK."""
    import flyte
    from flyte._internal.runtime.convert import convert_from_native_to_inputs
    from flyte._internal.runtime.task_serde import translate_task_to_wire
    from flyte.models import SerializationContext

    if task.parent_env is None:
        flyte.TaskEnvironment.from_task(unique("env"), task)
    context = SerializationContext(version="v1", project="flytesnacks", domain="development", root_dir=ROOT)
    spec = translate_task_to_wire(task, context)
    assert spec.task_template.id.name == task.name and spec.environment.name
    inputs = asyncio.run(convert_from_native_to_inputs(task.native_interface, **values)).proto_inputs
    return Case(executor_request(spec.task_template, inputs), task, **options)


def aws_case(task_class: Any) -> Callable[[Stack], Case]:
    def build(stack: Stack) -> Case:
        # case() skips a class whose connector, example or resources are not written yet: here, all are.
        for module in (task_class._CONNECTOR.split(":")[0], f"connectors.dev.aws_resources.{task_class._TASK_TYPE}"):
            importlib.import_module(module)
        assert (ROOT / "examples" / f"{task_class._TASK_TYPE}.json").is_file()
        task, values, _ = case(task_class, stack.aws)  # from examples/<task type>.json
        return sdk_case(task, values, uri_prefix="s3://flyte-examples/")  # where the examples' jobs write

    build.__name__ = task_class._TASK_TYPE
    return build


def databricks(stack: Stack) -> Case:
    custom = databricks_custom(NEW_CLUSTER, stack.databricks.instance, secret=None)  # no secret name declared
    return Case(executor_request(databricks_template(custom)), outputs_answered=False)


def snowflake(stack: Stack) -> Case:
    sdk = stack.sdk.snowflake
    from flyte.io import DataFrame

    task = sdk.Snowflake(
        name=unique("sf"),
        query_template="SELECT * FROM users WHERE id = %(id)s AND name = %(name)s",
        plugin_config=sdk.SnowflakeConfig(**SNOWFLAKE),
        inputs={"id": int, "name": str},
        output_dataframe_type=DataFrame,
    )
    return sdk_case(task, {"id": 7, "name": "ann"}, uri_prefix="snowflake://FLYTE/myorg-myaccount/COMPUTE_WH/")


def bigquery_query_job_task(stack: Stack) -> Case:
    sdk = stack.sdk.bigquery
    from flyte.io import DataFrame

    task = sdk.BigQueryTask(
        name=unique("bq"),
        query_template="select * from `p.d.t` where a = @a",
        plugin_config=sdk.BigQueryConfig(ProjectID="flyte-project", Location="US"),
        inputs={"a": int},
        output_dataframe_type=DataFrame,
    )
    return sdk_case(task, {"a": 7}, uri_prefix="bq://flyte-project:")


def slurm(stack: Stack) -> Case:
    import flyte
    from flyteplugins.slurm import Slurm  # type: ignore[import-untyped]

    config = Slurm(partition="main", time_limit="1:00:00", host=HOST, port=stack.slurm.port, username=USER)
    env = flyte.TaskEnvironment(name=unique("slurm"), plugin_config=config, image=IMAGE)

    @env.task
    async def train(steps: int) -> float:
        return float(steps)

    following = {"PENDING": "RUNNING", "RUNNING": "COMPLETED"}

    def steer() -> None:  # the cluster runs the job: PENDING, RUNNING, COMPLETED
        (job,) = stack.slurm.jobs.values()
        stack.slurm.set_state(job.job_id, following.get(job.state, job.state))

    made = sdk_case(train, {"steps": 3}, steer=steer, outputs_answered=False)
    made.request.task_execution_metadata.environment_variables["_U_RUN_BASE"] = "s3://flyte-examples/run"
    return made


CASES = [*map(aws_case, CLASSES), databricks, snowflake, bigquery_query_job_task, slurm]


# -- the executor's side -------------------------------------------------------------------------


def run_to_the_end(stack: Stack, made: Case) -> tuple[pb.Resource, list[int]]:
    """CreateTask (twice: the same handle), then GetTask as the executor polls it until the phase
    is final; that answer, and the phases seen before it."""
    handle = stack.stub.CreateTask(made.request, timeout=DEADLINE).resource_meta
    assert handle
    assert stack.stub.CreateTask(made.request, timeout=DEADLINE).resource_meta == handle
    template = made.request.template
    poll = pb.GetTaskRequest(
        resource_meta=handle,
        task_category=pb.TaskCategory(name=template.type, version=template.task_type_version),
        output_prefix=made.request.output_prefix,
    )
    seen: list[int] = []
    deadline = time.monotonic() + 45
    while (resource := stack.stub.GetTask(poll, timeout=DEADLINE).resource).phase not in TERMINAL:
        seen.append(resource.phase)
        assert time.monotonic() < deadline, f"still {TaskExecution.Phase.Name(resource.phase)}: {resource.message}"
        made.steer()
        time.sleep(0.1)
    return resource, seen


def decoded(task: Any, resource: pb.Resource) -> tuple[Any, ...]:
    """The answer's outputs as the flyte SDK reads them back, one value per declared output."""
    from flyte._internal.runtime.convert import Outputs, convert_outputs_to_native

    got = asyncio.run(convert_outputs_to_native(task.native_interface, Outputs(proto_outputs=resource.outputs)))
    return (got,) if len(task.native_interface.outputs) == 1 else tuple(got or ())


def test_the_relay_lists_the_twelve_task_types(stack):
    listed = stack.metadata.ListConnectors(pb.ListConnectorsRequest(), timeout=DEADLINE)
    served = {category.name for m in listed.connectors for category in m.supported_task_categories}
    assert not TWELVE - served, f"the relay does not list {sorted(TWELVE - served)}"
    assert {build.__name__ for build in CASES} == TWELVE  # each has its case below


@pytest.mark.parametrize("build", CASES, ids=lambda build: build.__name__)
def test_a_task_the_sdk_serialized_runs_through_the_relay_to_success(stack, build):
    made = build(stack)
    resource, seen = run_to_the_end(stack, made)
    assert resource.phase == TaskExecution.SUCCEEDED, f"{TaskExecution.Phase.Name(resource.phase)}: {resource.message}"
    assert set(seen) <= PASSING, [TaskExecution.Phase.Name(phase) for phase in seen]
    declared = made.task.native_interface.outputs if made.task is not None else {}
    if not (made.outputs_answered and declared):  # nothing declared, or the job's container writes them
        assert not resource.outputs.literals, [literal.name for literal in resource.outputs.literals]
        return
    values = decoded(made.task, resource)
    assert len(values) == len(declared)
    for value, kind in zip(values, declared.values(), strict=True):
        assert isinstance(value, kind), (value, kind)
        location = getattr(value, "uri", None) or getattr(value, "path", None)
        if location is not None:
            assert location.startswith(made.uri_prefix), location
