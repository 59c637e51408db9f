"""Each connector's replay window is what docs/aws-connectors.md ("How long each service honours
the token") says of its remote, and its replay hint names what the create would have used."""

from __future__ import annotations

import pathlib
from datetime import timedelta

import pytest
from flyteidl2.connector import connector_pb2 as pb
from google.protobuf import json_format

from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_classes
from connectors.builtin.echo import EchoConnector
from connectors.builtin.flyteplugins import FLYTEPLUGIN_CONNECTORS, flyteplugin_connector_class
from connectors.replay import past_replay_window, replay_window
from connectors.settings import Settings
from connectors.store import TaskRecord

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
TOKEN = "0123456789abcdef0123456789abcdef"
WINDOWS = {
    "athena_query": None,
    "redshift_query": None,
    "emr_serverless_job": None,
    "sfn_execution": timedelta(days=90),
    "sagemaker_training_job": timedelta.max,
    "sagemaker_processing_job": timedelta.max,
    "aws_batch_job": timedelta(days=7),
    "glue_job": timedelta(days=90),
    "bigquery_query_job_task": timedelta(days=180),
    "snowflake": timedelta(days=1),
    "slurm": timedelta(days=7),
    "databricks": None,
}
# What each AWS connector's hint must name, besides the token (from its example's template).
NAMED = {
    "athena_query": "ClientRequestToken",
    "redshift_query": "ClientToken",
    "emr_serverless_job": "application",
    "sfn_execution": "stateMachine",
    "sagemaker_training_job": "training job",
    "sagemaker_processing_job": "processing job",
    "aws_batch_job": "queue",
    "glue_job": "--flyte-idempotency-token",
}


def test_every_builtin_connector_declares_the_window_the_docs_give():
    found = {cls.task_type_name: cls.replay_window for cls in aws_connector_classes()}
    for task_type in FLYTEPLUGIN_CONNECTORS:
        cls = flyteplugin_connector_class(task_type)
        found[cls.task_type_name] = cls.replay_window
    assert found == WINDOWS


@pytest.mark.parametrize("task_type", list(AWS_CONNECTORS))
def test_each_aws_connectors_hint_names_its_key_and_the_token(task_type):
    cls = aws_connector_classes()[list(AWS_CONNECTORS).index(task_type)]
    request = json_format.Parse((EXAMPLES / f"{task_type}.json").read_text(), pb.CreateTaskRequest())
    hint = cls().replay_hint(request.template, TOKEN, request.task_execution_metadata)
    assert TOKEN in hint and NAMED[task_type] in hint, hint


def test_a_connector_that_declares_none_gets_the_deployments_bound_and_the_others_their_own():
    settings = Settings(replay_window_minutes=45)
    assert replay_window(EchoConnector(), settings) == (45 * 60, False)
    sfn = aws_connector_classes()[list(AWS_CONNECTORS).index("sfn_execution")]()
    assert replay_window(sfn, settings) == (90 * 86400, True)
    record = TaskRecord(action_id="a", attempt=0, secret=b"s", task_type="echo", task_version=0, created_at=1000.0)
    assert not past_replay_window(EchoConnector(), record, settings, 1000.0 + 45 * 60)
    assert past_replay_window(EchoConnector(), record, settings, 1000.0 + 45 * 60 + 1)
    assert not past_replay_window(
        aws_connector_classes()[list(AWS_CONNECTORS).index("sagemaker_training_job")](), record, settings, 1e12
    )


def test_the_flyte_sdk_adapter_passes_a_declared_window_on_and_without_one_the_deployment_bounds_it():
    from connectors.flyte_sdk import FlyteSdkConnector

    class SdkConnector:
        name, task_type_name, task_type_version, metadata_type = "sdk", "sdk", 0, object

        async def create(self, **kwargs): ...

        get = delete = get_logs = get_metrics = create

    assert FlyteSdkConnector(SdkConnector()).replay_window is None
    SdkConnector.replay_window = 3600  # type: ignore[attr-defined]  # seconds, or a timedelta
    assert FlyteSdkConnector(SdkConnector()).replay_window == timedelta(hours=1)
