"""The AWS connectors: one per task type, each a short module in this package.

Every deployment registers them all except those named in ``DISABLED_CONNECTORS`` (template.yaml
sets it from one parameter per connector, which also takes away that connector's IAM grants).
"""

from __future__ import annotations

import importlib
from typing import Any

# task type -> "module:Class" in this package, in the order the README lists them
AWS_CONNECTORS: dict[str, str] = {
    "athena_query": "athena:AthenaQueryConnector",
    "redshift_query": "redshift:RedshiftQueryConnector",
    "aws_batch_job": "batch:AwsBatchJobConnector",
    "sfn_execution": "step_functions:SfnExecutionConnector",
    "emr_serverless_job": "emr_serverless:EmrServerlessJobConnector",
    "sagemaker_training_job": "sagemaker_training:SageMakerTrainingJobConnector",
    "sagemaker_processing_job": "sagemaker_processing:SageMakerProcessingJobConnector",
    "glue_job": "glue:GlueJobConnector",
}


def aws_connector_class(task_type: str) -> type[Any]:
    module, _, name = AWS_CONNECTORS[task_type].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def aws_connector_classes() -> list[type[Any]]:
    return [aws_connector_class(task_type) for task_type in AWS_CONNECTORS]


__all__ = ["AWS_CONNECTORS", "aws_connector_class", "aws_connector_classes"]
