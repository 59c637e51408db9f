"""The scope tag reaches AWS (issue 18): in a deployment, template.yaml sets CONNECTOR_TAG_KEY and
CONNECTOR_TAG_VALUE (ConnectorTagKey, and ConnectorTagValue or the stack's name), and its IAM
policies let the service start, look up and stop only Batch jobs, EMR Serverless job runs and
SageMaker jobs carrying that tag (aws:RequestTag at creation, aws:ResourceTag after). So each of
those connectors puts it on every job it starts, beside the template's own tags, and refuses a
template that sets that key itself. The fake AWS checks no IAM: what is checked here is that the
tag is on the job AWS keeps, through the served app, as a deployment would send it.
"""

from __future__ import annotations

import uuid

import pytest

from connectors.builtin.aws.base import SCOPE_TAG_KEY_ENV, SCOPE_TAG_VALUE_ENV
from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.builtin.aws.emr_serverless import EmrServerlessJobConnector
from connectors.builtin.aws.sagemaker_jobs import TOKEN_TAG
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector
from connectors.errors import Code
from tests.functional.aws import test_aws_batch_job as batch
from tests.functional.aws import test_emr_serverless_job as emr
from tests.functional.aws import test_sagemaker_processing_job as processing
from tests.functional.aws import test_sagemaker_training_job as training

KEY, VALUE = "flyte-connectors", "flyte-staging"


@pytest.fixture
def scoped(monkeypatch):
    """The environment template.yaml gives every function (ConnectorTagKey's default, a stack name)."""
    monkeypatch.setenv(SCOPE_TAG_KEY_ENV, KEY)
    monkeypatch.setenv(SCOPE_TAG_VALUE_ENV, VALUE)


def a_run() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


def test_a_batch_job_carries_the_scope_tag_beside_the_templates_tags(aws_world, scoped):
    world = aws_world(AwsBatchJobConnector())
    handle = world.create(world.request(batch.TYPE, {**batch.BASE, "tags": {"team": "data"}}))
    assert batch.the_job(world, handle)["tags"] == {"team": "data", KEY: VALUE}


def test_an_emr_serverless_job_run_carries_the_scope_tag(aws_world, scoped):
    world = aws_world(EmrServerlessJobConnector())
    handle = world.create(world.request(emr.TYPE, emr.custom(tags={"team": "data"})))
    assert emr.job_run(world, handle)["tags"] == {"team": "data", KEY: VALUE}


@pytest.mark.parametrize(
    ("connector", "module", "arn_key"),
    [
        (SageMakerTrainingJobConnector, training, "TrainingJobArn"),
        (SageMakerProcessingJobConnector, processing, "ProcessingJobArn"),
    ],
)
def test_a_sagemaker_job_carries_the_scope_tag_and_its_token_tag(aws_world, scoped, connector, module, arn_key):
    world = aws_world(connector())
    handle = world.create(world.request(module.TYPE, module.custom(tags={"team": "data"})))
    arn = module.described(world, handle)[arn_key]
    tags = {tag["Key"]: tag["Value"] for tag in world.boto("sagemaker").list_tags(ResourceArn=arn)["Tags"]}
    assert tags.pop(TOKEN_TAG) and tags == {"team": "data", KEY: VALUE}


def test_without_the_variables_no_scope_tag_is_sent(aws_world, monkeypatch):
    """``make serve`` and the tests set no CONNECTOR_TAG_KEY: the jobs carry the template's tags only."""
    monkeypatch.delenv(SCOPE_TAG_KEY_ENV, raising=False)
    world = aws_world(AwsBatchJobConnector())
    handle = world.create(world.request(batch.TYPE, {**batch.BASE, "tags": {"team": "data"}}))
    assert batch.the_job(world, handle)["tags"] == {"team": "data"}


@pytest.mark.parametrize(
    ("connector", "task_type", "custom"),
    [
        (AwsBatchJobConnector, batch.TYPE, {**batch.BASE, "tags": {KEY: "another-stack"}}),
        (EmrServerlessJobConnector, emr.TYPE, emr.custom(tags={KEY: "another-stack"})),
        (SageMakerTrainingJobConnector, training.TYPE, training.custom(tags={KEY: "another-stack"})),
        (
            SageMakerProcessingJobConnector,
            processing.TYPE,
            processing.custom(tags=[{"Key": KEY, "Value": "another-stack"}]),
        ),
    ],
)
def test_a_template_may_not_set_the_scope_tag_itself(aws_world, scoped, connector, task_type, custom):
    """Another stack's value (or any) would let that stack's service stop the job, or this one's
    IAM refuse it: the connector's own value is the only one sent, and a template naming the key
    is refused before anything starts."""
    world = aws_world(connector())
    error = world.error(world.create, world.request(task_type, custom, run=a_run()))
    assert error.code == Code.INVALID_ARGUMENT and f"may not set {KEY}" in error.message.replace("'", "")


def test_the_scope_tag_counts_against_awss_tag_limit(aws_world, scoped):
    world = aws_world(AwsBatchJobConnector())
    error = world.error(
        world.create, world.request(batch.TYPE, {**batch.BASE, "tags": {f"k{i}": "v" for i in range(50)}})
    )
    assert error.code == Code.INVALID_ARGUMENT
    assert "50 tags" in error.message and "at most 49" in error.message and KEY in error.message


def test_the_examples_resources_carry_the_scope_tag_as_a_deployments_must(aws_endpoint):
    """``make serve``'s resources (connectors/dev/aws_resources) are set up as an operator sets up
    theirs for a default deployment: each resource a connector may use unnamed carries the tag."""
    from connectors.dev.aws_resources import ACCOUNT, REGION, SCOPE_TAG, client_factory
    from connectors.dev.aws_resources import aws_batch_job as batch_resources
    from connectors.dev.aws_resources import emr_serverless_job as emr_resources
    from connectors.dev.aws_resources import glue_job as glue_resources
    from connectors.dev.aws_resources import sagemaker_training_job as sagemaker_resources
    from connectors.dev.aws_resources.athena_query import WORK_GROUP

    aws = client_factory(aws_endpoint)

    def pairs(tags: list[dict[str, str]]) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in tags}

    work_group = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{WORK_GROUP}"
    found = {
        "athena work group": pairs(aws("athena").list_tags_for_resource(ResourceARN=work_group)["Tags"]),
        "batch job queue": aws("batch").describe_job_queues(jobQueues=[batch_resources.QUEUE])["jobQueues"][0]["tags"],
        "batch job definition": aws("batch").describe_job_definitions(
            jobDefinitionName=batch_resources.JOB_DEFINITION, status="ACTIVE"
        )["jobDefinitions"][0]["tags"],
        "emr serverless application": aws("emr-serverless").get_application(applicationId=emr_resources.APPLICATION_ID)[
            "application"
        ]["tags"],
        "glue job": aws("glue").get_tags(ResourceArn=f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{glue_resources.JOB_NAME}")[
            "Tags"
        ],
        "sagemaker role": pairs(aws("iam").list_role_tags(RoleName=sagemaker_resources.ROLE)["Tags"]),
        "emr serverless role": pairs(aws("iam").list_role_tags(RoleName=emr_resources.ROLE)["Tags"]),
    }
    for what, tags in found.items():
        assert SCOPE_TAG.items() <= tags.items(), (what, tags)
