"""events/status/<task type>.json: one state-change event per AWS service, as the status-events
function receives it (an SQS batch of one record whose body is the EventBridge event:
:func:`sqs_event`).

Each event has its service's source, detail-type and detail as that service documents them (the
details built as the fake AWS builds the ones it publishes: job_event_details.py). The jobs they
name are no task's, so invoking one changes nothing; put a task's job id (``job_key`` in
``connectors tasks show``) in its detail to move that task. ``python -m connectors.dev.events``
writes them with the other events.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .job_event_details import (
    athena_detail,
    emr_serverless_detail,
    glue_detail,
    redshift_data_detail,
    step_functions_detail,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
TIME = "2026-11-25T10:00:00Z"
MILLIS = 1795600790000  # 10 s before TIME
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:flyte-connectors-StatusEventsQueue-AbCdEf012345"


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    """One record of the SQS batch, as Lambda's event source mapping delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795600800000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795600800010",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def sqs_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS batch Lambda's event source mapping hands the StatusEventsFunction: each record's
    body one EventBridge event, as the rule's target put it on the queue."""
    records = [
        sqs_record(json.dumps(event, separators=(",", ":")), f"059f36b4-87a3-44ab-83d2-66197158{n:04d}")
        for n, event in enumerate(events)
    ]
    return {"Records": records}


def eventbridge_event(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    resources: list[str],
    *,
    event_id: str | None = None,
    time: str = TIME,
) -> dict[str, Any]:
    """An AWS service's event as EventBridge delivers it to a rule's target (its id, unless given,
    one of its detail-type's)."""
    return {
        "version": "0",
        "id": event_id or _uuid(detail_type),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _batch() -> dict[str, Any]:
    job_id = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
    arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}"
    detail = {  # the job as DescribeJobs describes it; no event for SUBMITTED
        "jobArn": arn,
        "jobName": "example-batch-run-a0-0",
        "jobId": job_id,
        "jobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/flyte-example",
        "status": "RUNNING",
        "attempts": [],
        "createdAt": MILLIS,
        "startedAt": MILLIS + 5000,
        "dependsOn": [],
        "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/flyte-example:1",
        "parameters": {},
        "container": {"command": ["echo", "hello"], "vcpus": 1, "memory": 512, "environment": []},
        "tags": {},
        "platformCapabilities": [],
    }
    return eventbridge_event("aws.batch", "Batch Job State Change", detail, [arn])


def _athena() -> dict[str, Any]:
    detail = athena_detail(
        state="RUNNING",
        previous="QUEUED",
        statement_type="DML",
        query_execution_id="01234567-0123-0123-0123-012345678901",
        workgroup="flyte",
        sequence=2,
    )
    return eventbridge_event("aws.athena", "Athena Query State Change", detail, [])


def _sfn() -> dict[str, Any]:
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:flyte-example:example-sfn-run-a0-0"
    detail = step_functions_detail(
        execution_arn=arn,
        state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:flyte-example",
        name="example-sfn-run-a0-0",
        status="RUNNING",
        start_date=MILLIS,
        stop_date=None,
        execution_input='{"mode":"full"}',
        input_details={"included": True},
        output=None,
        output_details=None,
        error=None,
        cause=None,
    )
    return eventbridge_event("aws.states", "Step Functions Execution Status Change", detail, [arn])


def _sagemaker_training() -> dict[str, Any]:
    name = "example-training-run-a0-0"
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"
    detail = {  # the job as DescribeTrainingJob describes it, times in epoch milliseconds
        "TrainingJobName": name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
        "HyperParameters": {"objective": "binary:logistic", "num_round": "50"},
        "AlgorithmSpecification": {"TrainingImage": "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/flyte-sagemaker",
        "OutputDataConfig": {"S3OutputPath": "s3://flyte-examples/sagemaker/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": MILLIS,
        "TrainingStartTime": MILLIS + 3000,
        "LastModifiedTime": MILLIS + 3000,
        "Tags": {"team": "ml"},
    }
    return eventbridge_event("aws.sagemaker", "SageMaker Training Job State Change", detail, [arn])


def _sagemaker_processing() -> dict[str, Any]:
    name = "example-processing-run-a0-0"
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}"
    detail = {  # the job as DescribeProcessingJob describes it, times in epoch milliseconds
        "ProcessingJobName": name,
        "ProcessingJobArn": arn,
        "ProcessingJobStatus": "InProgress",
        "AppSpecification": {"ImageUri": "sagemaker-scikit-learn:1.2-1-cpu-py3"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10}
        },
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/flyte-sagemaker",
        "CreationTime": MILLIS,
        "LastModifiedTime": MILLIS + 3000,
        "Tags": {},
    }
    return eventbridge_event("aws.sagemaker", "SageMaker Processing Job State Change", detail, [arn])


def _emr_serverless() -> dict[str, Any]:
    application, run = "00flyteexample00", "00f1cbsc6anuij25"
    detail = emr_serverless_detail(
        job_run_id=run,
        job_run_name="wordcount",
        application_id=application,
        arn=f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{application}/jobruns/{run}",
        release_label="emr-7.0.0",
        state="RUNNING",
        previous_state="SCHEDULED",
        created_by=f"arn:aws:sts::{ACCOUNT}:assumed-role/flyte-connectors/create-task",
        updated_at="2026-11-25T10:00:00.000000Z",
        created_at="2026-11-25T09:59:50.000000Z",
    )
    return eventbridge_event("aws.emr-serverless", "EMR Serverless Job Run State Change", detail, [])


def _glue() -> dict[str, Any]:
    detail = glue_detail(  # sent as a run ends: SUCCEEDED, FAILED, TIMEOUT or STOPPED
        job_name="flyte-example",
        state="SUCCEEDED",
        job_run_id="jr_3c9b3a0f6e1d4c5b8a7f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b",
    )
    return eventbridge_event("aws.glue", "Glue Job State Change", detail, [])


def _redshift() -> dict[str, Any]:
    detail = redshift_data_detail(  # sent as a statement run WithEvent ends: FINISHED, FAILED or ABORTED
        principal=f"arn:aws:iam::{ACCOUNT}:user/flyte",
        statement_name="example-redshift-run-a0-0",
        statement_id="dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a",
        redshift_query_id=12345,
        state="FINISHED",
        rows=3,
        expire_at=MILLIS // 1000 + 24 * 3600,
    )
    cluster = f"arn:aws:redshift:{REGION}:{ACCOUNT}:cluster:flyte-example"
    return eventbridge_event("aws.redshift-data", "Redshift Data Statement Status Change", detail, [cluster])


# task type -> its service's state-change event
SAMPLES = {
    "aws_batch_job": _batch,
    "athena_query": _athena,
    "sfn_execution": _sfn,
    "sagemaker_training_job": _sagemaker_training,
    "sagemaker_processing_job": _sagemaker_processing,
    "emr_serverless_job": _emr_serverless,
    "glue_job": _glue,
    "redshift_query": _redshift,
}


def all_samples() -> dict[str, dict[str, Any]]:
    """events/status/<task type>.json: each an SQS batch of one state-change event."""
    return {task_type: sqs_event([make()]) for task_type, make in SAMPLES.items()}


def write_samples(folder: Path) -> list[Path]:
    return write_events_to(folder, all_samples())


def write_events_to(folder: Path, events: dict[str, dict[str, Any]]) -> list[Path]:
    """Each event as ``<name>.json`` in ``folder``, indented, as events/ holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, event in events.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written
