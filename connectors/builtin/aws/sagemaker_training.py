"""``sagemaker_training_job``: an Amazon SageMaker training job; its model artifact is the task's file output.

| | |
|---|---|
| create | CreateTrainingJob: ``algorithm_specification``, ``role_arn``, ``output_path`` (s3), ``resource_config`` (AWS shapes), ``stopping_condition`` (default 24 h), ``hyperparameters`` plus each scalar input by its text, ``input_data_config`` plus a channel per file/directory input named after it, ``environment``, ``tags``; TrainingJobName = token_name(token, 63), tagged flyte:idempotency-token; DescribeTrainingJob first: our job is adopted, another's is failed_precondition (sagemaker_jobs) |
| get | DescribeTrainingJob |
| delete | StopTrainingJob (a job that has ended stays as it ended) |
| outputs | the first declared file output = ModelArtifacts.S3ModelArtifacts; with it, any other declared output is invalid_argument at create |
| logs | GetTaskLogs from /aws/sagemaker/TrainingJobs, streams "<job name>/..." |
| custom_info | job name and ARN, status, secondary status, times, final metrics |
| events | "SageMaker Training Job State Change" (aws.sagemaker), keyed by ``TrainingJobName`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ... import literals
from ...connector import Resource, ResourceMeta
from ...errors import invalid_argument
from ...job_events import JobEvents, detail_field
from .base import IamActions, is_blob, json_data, output_names
from .fields import Limit, MapLimits
from .sagemaker_jobs import SageMakerJobConnector, job_name, tags_of, with_ref_inputs, with_scalar_inputs

DEFAULT_STOPPING = {"MaxRuntimeInSeconds": 86400}
# botocore's sagemaker model, CreateTrainingJob: HyperParameters (max 100 entries) of
# HyperParameterKey (max 256) to HyperParameterValue (max 2500); Environment a
# TrainingEnvironmentMap (max 100) of TrainingEnvironmentKey (max 512) to TrainingEnvironmentValue (max 512).
HYPERPARAMETERS = MapLimits(
    Limit("sagemaker", "HyperParameters", 100, means="a training job's HyperParameters", unit="entries"),
    Limit("sagemaker", "HyperParameterKey", 256, means="a hyperparameter's name"),
    Limit("sagemaker", "HyperParameterValue", 2500, means="a hyperparameter's value"),
)
ENVIRONMENT = MapLimits(
    Limit("sagemaker", "TrainingEnvironmentMap", 100, means="a training job's Environment", unit="entries"),
    Limit("sagemaker", "TrainingEnvironmentKey", 512, means="an Environment key"),
    Limit("sagemaker", "TrainingEnvironmentValue", 512, means="an Environment value"),
)


@dataclass
class SageMakerTrainingJobMeta(ResourceMeta):
    job_name: str
    model_output: str | None = None  # the output that gets the model artifact


class SageMakerTrainingJobConnector(SageMakerJobConnector[SageMakerTrainingJobMeta]):
    name = "Amazon SageMaker Training Connector"
    task_type_name = "sagemaker_training_job"
    task_type_version = 0
    metadata_type = SageMakerTrainingJobMeta
    kind = "training"
    console_path = "jobs"
    log_group = "/aws/sagemaker/TrainingJobs"
    job_events = JobEvents("aws.sagemaker", "SageMaker Training Job State Change", detail_field("TrainingJobName"))
    # Failed: retryable by FailureReason; InProgress: INITIALIZING or RUNNING, and Stopped: ABORTED or
    # FAILED (its own time limit), by SecondaryStatus.
    phase_fields: ClassVar[Mapping[str, str]] = {
        "Failed": "FailureReason",
        "InProgress": "SecondaryStatus",
        "Stopped": "SecondaryStatus",
    }
    iam_actions: ClassVar[IamActions] = {
        "create": (
            "sagemaker:DescribeTrainingJob",
            "sagemaker:ListTags",
            "sagemaker:CreateTrainingJob",
            "sagemaker:AddTags",
            "iam:PassRole",
        ),
        "get": ("sagemaker:DescribeTrainingJob",),
        "delete": ("sagemaker:StopTrainingJob", "sagemaker:DescribeTrainingJob"),
        "logs": ("logs:FilterLogEvents",),
    }

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> SageMakerTrainingJobMeta:
        fields = self.fields(task_template)
        params: dict[str, Any] = {
            "AlgorithmSpecification": fields.required("algorithm_specification", dict),
            "RoleArn": fields.required("role_arn"),
            "OutputDataConfig": {"S3OutputPath": fields.s3_uri("output_path", required=True)},
            "ResourceConfig": fields.required("resource_config", dict),
            "StoppingCondition": fields.optional("stopping_condition", dict, default=DEFAULT_STOPPING),
        }
        hyperparameters = with_scalar_inputs(fields, "hyperparameters", inputs, HYPERPARAMETERS)
        if hyperparameters:
            params["HyperParameters"] = hyperparameters
        channels = with_ref_inputs(
            fields,
            "input_data_config",
            "ChannelName",
            inputs,
            "a channel named {name}, which is also an input's channel",
            lambda name, uri: {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
        )
        if channels:
            params["InputDataConfig"] = channels
        environment = fields.string_map("environment", ENVIRONMENT)
        if environment:
            params["Environment"] = environment
        params["Tags"] = tags_of(fields, idempotency_token)
        name = job_name(idempotency_token, task_execution_metadata)
        files = output_names(task_template, lambda t: is_blob(t, multipart=False))
        others = [output for output in output_names(task_template) if files and output != files[0]]
        if others:  # the answer would give some outputs but not all: a task that could never succeed
            raise invalid_argument(
                f"sagemaker_training_job: output {others[0]!r} cannot be filled: a training job "
                f"gives one output, its model artifact (the first declared file output, "
                f"{files[0]!r})"
            )
        await self.start(name, idempotency_token, params)
        return SageMakerTrainingJobMeta(job_name=name, model_output=files[0] if files else None)

    def job_resource(self, found: Mapping[str, Any], resource_meta: SageMakerTrainingJobMeta) -> Resource:
        phase, status, message = self.status(found)
        artifact = (found.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        outputs = None
        if phase == TaskExecution.SUCCEEDED and resource_meta.model_output and artifact:
            outputs = {resource_meta.model_output: literals.FileRef(uri=artifact)}
        info = {
            "job_name": resource_meta.job_name,
            "job_arn": found.get("TrainingJobArn", ""),
            "status": status,
            "secondary_status": found.get("SecondaryStatus", ""),
            "training_time_in_seconds": found.get("TrainingTimeInSeconds", 0),
            "billable_time_in_seconds": found.get("BillableTimeInSeconds", 0),
            "final_metrics": json_data(found.get("FinalMetricDataList", [])),
        }
        if artifact:
            info["model_artifacts"] = artifact
        return Resource(
            phase=phase,
            message=message,
            outputs=outputs,
            custom_info=info,
            log_links=self.links(resource_meta.job_name),
        )
