"""Limits botocore's service models document, checked before AWS is called (issue 17, item 8):
a value AWS would refuse (or botocore's validation would, with its own wording) is
``invalid_argument`` at create naming the input or field and the model's limit, and no job
starts; the tag a connector adds itself counts against the tag limit. And an Athena work group
with managed query results gives no S3 location: a declared DataFrame output is FAILED, named.
"""

from __future__ import annotations

import uuid

import botocore.loaders
import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws import fields as fields_module
from connectors.builtin.aws.athena import AthenaQueryConnector
from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.builtin.aws.emr_serverless import EmrServerlessJobConnector
from connectors.builtin.aws.redshift import RedshiftQueryConnector
from connectors.builtin.aws.sagemaker_jobs import TOKEN_TAG
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector
from connectors.dev.aws_resources.athena_query import WORK_GROUP
from connectors.errors import Code
from tests.aws_world import DATAFRAME, INT, STR
from tests.functional.aws import test_athena_query as athena
from tests.functional.aws import test_aws_batch_job as batch
from tests.functional.aws import test_emr_serverless_job as emr
from tests.functional.aws import test_redshift_query as redshift
from tests.functional.aws import test_sagemaker_processing_job as processing
from tests.functional.aws import test_sagemaker_training_job as training

MANAGED_GROUP = "flyte-managed-results"


def a_run() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


def refused(world, request, *needles: str) -> str:
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT, error
    for needle in needles:
        assert needle in error.message, (needle, error.message)
    return error.message


# -- the limits are botocore's -------------------------------------------------------------------


def test_every_limit_checked_is_the_one_the_locked_botocores_service_model_states():
    loader = botocore.loaders.create_loader()
    limits = fields_module.Limit.declared()
    assert len(limits) >= 15
    for limit in limits:
        shape = loader.load_service_model(limit.service, "service-2")["shapes"][limit.shape]
        assert (limit.least, limit.most) == (shape.get("min", 0), shape.get("max")), limit


# -- Redshift Data: a parameter's value is at least 1 character ---------------------------------


def test_redshift_an_empty_input_bound_as_a_parameter_is_refused_naming_it_and_the_models_minimum(
    aws_world, monkeypatch
):
    monkeypatch.setenv("REDSHIFT_ALLOWED_DB_USERS", redshift.DB_USER)  # the deployment lets tasks name it
    world = aws_world(RedshiftQueryConnector())
    before = redshift.statement_ids(world)
    request = world.request(
        redshift.TYPE,
        redshift.custom(query="select * from t where a = :day and b = :note"),
        inputs={"day": (STR, "monday"), "note": (STR, "")},
    )
    message = refused(world, request, "input 'note'", "ParameterValue", "at least 1")
    assert "Parameter validation failed" not in message  # not botocore's wording
    assert redshift.statement_ids(world) == before


# -- Athena: an execution parameter is at most 1,024 characters ----------------------------------


def test_athena_an_execution_parameter_over_1024_characters_is_refused_before_athena_is_called(aws_world):
    world = aws_world(AthenaQueryConnector())
    before = athena.query_ids(world)
    request = world.request(
        athena.TYPE,
        {"query": "select ? , ?", "work_group": WORK_GROUP},
        inputs={"n": (INT, 1), "text": (STR, "x" * 1023)},  # quoted: 1,025 characters
    )
    refused(world, request, "input 'text'", "1,025 characters", "1,024", "ExecutionParameter")
    assert athena.query_ids(world) == before


def test_athena_an_execution_parameter_of_exactly_1024_characters_is_sent(aws_world):
    world = aws_world(AthenaQueryConnector())
    request = world.request(
        athena.TYPE, {"query": "select ?", "work_group": WORK_GROUP}, inputs={"text": (STR, "x" * 1022)}
    )
    query = athena.started_query(world, world.create(request))
    assert [len(value) for value in query["ExecutionParameters"]] == [1024]


# -- SageMaker: environment, hyperparameters -----------------------------------------------------


@pytest.mark.parametrize(
    "extra, inputs, needles",
    [
        ({}, {"notes": (STR, "n" * 257)}, ("input 'notes'", "257 characters", "256", "ProcessingEnvironmentValue")),
        (
            {"environment": {"LONG": "v" * 257}},
            {},
            ("template.custom.environment.LONG", "256", "ProcessingEnvironmentValue"),
        ),
        ({"environment": {"K" * 257: "v"}}, {}, ("template.custom.environment", "256", "ProcessingEnvironmentKey")),
        (
            {"environment": {f"E{i}": "v" for i in range(100)}},
            {"one_more": (STR, "v")},
            ("101 entries", "100", "ProcessingEnvironmentMap"),
        ),
    ],
)
def test_sagemaker_processing_environment_over_the_models_limits_is_refused(aws_world, extra, inputs, needles):
    world = aws_world(SageMakerProcessingJobConnector())
    run = a_run()
    refused(world, world.request(processing.TYPE, processing.custom(**extra), inputs=inputs, run=run), *needles)
    assert processing.jobs_named(world, run) == set()


@pytest.mark.parametrize(
    "extra, inputs, needles",
    [
        ({}, {"notes": (STR, "n" * 2501)}, ("input 'notes'", "2,501 characters", "2,500", "HyperParameterValue")),
        ({"hyperparameters": {"k" * 257: "1"}}, {}, ("template.custom.hyperparameters", "256", "HyperParameterKey")),
        (
            {"hyperparameters": {f"h{i}": "1" for i in range(101)}},
            {},
            ("101 entries", "100", "HyperParameters"),
        ),
        (
            {"environment": {"LONG": "v" * 513}},
            {},
            ("template.custom.environment.LONG", "512", "TrainingEnvironmentValue"),
        ),
    ],
)
def test_sagemaker_training_hyperparameters_and_environment_over_the_models_limits_are_refused(
    aws_world, extra, inputs, needles
):
    world = aws_world(SageMakerTrainingJobConnector())
    run = a_run()
    refused(world, world.request(training.TYPE, training.custom(**extra), inputs=inputs, run=run), *needles)
    assert training.jobs_named(world, run) == set()


# -- tags: the connector's own counts ------------------------------------------------------------


def tag_map(count: int) -> dict[str, str]:
    return {f"t{i}": "v" for i in range(count)}


@pytest.mark.parametrize("as_list", [False, True])
def test_sagemaker_50_user_tags_are_refused_as_the_connector_adds_its_own_to_awss_50(aws_world, as_list):
    world = aws_world(SageMakerTrainingJobConnector())
    run = a_run()
    tags = tag_map(50)
    given = [{"Key": key, "Value": value} for key, value in tags.items()] if as_list else tags
    refused(
        world,
        world.request(training.TYPE, training.custom(tags=given), run=run),
        "50 tags",
        "at most 49",
        "TagList",
        TOKEN_TAG,
    )
    assert training.jobs_named(world, run) == set()


def test_sagemaker_49_user_tags_make_a_job_with_50(aws_world):
    world = aws_world(SageMakerProcessingJobConnector())
    handle = world.create(world.request(processing.TYPE, processing.custom(tags=tag_map(49))))
    job = processing.described(world, handle)
    tags = world.boto("sagemaker").list_tags(ResourceArn=job["ProcessingJobArn"], MaxResults=100)["Tags"]
    assert len(tags) == 50 and TOKEN_TAG in {tag["Key"] for tag in tags}


@pytest.mark.parametrize(
    "tags, needles",
    [
        ({"k" * 129: "v"}, ("template.custom.tags", "129 characters", "128", "TagKey")),
        ({"team": "v" * 257}, ("template.custom.tags.team", "257 characters", "256", "TagValue")),
        ({"": "v"}, ("template.custom.tags", "at least 1", "TagKey")),
    ],
)
def test_sagemaker_tag_keys_and_values_over_the_models_limits_are_refused(aws_world, tags, needles):
    world = aws_world(SageMakerProcessingJobConnector())
    run = a_run()
    refused(world, world.request(processing.TYPE, processing.custom(tags=tags), run=run), *needles)
    assert processing.jobs_named(world, run) == set()


def test_batch_tags_over_the_models_limits_are_refused_and_50_are_sent(aws_world):
    world = aws_world(AwsBatchJobConnector())
    for tags, needles in (
        (tag_map(51), ("51 tags", "at most 50", "TagrisTagsMap")),
        ({"k" * 129: "v"}, ("129 characters", "128", "TagKey")),
    ):
        run = a_run()
        refused(world, world.request(batch.TYPE, {**batch.BASE, "tags": tags}, run=run), *needles)
        assert batch.jobs_of_run(world, run) == []
    handle = world.create(world.request(batch.TYPE, {**batch.BASE, "tags": tag_map(50)}))
    assert len(batch.the_job(world, handle)["tags"]) == 50


def test_emr_serverless_tags_over_the_models_limits_are_refused(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    before = emr.run_ids(world)
    refused(world, world.request(emr.TYPE, emr.custom(tags=tag_map(201))), "201", "200", "TagMap")
    refused(world, world.request(emr.TYPE, emr.custom(tags={"team": "v" * 257})), "256", "TagValue")
    assert emr.run_ids(world) == before


# -- Athena: managed query results give no S3 location ------------------------------------------


def managed_group(world) -> str:
    client = world.boto("athena")
    if MANAGED_GROUP not in {group["Name"] for group in client.list_work_groups()["WorkGroups"]}:
        client.create_work_group(
            Name=MANAGED_GROUP, Configuration={"ManagedQueryResultsConfiguration": {"Enabled": True}}
        )
    return MANAGED_GROUP


def test_athena_a_dataframe_output_in_a_managed_results_work_group_is_failed_naming_the_output_and_why(aws_world):
    world = aws_world(AthenaQueryConnector())
    request = world.request(
        athena.TYPE, {"query": "select 1", "work_group": managed_group(world)}, outputs={"counts": DATAFRAME}
    )
    handle = world.create(request)
    query = athena.started_query(world, handle)
    assert query["ManagedQueryResultsConfiguration"]["Enabled"] is True  # as the fake answers it
    resource = world.wait(handle, athena.TYPE)
    assert resource.phase == TaskExecution.FAILED, resource
    assert "'counts'" in resource.message and "managed query results" in resource.message
    assert MANAGED_GROUP in resource.message and "OutputLocation" in resource.message
    assert not resource.outputs.literals


def test_athena_a_query_without_outputs_in_a_managed_results_work_group_succeeds(aws_world):
    world = aws_world(AthenaQueryConnector())
    handle = world.create(world.request(athena.TYPE, {"query": "select 1", "work_group": managed_group(world)}))
    assert world.wait(handle, athena.TYPE).phase == TaskExecution.SUCCEEDED
