"""The flyteplugins.aws task classes as a workflow author uses them, against moto over HTTP.

1. Each class: a task defined with it is serialized by the flyte SDK (``get_proto_task``, as the
   SDK does for a deploy or a run), its inputs by the SDK's own conversion, and the resulting
   CreateTaskRequest runs through the served app to its connector and is polled to SUCCEEDED;
   the flyte SDK reads the outputs back as the declared types.
2. Local runs (``flyte.run`` in local mode) through the same connectors, called in-process by
   flyteplugins.aws._local: every example of docs/flyte-tasks.md, run as ``python example.py``
   would (one workflow per class, and one of Glue, Athena and Step Functions together); a Dir
   input and output; a refusal; a cancelled run; a task outside any environment.

A class whose connector module (connectors/builtin/aws/<module>.py) or example request
(examples/<task type>.json, whose field values name the resources moto has) is not there yet is
skipped; each turns on when they land. Athena's served case is written out here.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import subprocess
import sys
import uuid
from typing import Any

import flyte
import pytest
from flyte.io import DataFrame, Dir, File
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

import flyteplugins.aws
from connectors.dev.aws_resources.athena_query import RESULTS, WORK_GROUP
from flyteplugins.aws import (
    AthenaQueryTask,
    BatchJobTask,
    EmrServerlessJobTask,
    GlueJobTask,
    RedshiftQueryTask,
    SageMakerProcessingJobTask,
    SageMakerTrainingJobTask,
    StepFunctionsTask,
)
from flyteplugins.aws._local import ConnectorNotInstalled, LocalConnector, idempotency_token
from tests.flyte_requests import execution_metadata

ROOT = pathlib.Path(__file__).resolve().parents[3]
CLASSES = [
    AthenaQueryTask,
    RedshiftQueryTask,
    BatchJobTask,
    StepFunctionsTask,
    EmrServerlessJobTask,
    SageMakerTrainingJobTask,
    SageMakerProcessingJobTask,
    GlueJobTask,
]
# Custom fields whose keyword argument has another name (``name`` is the task's own).
KWARG = {EmrServerlessJobTask: {"name": "job_run_name"}}


def connector_class(task_class: type) -> type:
    module, name = task_class._CONNECTOR.split(":")
    found = pytest.importorskip(module, reason=f"{module} (the {task_class._TASK_TYPE} connector) is not written yet")
    return getattr(found, name)


def python_type(literal_type: Any) -> type:
    from flyte.types import TypeEngine

    if literal_type.HasField("structured_dataset_type"):
        return DataFrame
    if literal_type.HasField("blob"):
        return Dir if literal_type.blob.dimensionality == 1 else File
    return TypeEngine.guess_python_type(literal_type)


def unique(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def case(task_class: type, endpoint: str) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """A task defined with ``task_class``, native input values for it, and the custom fields the
    example request has (None for a case written out here)."""
    from connectors.dev.aws_resources import client_factory

    if task_class is AthenaQueryTask:
        task = AthenaQueryTask(
            name=unique("athena_daily"),
            query="select * from events where day = ? and n > ?",
            work_group=WORK_GROUP,
            database="default",
            inputs={"day": str, "n": int},
            output_dataframe_type=DataFrame,
        )
        return task, {"day": "2026-01-02", "n": 3}, None
    connector_class(task_class)
    path = ROOT / "examples" / f"{task_class._TASK_TYPE}.json"
    if not path.exists():
        pytest.skip(f"examples/{path.name} (the resources this case names) is not written yet")
    resources = pytest.importorskip(
        f"connectors.dev.aws_resources.{task_class._TASK_TYPE}",
        reason=f"the resources of examples/{path.name} are not written yet",
    )
    resources.create(client_factory(endpoint))  # idempotent; it may have landed after the session began
    example = json_format.Parse(path.read_text(), pb.CreateTaskRequest())
    custom = json_format.MessageToDict(example.template.custom)
    rename = KWARG.get(task_class, {})
    interface = example.template.interface
    inputs = {entry.key: python_type(entry.value.type) for entry in interface.inputs.variables}
    outputs = {entry.key: python_type(entry.value.type) for entry in interface.outputs.variables}
    task = task_class(
        unique(task_class._TASK_TYPE),
        **{rename.get(key, key): value for key, value in custom.items()},
        inputs=inputs,
        outputs=outputs,
    )
    return task, flyte_values(example, inputs), custom


def flyte_values(example: pb.CreateTaskRequest, types: dict[str, type]) -> dict[str, Any]:
    """The example's input literals as flyte's native values."""
    from flyte.types import TypeEngine
    from flyteidl2.core.literals_pb2 import LiteralMap

    literals = LiteralMap(literals={named.name: named.value for named in example.inputs.literals})
    return asyncio.run(TypeEngine.literal_map_to_kwargs(literals, types))


def serialized(task: Any) -> Any:
    """The TaskTemplate the flyte SDK writes for the task (as a deploy does)."""
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.models import SerializationContext

    if task.parent_env is None:
        flyte.TaskEnvironment.from_task(unique("aws"), task)
    return get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain="development"))


@pytest.mark.parametrize("task_class", CLASSES, ids=lambda cls: cls.__name__)
def test_a_task_serialized_by_the_sdk_runs_through_the_served_app_to_success(aws_endpoint, aws_world, task_class):
    from flyte._internal.runtime.convert import Outputs, convert_from_native_to_inputs, convert_outputs_to_native

    task, values, example_custom = case(task_class, aws_endpoint)
    template = serialized(task)
    assert template.type == task_class._TASK_TYPE and template.task_type_version == 0
    custom = json_format.MessageToDict(template.custom)
    assert custom == task.custom_fields and None not in custom.values()
    if example_custom is not None:  # the class writes exactly the fields the connector reads
        assert custom == example_custom
    inputs = asyncio.run(convert_from_native_to_inputs(task.native_interface, **values)).proto_inputs
    request = pb.CreateTaskRequest(
        inputs=inputs,
        template=template,
        output_prefix="s3://flyte-examples/outputs/prefix",
        task_execution_metadata=execution_metadata(unique("r").replace("_", "-")),
    )
    world = aws_world(connector_class(task_class)())
    handle = world.create(request)
    resource = world.wait(handle, task_class._TASK_TYPE, timeout=60)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    got = asyncio.run(convert_outputs_to_native(task.native_interface, Outputs(proto_outputs=resource.outputs)))
    declared = task.native_interface.outputs
    got = (got,) if len(declared) == 1 else (got or ())
    assert len(got) == len(declared)
    for value, kind in zip(got, declared.values(), strict=True):
        assert isinstance(value, kind)
    if task_class is AthenaQueryTask:
        query_id = resource.custom_info["query_execution_id"]
        query = world.boto("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert query["Query"] == custom["query"] and query["ExecutionParameters"] == ["'2026-01-02'", "3"]
        assert got[0].uri == f"{RESULTS}{query_id}.csv" and got[0].format == "csv"


# -- local runs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_flyte(aws_endpoint, tmp_path_factory):
    from connectors.dev.aws_resources import create_example_resources

    create_example_resources(aws_endpoint)  # again: idempotent, for resource modules that landed later
    flyte.init(root_dir=tmp_path_factory.mktemp("flyte_root"))
    return aws_endpoint


def run_locally(workflow: Any, **inputs: Any) -> Any:
    return flyte.with_runcontext(mode="local").run(workflow, **inputs).outputs()


def doc_examples() -> list[Any]:
    """The runnable examples of docs/flyte-tasks.md (the ones with a ``__main__`` block)."""
    text = (ROOT / "docs" / "flyte-tasks.md").read_text()
    blocks = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if '__name__ == "__main__"' in block]
    return [pytest.param(block, id=re.search(r"async def (\w+)", block).group(1)) for block in blocks]


@pytest.mark.parametrize("example", doc_examples())
def test_each_example_in_the_docs_runs_locally_through_the_connectors(local_flyte, example, capsys):
    for name in set(re.findall(r"\b(\w+Task)\(", example)):
        connector_class(getattr(flyteplugins.aws, name))
    # As `python example.py` runs it: flyte.init(), then flyte.run in local mode.
    exec(compile(example, "docs/flyte-tasks.md", "exec"), {"__name__": "__main__"})  # noqa: S102 - the docs' own example
    printed = capsys.readouterr().out
    if "async def daily(" in example:  # Glue, then Athena, then Step Functions
        assert "results at s3://flyte-examples/athena/" in printed and "1 rows on 2026-01-01" in printed
    if "AthenaQueryTask(" in example and "def athena_report(" in example:
        assert "s3://flyte-examples/athena/" in printed


def test_a_local_run_hands_the_connector_a_dir_input_and_gives_back_its_dir_output(local_flyte):
    from connectors.dev.aws_resources import client_factory

    prep, values, _ = case(SageMakerProcessingJobTask, local_flyte)
    raw = Dir.from_existing_remote("s3://flyte-examples/sagemaker/data/")
    aws = flyte.TaskEnvironment.from_task(unique("aws_prep"), prep)
    env = flyte.TaskEnvironment(name=unique("ml"), depends_on=[aws])

    @env.task
    async def features() -> Dir:
        return await prep(**{**values, "raw": raw})

    sagemaker = client_factory(local_flyte)("sagemaker")
    before = {job["ProcessingJobName"] for job in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]}
    out = run_locally(features)
    out = out[0] if isinstance(out, tuple) else out
    (name,) = {job["ProcessingJobName"] for job in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]} - before
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    given = {item["InputName"]: item["S3Input"]["S3Uri"] for item in job["ProcessingInputs"]}
    assert given["raw"] == raw.path  # the flyte.io.Dir reached the connector as a DirRef
    output_uri = {item["OutputName"]: item["S3Output"]["S3Uri"] for item in job["ProcessingOutputConfig"]["Outputs"]}
    assert isinstance(out, Dir) and out.path == output_uri["features"]


def test_an_athena_task_run_on_its_own_locally_gives_its_dataframe(local_flyte):
    task = AthenaQueryTask(
        name=unique("alone"), query="select 1", work_group=WORK_GROUP, output_dataframe_type=DataFrame
    )
    frame = run_locally(task)
    frame = frame[0] if isinstance(frame, tuple) else frame
    assert isinstance(frame, DataFrame) and frame.uri.startswith(RESULTS) and frame.format == "csv"


def test_aws_refusing_a_query_fails_the_local_run_with_awss_message(local_flyte):
    task = AthenaQueryTask(
        name=unique("failing"), query="select 1", work_group="no-such-group", output_dataframe_type=DataFrame
    )
    with pytest.raises(Exception, match="WorkGroup does not exist"):
        run_locally(task)


def test_the_local_token_is_the_services_derivation_and_each_local_attempt_gets_its_own():
    from connectors.store.record import TaskExecutionKey

    metadata = execution_metadata("run-1", "a7", 2)
    assert idempotency_token(metadata) == TaskExecutionKey.from_metadata(metadata).idempotency_token()
    assert idempotency_token(execution_metadata("run-1", "a7", 3)) != idempotency_token(metadata)


def test_a_local_run_without_the_service_package_says_what_to_install(tmp_path):
    # A fresh interpreter in which `connectors` cannot be imported, as in a plain workflow image.
    script = """
import sys
sys.modules["connectors"] = None
from flyteplugins.aws import GlueJobTask
from flyteplugins.aws._local import connector_for, ConnectorNotInstalled
task = GlueJobTask(name="load", job_name="load-events")
try:
    connector_for(task)
except ConnectorNotInstalled as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "flyte-aws-connectors" in done.stdout and "pip install" in done.stdout, done.stdout + done.stderr
    assert "connectors.builtin.aws.glue.GlueJobConnector" in done.stdout
    assert issubclass(ConnectorNotInstalled, ImportError) and LocalConnector.metadata_type is not None


def test_a_job_task_called_from_a_workflow_without_an_environment_of_its_own_runs_locally(local_flyte):
    # As most examples write it: the AWS task is not put in an environment with from_task.
    task, values, _ = case(StepFunctionsTask, local_flyte)
    env = flyte.TaskEnvironment(name=unique("caller"))

    @env.task
    async def caller() -> None:
        await task(**values)

    run_locally(caller)
    assert serialized_alone(task).container.image == ""  # no image: the connector service runs it


def serialized_alone(task: Any) -> Any:
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.models import SerializationContext

    return get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain="development"))


def test_a_cancelled_local_run_stops_the_job_it_started(aws_world):
    from flyte.connectors import ConnectorRegistry

    from connectors.builtin.aws.athena import AthenaQueryConnector
    from flyteplugins.aws._local import run_locally as local_execute

    world = aws_world(AthenaQueryConnector())
    task = AthenaQueryTask(name=unique("cancelled"), query="select 1", work_group=WORK_GROUP)
    started: list[str] = []

    async def execute(**kwargs):  # the SDK mixin's part: create, then the user presses Ctrl-C
        connector = ConnectorRegistry.get_connector("athena_query")
        handle = await connector.create(
            serialized(task),
            "/tmp/flyte-out",
            {},
            task_execution_metadata=execution_metadata(unique("r").replace("_", "-")),
        )
        started.append(handle.meta.query_execution_id)
        raise asyncio.CancelledError

    world.hold("athena::execution")
    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(local_execute(task, execute, {}))
        query = world.boto("athena").get_query_execution(QueryExecutionId=started[0])["QueryExecution"]
        assert query["Status"]["State"] == "CANCELLED"
    finally:
        world.release("athena::execution")
