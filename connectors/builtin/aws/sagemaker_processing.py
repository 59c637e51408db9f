"""``sagemaker_processing_job``: an Amazon SageMaker processing job; its S3 outputs are the task's directories.

| | |
|---|---|
| create | CreateProcessingJob: ``app_specification``, ``role_arn``, ``processing_resources`` (AWS shapes), ``processing_outputs`` (ProcessingOutputConfig.Outputs), ``processing_inputs`` plus one per file/directory input named after it (LocalPath /opt/ml/processing/input/<name>), ``environment`` plus each scalar input by its text, ``stopping_condition``, ``network_config``, ``tags``; same naming and adoption rule as training (sagemaker_jobs) |
| get | DescribeProcessingJob |
| delete | StopProcessingJob (a job that has ended stays as it ended) |
| outputs | each declared directory output named like a processing output's OutputName = its S3Uri; any other declared output is invalid_argument at create |
| logs | GetTaskLogs from /aws/sagemaker/ProcessingJobs, streams "<job name>/..." |
| custom_info | job name and ARN, status, exit message, times |
| events | "SageMaker Processing Job State Change" (aws.sagemaker), keyed by ``ProcessingJobName`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ... import literals
from ...connector import Resource, ResourceMeta
from ...errors import invalid_argument
from ...job_events import JobEvents, detail_field
from .base import IamActions, is_blob, output_names
from .fields import Limit, MapLimits
from .sagemaker_jobs import SageMakerJobConnector, job_name, tags_of, with_ref_inputs, with_scalar_inputs

INPUT_ROOT = "/opt/ml/processing/input"
# botocore's sagemaker model: CreateProcessingJob's Environment is a ProcessingEnvironmentMap (max
# 100 entries) of ProcessingEnvironmentKey (max 256) to ProcessingEnvironmentValue (max 256).
ENVIRONMENT = MapLimits(
    Limit("sagemaker", "ProcessingEnvironmentMap", 100, means="a processing job's Environment", unit="entries"),
    Limit("sagemaker", "ProcessingEnvironmentKey", 256, means="an Environment key"),
    Limit("sagemaker", "ProcessingEnvironmentValue", 256, means="an Environment value"),
)


@dataclass
class SageMakerProcessingJobMeta(ResourceMeta):
    job_name: str
    dir_outputs: list[str] = field(default_factory=list)  # declared outputs, each a processing output's name


class SageMakerProcessingJobConnector(SageMakerJobConnector[SageMakerProcessingJobMeta]):
    name = "Amazon SageMaker Processing Connector"
    task_type_name = "sagemaker_processing_job"
    task_type_version = 0
    metadata_type = SageMakerProcessingJobMeta
    kind = "processing"
    console_path = "processing-jobs"
    log_group = "/aws/sagemaker/ProcessingJobs"
    job_events = JobEvents("aws.sagemaker", "SageMaker Processing Job State Change", detail_field("ProcessingJobName"))
    # Failed: retryable by FailureReason (a processing job has no SecondaryStatus).
    phase_fields: ClassVar[Mapping[str, str]] = {"Failed": "FailureReason"}
    iam_actions: ClassVar[IamActions] = {
        "create": (
            "sagemaker:DescribeProcessingJob",
            "sagemaker:ListTags",
            "sagemaker:CreateProcessingJob",
            "sagemaker:AddTags",
            "iam:PassRole",
        ),
        "get": ("sagemaker:DescribeProcessingJob",),
        "delete": ("sagemaker:StopProcessingJob", "sagemaker:DescribeProcessingJob"),
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
    ) -> SageMakerProcessingJobMeta:
        fields = self.fields(task_template)
        params: dict[str, Any] = {
            "AppSpecification": fields.required("app_specification", dict),
            "RoleArn": fields.required("role_arn"),
            "ProcessingResources": fields.required("processing_resources", dict),
        }
        outputs = fields.named_objects("processing_outputs", "OutputName")
        if outputs:
            params["ProcessingOutputConfig"] = {"Outputs": outputs}
        produced = {
            item.get("OutputName")
            for item in outputs
            if isinstance(item, dict) and isinstance(item.get("S3Output"), dict) and item["S3Output"].get("S3Uri")
        }
        declared = output_names(task_template)
        dirs = set(output_names(task_template, lambda t: is_blob(t, multipart=True)))
        for name in declared:
            if name not in dirs or name not in produced:
                raise invalid_argument(
                    f"sagemaker_processing_job: output {name!r} must be a directory named like "
                    f"an S3 output's OutputName in template.custom.processing_outputs "
                    f"({', '.join(sorted(map(str, produced))) or 'none given'})"
                )
        processing_inputs = with_ref_inputs(
            fields,
            "processing_inputs",
            "InputName",
            inputs,
            "an input named {name}, which is also a task input's",
            lambda name, uri: {
                "InputName": name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"{INPUT_ROOT}/{name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        )
        if processing_inputs:
            params["ProcessingInputs"] = processing_inputs
        environment = with_scalar_inputs(fields, "environment", inputs, ENVIRONMENT)
        if environment:
            params["Environment"] = environment
        for key, aws_key in (("stopping_condition", "StoppingCondition"), ("network_config", "NetworkConfig")):
            value = fields.optional(key, dict)
            if value:
                params[aws_key] = value
        params["Tags"] = tags_of(fields, idempotency_token)
        name = job_name(idempotency_token, task_execution_metadata)
        await self.start(name, idempotency_token, params)
        return SageMakerProcessingJobMeta(job_name=name, dir_outputs=declared)

    def job_resource(self, found: Mapping[str, Any], resource_meta: SageMakerProcessingJobMeta) -> Resource:
        phase, status, message = self.status(found)
        where = {
            item.get("OutputName"): (item.get("S3Output") or {}).get("S3Uri")
            for item in (found.get("ProcessingOutputConfig") or {}).get("Outputs", [])
        }
        outputs = None
        if phase == TaskExecution.SUCCEEDED and resource_meta.dir_outputs:
            outputs = {name: literals.DirRef(uri=uri) for name in resource_meta.dir_outputs if (uri := where.get(name))}
        info = {
            "job_name": resource_meta.job_name,
            "job_arn": found.get("ProcessingJobArn", ""),
            "status": status,
            "outputs": {name: uri for name, uri in where.items() if name and uri},
        }
        if found.get("ExitMessage"):
            info["exit_message"] = found["ExitMessage"]
        return Resource(
            phase=phase,
            message=message,
            outputs=outputs,
            custom_info=info,
            log_links=self.links(resource_meta.job_name),
        )
