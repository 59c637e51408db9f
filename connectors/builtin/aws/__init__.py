"""The AWS connectors: one per task type, each a short module in this package.

Every deployment registers them all except those named in ``DISABLED_CONNECTORS`` (template.yaml
sets it from one parameter per connector, which also takes away that connector's IAM grants).
They are registered lazily: a function imports a connector's module when a request first needs
it, so the metadata function, or a GetTask of one task type, does not pay for the others.
"""

from __future__ import annotations

from typing import Any

from ..spec import ConnectorSpec

# task type -> its connector, in the order docs/connectors/index.md lists them
AWS_CONNECTORS: dict[str, ConnectorSpec] = {
    "athena_query": ConnectorSpec("athena:AthenaQueryConnector", "Amazon Athena Connector"),
    "redshift_query": ConnectorSpec("redshift:RedshiftQueryConnector", "Amazon Redshift Connector"),
    "aws_batch_job": ConnectorSpec("batch:AwsBatchJobConnector", "AWS Batch Job Connector", 60.0),
    "sfn_execution": ConnectorSpec("step_functions:SfnExecutionConnector", "AWS Step Functions Connector"),
    "emr_serverless_job": ConnectorSpec("emr_serverless:EmrServerlessJobConnector", "Amazon EMR Serverless Connector"),
    "sagemaker_training_job": ConnectorSpec(
        "sagemaker_training:SageMakerTrainingJobConnector", "Amazon SageMaker Training Connector"
    ),
    "sagemaker_processing_job": ConnectorSpec(
        "sagemaker_processing:SageMakerProcessingJobConnector", "Amazon SageMaker Processing Connector"
    ),
    "glue_job": ConnectorSpec("glue:GlueJobConnector", "AWS Glue Job Connector", 60.0),
}


def aws_connector_class(task_type: str) -> type[Any]:
    return AWS_CONNECTORS[task_type].load_class(__name__)


def aws_connector_classes() -> list[type[Any]]:
    return [aws_connector_class(task_type) for task_type in AWS_CONNECTORS]


__all__ = ["AWS_CONNECTORS", "aws_connector_class", "aws_connector_classes"]
