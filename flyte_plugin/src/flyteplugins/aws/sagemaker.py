"""``sagemaker_training_job`` and ``sagemaker_processing_job``: SageMaker jobs."""

from __future__ import annotations

from typing import Any

from ._task import AwsTask, required

__all__ = ["SageMakerProcessingJobTask", "SageMakerTrainingJobTask"]


class SageMakerTrainingJobTask(AwsTask):
    """Run a SageMaker training job (CreateTrainingJob; its name is derived from the token).

    Nested fields keep AWS's shape. Scalar inputs become hyperparameters; each File/Dir input
    becomes an input channel named after it. The first declared File output is the model
    artifact (``ModelArtifacts.S3ModelArtifacts``).

    ```python
    train = SageMakerTrainingJobTask(
        name="train", role_arn="arn:aws:iam::123456789012:role/sagemaker", output_path="s3://bucket/models",
        algorithm_specification={"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1",
                                 "TrainingInputMode": "File"},
        resource_config={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        inputs={"train": Dir, "max_depth": int}, outputs={"model": File})
    ```
    """

    _TASK_TYPE = "sagemaker_training_job"
    _CONNECTOR = "connectors.builtin.aws.sagemaker_training:SageMakerTrainingJobConnector"

    def __init__(
        self,
        name: str,
        *,
        algorithm_specification: dict[str, Any],
        role_arn: str,
        output_path: str,
        resource_config: dict[str, Any],
        stopping_condition: dict[str, Any] | None = None,
        hyperparameters: dict[str, str] | None = None,
        input_data_config: list[dict[str, Any]] | None = None,
        environment: dict[str, str] | None = None,
        tags: dict[str, str] | list[dict[str, str]] | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(
            type(self).__name__,
            algorithm_specification=algorithm_specification,
            role_arn=role_arn,
            output_path=output_path,
            resource_config=resource_config,
        )
        custom = {
            "algorithm_specification": algorithm_specification,
            "role_arn": role_arn,
            "output_path": output_path,
            "resource_config": resource_config,
            "stopping_condition": stopping_condition,
            "hyperparameters": hyperparameters,
            "input_data_config": input_data_config,
            "environment": environment,
            "tags": tags,
        }
        super().__init__(name, custom, inputs, outputs, **kwargs)


class SageMakerProcessingJobTask(AwsTask):
    """Run a SageMaker processing job (CreateProcessingJob; its name is derived from the token).

    Each File/Dir input is added as a ProcessingInput at ``/opt/ml/processing/input/<name>``;
    scalar inputs become environment variables. Each declared Dir output named like a
    processing output's ``OutputName`` refers to its ``S3Uri``.

    ```python
    prep = SageMakerProcessingJobTask(
        name="prep", role_arn="arn:aws:iam::123456789012:role/sagemaker",
        app_specification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1"},
        processing_resources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                "VolumeSizeInGB": 10}},
        processing_outputs=[{"OutputName": "features", "S3Output": {
            "S3Uri": "s3://bucket/features", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}],
        inputs={"raw": Dir}, outputs={"features": Dir})
    ```
    """

    _TASK_TYPE = "sagemaker_processing_job"
    _CONNECTOR = "connectors.builtin.aws.sagemaker_processing:SageMakerProcessingJobConnector"

    def __init__(
        self,
        name: str,
        *,
        app_specification: dict[str, Any],
        role_arn: str,
        processing_resources: dict[str, Any],
        processing_outputs: list[dict[str, Any]] | None = None,
        processing_inputs: list[dict[str, Any]] | None = None,
        environment: dict[str, str] | None = None,
        stopping_condition: dict[str, Any] | None = None,
        network_config: dict[str, Any] | None = None,
        tags: dict[str, str] | list[dict[str, str]] | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(
            type(self).__name__,
            app_specification=app_specification,
            role_arn=role_arn,
            processing_resources=processing_resources,
        )
        custom = {
            "app_specification": app_specification,
            "role_arn": role_arn,
            "processing_resources": processing_resources,
            "processing_outputs": processing_outputs,
            "processing_inputs": processing_inputs,
            "environment": environment,
            "stopping_condition": stopping_condition,
            "network_config": network_config,
            "tags": tags,
        }
        super().__init__(name, custom, inputs, outputs, **kwargs)
