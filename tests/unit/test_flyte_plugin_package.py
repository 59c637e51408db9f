"""flyteplugins-aws (flyte_plugin/): the distribution a Flyte workflow image installs.

Its wheel builds and requires only flyte; ``flyteplugins`` is a namespace package, as in
flyte-sdk's plugin wheels; importing the task classes pulls in no AWS or service library; each
class writes exactly the custom fields of its row in the spec, omitting the ones not given.
"""

from __future__ import annotations

import datetime
import email
import inspect
import pathlib
import subprocess
import sys
import zipfile

import pytest
from flyte.io import DataFrame, Dir, File
from flyte.models import SerializationContext

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

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "flyte_plugin"
SCTX = SerializationContext(version="v1", project="flytesnacks", domain="development")

# Every class with a value for each of its fields (required ones first) and its task type:
# the custom field names are the spec table's, the contract with the connectors.
S3 = "s3://bucket/prefix"
ROLE = "arn:aws:iam::123456789012:role/r"
FIELDS = {
    AthenaQueryTask: (
        "athena_query",
        {
            "query": "select ?",
            "parameters": ["day"],
            "work_group": "flyte",
            "catalog": "AwsDataCatalog",
            "database": "default",
            "output_location": S3,
        },
    ),
    RedshiftQueryTask: (
        "redshift_query",
        {
            "query": "select :day",
            "database": "dev",
            "cluster_identifier": "c1",
            "db_user": "flyte",
            "secret_arn": "arn:aws:secretsmanager:x",
            "unload_prefix": S3,
            "unload_iam_role": ROLE,
        },
    ),
    BatchJobTask: (
        "aws_batch_job",
        {
            "job_queue": "q",
            "job_definition": "d:1",
            "container_overrides": {"command": ["echo", "Ref::day"]},
            "environment": {"STAGE": "x"},
            "array_size": 2,
            "timeout_seconds": 60,
            "tags": {"team": "a"},
        },
    ),
    StepFunctionsTask: (
        "sfn_execution",
        {"state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:m", "input": {"mode": "full"}},
    ),
    EmrServerlessJobTask: (
        "emr_serverless_job",
        {
            "application_id": "app",
            "execution_role_arn": ROLE,
            "entry_point": f"{S3}/job.py",
            "entry_point_arguments": ["--x"],
            "spark_submit_parameters": "--conf a=b",
            "configuration_overrides": {"monitoringConfiguration": {}},
            "name": "wordcount",
            "execution_timeout_minutes": 5,
            "tags": {"team": "a"},
        },
    ),
    SageMakerTrainingJobTask: (
        "sagemaker_training_job",
        {
            "algorithm_specification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "role_arn": ROLE,
            "output_path": S3,
            "resource_config": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "stopping_condition": {"MaxRuntimeInSeconds": 60},
            "hyperparameters": {"eta": "0.1"},
            "input_data_config": [{"ChannelName": "extra"}],
            "environment": {"A": "b"},
            "tags": {"team": "ml"},
        },
    ),
    SageMakerProcessingJobTask: (
        "sagemaker_processing_job",
        {
            "app_specification": {"ImageUri": "img"},
            "role_arn": ROLE,
            "processing_resources": {"ClusterConfig": {"InstanceCount": 1}},
            "processing_outputs": [{"OutputName": "features"}],
            "processing_inputs": [{"InputName": "code"}],
            "environment": {"A": "b"},
            "stopping_condition": {"MaxRuntimeInSeconds": 60},
            "network_config": {"EnableNetworkIsolation": True},
            "tags": [{"Key": "team", "Value": "ml"}],
        },
    ),
    GlueJobTask: (
        "glue_job",
        {
            "job_name": "load",
            "arguments": {"--stage": "x"},
            "worker_type": "G.1X",
            "number_of_workers": 2,
            "timeout_minutes": 30,
            "max_capacity": 2.0,
        },
    ),
}
REQUIRED = {
    AthenaQueryTask: {"query"},
    RedshiftQueryTask: {"query", "database", "cluster_identifier"},
    BatchJobTask: {"job_queue", "job_definition"},
    StepFunctionsTask: {"state_machine_arn"},
    EmrServerlessJobTask: {"application_id", "execution_role_arn", "entry_point"},
    SageMakerTrainingJobTask: {"algorithm_specification", "role_arn", "output_path", "resource_config"},
    SageMakerProcessingJobTask: {"app_specification", "role_arn", "processing_resources"},
    GlueJobTask: {"job_name"},
}
KWARG = {"name": "job_run_name"}  # EMR Serverless's job run name: ``name`` is the task's own


def make(cls: type, fields: dict, **kwargs):
    return cls("t", **{KWARG.get(key, key): value for key, value in fields.items()}, **kwargs)


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda cls: cls.__name__)
def test_each_class_writes_exactly_its_spec_fields_under_its_task_type(cls):
    task_type, fields = FIELDS[cls]
    outputs = {"model": File, "n": int} if cls._GIVES_OUTPUTS else {}
    task = make(cls, fields, inputs={"day": str, "when": datetime.datetime, "raw": Dir}, outputs=outputs)
    assert task.task_type == task_type and task.task_type_version == 0 and task.image is None
    assert task.parent_env_name == "t"  # its own environment until from_task puts it in one
    assert task.custom_config(SCTX) == fields
    no_default = inspect.Parameter.empty  # what the flyte SDK reads as "required, no default"
    assert task.native_interface.inputs == {
        "day": (str, no_default), "when": (datetime.datetime, no_default), "raw": (Dir, no_default)
    }  # fmt: skip
    assert task.native_interface.outputs == outputs


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda cls: cls.__name__)
def test_a_task_with_inputs_serializes_and_its_inputs_are_required(cls):
    """Issue 16, item 1: inputs declared (type, None) read as defaults of None to flyte, so
    flyte.extras.serialize (and flyte deploy's default upload) failed: "Failed to convert default
    value for parameter 'day'", and a forgotten input was no missing input."""
    import flyte.extras

    _, fields = FIELDS[cls]
    task = make(cls, fields, inputs={"day": str, "count": int})
    assert sorted(task.native_interface.required_inputs()) == ["count", "day"]
    serialized = flyte.extras.serialize(task)
    assert serialized


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda cls: cls.__name__)
def test_fields_not_given_are_left_out_and_required_ones_are_refused_when_missing_or_empty(cls):
    _, fields = FIELDS[cls]
    required = {key: value for key, value in fields.items() if key in REQUIRED[cls]}
    task = make(cls, required)
    assert task.custom_config(SCTX) == required and task.native_interface.inputs == {}
    for key in REQUIRED[cls] - {"cluster_identifier"}:
        with pytest.raises(TypeError):
            make(cls, {k: v for k, v in required.items() if k != key})
        with pytest.raises(ValueError, match=key):
            make(cls, {**required, key: "" if isinstance(required[key], str) else {}})


def test_query_tasks_carry_their_sql_and_output_dataframe_type_declares_results():
    task = AthenaQueryTask("q", query="select 1", output_dataframe_type=DataFrame)
    assert task.native_interface.outputs == {"results": DataFrame}
    assert task.sql(SCTX).statement == "select 1"
    with pytest.raises(ValueError, match="results"):
        AthenaQueryTask("q", query="select 1", outputs={"results": DataFrame}, output_dataframe_type=DataFrame)
    assert BatchJobTask("b", job_queue="q", job_definition="d").sql(SCTX) is None


def test_redshift_needs_exactly_one_target_and_a_role_to_unload():
    with pytest.raises(ValueError, match="exactly one"):
        RedshiftQueryTask("r", query="select 1", database="dev")
    with pytest.raises(ValueError, match="exactly one"):
        RedshiftQueryTask("r", query="select 1", database="dev", cluster_identifier="c", workgroup_name="w")
    with pytest.raises(ValueError, match="unload_iam_role"):
        RedshiftQueryTask("r", query="select 1", database="dev", workgroup_name="w", unload_prefix="s3://b/u")
    task = RedshiftQueryTask("r", query="select 1", database="dev", workgroup_name="w")
    assert task.custom_config(SCTX) == {"query": "select 1", "database": "dev", "workgroup_name": "w"}


def test_fields_must_be_json_and_the_custom_config_is_a_copy():
    with pytest.raises(TypeError, match="JSON"):
        StepFunctionsTask("s", state_machine_arn="arn", input={"at": datetime.datetime(2026, 1, 1)})
    task = StepFunctionsTask("s", state_machine_arn="arn", input={"mode": "full"})
    task.custom_config(SCTX)["input"]["mode"] = "changed"
    assert task.custom_config(SCTX)["input"] == {"mode": "full"}


def test_an_auto_cache_is_versioned_by_the_fields_since_there_is_no_function_to_hash():
    one = GlueJobTask("g", job_name="load", cache="auto")
    same = GlueJobTask("g", job_name="load", cache="auto")
    other = GlueJobTask("g", job_name="load", arguments={"--stage": "prod"}, cache="auto")
    assert one.cache.behavior == "override" and one.cache.version_override == same.cache.version_override
    assert other.cache.version_override != one.cache.version_override
    assert GlueJobTask("g", job_name="load").cache.behavior == "disable"


def test_importing_the_task_classes_pulls_in_no_aws_or_service_library():
    script = (
        "import sys, flyteplugins.aws\n"
        "heavy = ('connectors', 'boto3', 'botocore', 'fastapi', 'mangum', 'connectrpc', 'moto')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_wheel_builds_requires_only_flyte_and_shares_the_flyteplugins_namespace(tmp_path):
    done = subprocess.run(
        # the locked setuptools in .venv, not one resolved anew into an isolated build environment
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(PLUGIN),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("flyteplugins_aws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = email.message_from_string(archive.read(next(n for n in names if n.endswith("/METADATA"))).decode())
    assert metadata["Name"] == "flyteplugins-aws"
    assert metadata.get_all("Requires-Dist") == ["flyte[connector]>=2.12"]
    # As in flyte-sdk's plugin wheels (flyteplugins/bigquery/...): no flyteplugins/__init__.py.
    assert "flyteplugins/__init__.py" not in names and "flyteplugins/aws/__init__.py" in names
    modules = [n for n in names if n.startswith("flyteplugins/aws/") and n.endswith(".py")]
    assert {"flyteplugins/aws/_local.py", "flyteplugins/aws/_task.py"} <= set(modules)
    with zipfile.ZipFile(wheel) as archive:
        assert max(archive.read(n).decode().count("\n") for n in modules) <= 300


@pytest.mark.parametrize(
    "cls, fields",
    [
        ("BatchJobTask", {"job_queue": "q", "job_definition": "d"}),
        ("GlueJobTask", {"job_name": "j"}),
        (
            "EmrServerlessJobTask",
            {"application_id": "a", "execution_role_arn": "arn:aws:iam::1:role/r", "entry_point": "s3://b/x.py"},
        ),
    ],
)
def test_a_task_of_a_job_that_gives_no_outputs_cannot_declare_one(cls, fields):
    import flyteplugins.aws as aws

    with pytest.raises(TypeError, match="gives no outputs"):
        getattr(aws, cls)(name="t", outputs={"rows": int}, **fields)
    assert getattr(aws, cls)(name="t", **fields).custom_fields
