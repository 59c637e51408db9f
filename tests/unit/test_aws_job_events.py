"""The AWS connectors' state-change events (issue 19): each declares its own, and finds its job by
the key create indexed (connectors/job_events.py: an event's task is one index query away only if
``job_key(meta)`` is what ``job_events.key`` reads from the event's detail)."""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.session
import pytest

from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_class
from connectors.builtin.aws.athena import AthenaQueryMeta
from connectors.builtin.aws.batch import AwsBatchJobMeta
from connectors.builtin.aws.emr_serverless import EmrServerlessJobMeta
from connectors.builtin.aws.glue import GlueJobMeta
from connectors.builtin.aws.redshift import RedshiftQueryConnector, RedshiftQueryMeta
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobMeta
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobMeta
from connectors.builtin.aws.step_functions import SfnExecutionMeta
from connectors.job_events import event_job_key, job_key_of
from tests.aws_job_events import DETAILS
from tests.aws_world import task_request

# One job of each task type, as its create names it.
METAS: dict[str, Any] = {
    "athena_query": AthenaQueryMeta(query_execution_id="01234567-0123-0123-0123-012345678901", work_group="flyte"),
    "redshift_query": RedshiftQueryMeta(statement_id="dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a", cluster_identifier="c"),
    "aws_batch_job": AwsBatchJobMeta(job_id="4c7599ae-0a82-49aa-ba5a-4727fcce14a8", job_name="n", job_queue="q"),
    "sfn_execution": SfnExecutionMeta(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:flyte-example:r1-a0-0123456789abcdef"
    ),
    "emr_serverless_job": EmrServerlessJobMeta(application_id="00f1982r1uukb925", job_run_id="00f1cbsc6anuij25"),
    "sagemaker_training_job": SageMakerTrainingJobMeta(job_name="r1-a0-0123456789abcdef"),
    "sagemaker_processing_job": SageMakerProcessingJobMeta(job_name="r1-a0-0123456789abcdef"),
    "glue_job": GlueJobMeta(job_name="flyte-example", job_run_id="jr_0123456789abcdef0123456789abcdef"),
}


def test_every_aws_connector_declares_its_own_events():
    declared = {task_type: aws_connector_class(task_type).job_events for task_type in AWS_CONNECTORS}
    assert all(events is not None for events in declared.values()), declared
    pairs = [(events.source, events.detail_type) for events in declared.values()]
    assert len(set(pairs)) == len(pairs), pairs  # SageMaker's two kinds too: training and processing differ
    assert all(source.startswith("aws.") and kind.endswith(("State Change", "Status Change")) for source, kind in pairs)


@pytest.mark.parametrize("task_type", sorted(AWS_CONNECTORS))
def test_an_event_about_the_job_finds_the_key_create_indexed(task_type):
    connector, meta = aws_connector_class(task_type)(), METAS[task_type]
    detail = DETAILS[task_type](meta, "RUNNING")
    assert connector.job_key(meta) and connector.job_key(meta) == connector.job_events.key(detail)
    assert job_key_of(connector, meta) == event_job_key(connector, detail) == f"{task_type}#{connector.job_key(meta)}"
    other = {key: f"{value}-other" if isinstance(value, str) else value for key, value in detail.items()}
    assert event_job_key(connector, other) != job_key_of(connector, meta)  # another job's event finds another key


# Batch's mapping raises on a word it does not know (the receiver then makes the status due too).
@pytest.mark.parametrize("task_type", sorted(set(AWS_CONNECTORS) - {"aws_batch_job"}))
def test_a_status_word_the_connector_does_not_know_is_left_to_the_poll(task_type):
    connector, meta = aws_connector_class(task_type)(), METAS[task_type]
    assert connector.resource_from_event(DETAILS[task_type](meta, "SOMETHING_NEW"), meta) is None


def test_redshift_asks_for_the_event_its_connector_listens_to():
    model = botocore.session.get_session().get_service_model("redshift-data")
    assert model.operation_model("ExecuteStatement").input_shape.members["WithEvent"].type_name == "boolean"
    connector, sent = RedshiftQueryConnector(), []

    async def aws(operation: str, **params: Any) -> dict[str, Any]:
        sent.append((operation, params))
        return {"Id": "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a"}

    connector.aws = aws  # type: ignore[method-assign]
    custom = {"query": "select 1", "database": "dev", "cluster_identifier": "flyte-example"}
    request = task_request("redshift_query", custom)
    asyncio.run(connector.create(request.template, "s3://b/p", {}, None, idempotency_token="ab" * 16))
    assert sent == [("execute_statement", {**sent[0][1], "WithEvent": True})]
