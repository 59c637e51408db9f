"""Jobs' state-change events as AWS documents them, for the AWS connectors' tasks (issue 19).

``DETAILS[task_type](meta, state)`` is the "detail" of the event its service sends when the job
``meta`` names enters ``state``, with the fields each service's documentation shows (the values
of its examples where the job does not decide them); :func:`envelope` wraps one as EventBridge
delivers it (:func:`batch_event`: a Batch job's, about its describe answer). A detail that AWS
documents as the describe answer (Batch, Step Functions, SageMaker) is laid over the job's real
describe answer by the tests that have one.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from connectors.dev.aws_resources import ACCOUNT, REGION
from connectors.dev.job_event_details import (
    athena_detail,
    emr_serverless_detail,
    redshift_data_detail,
    step_functions_detail,
)
from connectors.dev.status_event_samples import eventbridge_event

T0 = datetime.datetime(2026, 12, 7, 3, 0, 0, tzinfo=datetime.UTC)
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/flyte-connectors/flyte"


def athena(meta: Any, state: str) -> dict[str, Any]:
    # Athena user guide, "Monitor Athena query events with EventBridge"
    return athena_detail(
        state=state,
        previous="RUNNING" if state != "RUNNING" else "QUEUED",
        statement_type="DML",
        query_execution_id=meta.query_execution_id,
        workgroup=meta.work_group,
        sequence=2,
    )


def redshift(meta: Any, state: str) -> dict[str, Any]:
    # Redshift management guide, "Monitoring events for the Amazon Redshift Data API in Amazon EventBridge"
    return redshift_data_detail(
        principal=f"arn:aws:iam::{ACCOUNT}:user/myuser",
        statement_name="flyte",
        statement_id=meta.statement_id,
        redshift_query_id=-1,
        state=state,
        rows=-1,
        expire_at=1601673265,
    )


def batch(meta: Any, state: str) -> dict[str, Any]:
    # AWS Batch user guide, "AWS Batch job state change events": the job as DescribeJobs describes it
    return {
        "jobName": meta.job_name,
        "jobId": meta.job_id,
        "jobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{meta.job_queue}",
        "status": state,
        "attempts": [],
        "createdAt": 1480482284091,
        "dependsOn": [],
        "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/flyte-example:1",
        "parameters": {},
        "container": {"image": "busybox", "command": ["echo"], "volumes": [], "environment": []},
    }


def step_functions(meta: Any, state: str) -> dict[str, Any]:
    # Step Functions developer guide, "Step Functions Execution Status Change": DescribeExecution's
    # fields, dates in epoch milliseconds
    machine, name = meta.execution_arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)
    ended = state not in ("RUNNING", "PENDING_REDRIVE")
    return step_functions_detail(
        execution_arn=meta.execution_arn,
        state_machine_arn=machine,
        name=name,
        status=state,
        start_date=1551225014968,
        stop_date=1551225017576 if ended else None,
        execution_input="{}",
        input_details={"included": True},
        output="{}" if state == "SUCCEEDED" else None,
        output_details={"included": True} if state == "SUCCEEDED" else None,
        error=None,
        cause=None,
    )


def emr_serverless(meta: Any, state: str) -> dict[str, Any]:
    # EMR Serverless user guide, "Automating EMR Serverless with Amazon EventBridge"
    return emr_serverless_detail(
        job_run_id=meta.job_run_id,
        job_run_name=None,
        application_id=meta.application_id,
        arn=f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{meta.application_id}/jobruns/{meta.job_run_id}",
        release_label="emr-7.1.0",
        state=state,
        previous_state="SCHEDULED",
        created_by=CALLER,
        updated_at="2026-12-07T03:00:42.299487Z",
        created_at="2026-12-07T03:00:25.325900Z",
    )


def sagemaker(kind: str) -> Callable[[Any, str], dict[str, Any]]:
    # SageMaker developer guide, "Automating Amazon SageMaker with Amazon EventBridge": the job as
    # DescribeTrainingJob / DescribeProcessingJob describes it (times in epoch milliseconds)
    def detail(meta: Any, state: str) -> dict[str, Any]:
        return {
            f"{kind}JobName": meta.job_name,
            f"{kind}JobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind.lower()}-job/{meta.job_name}",
            f"{kind}JobStatus": state,
            "CreationTime": 1583507131000,
            "LastModifiedTime": 1583507231000,
            "Tags": {},
        }

    return detail


def glue(meta: Any, state: str) -> dict[str, Any]:
    # Glue developer guide, "Automating AWS Glue with EventBridge"
    return {
        "jobName": meta.job_name,
        "severity": "INFO" if state == "SUCCEEDED" else "ERROR" if state == "FAILED" else "WARN",
        "state": state,
        "jobRunId": meta.job_run_id,
        "message": (
            "Job run succeeded"
            if state == "SUCCEEDED"
            else f"JobName:{meta.job_name} and JobRunId:{meta.job_run_id} failed to execute with exception "
            f"Role arn:aws:iam::{ACCOUNT}:role/Glue_Role should be given assume role permissions for Glue Service."
            if state == "FAILED"
            else f"Job run {state.lower()}"
        ),
    }


DETAILS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "athena_query": athena,
    "redshift_query": redshift,
    "aws_batch_job": batch,
    "sfn_execution": step_functions,
    "emr_serverless_job": emr_serverless,
    "sagemaker_training_job": sagemaker("Training"),
    "sagemaker_processing_job": sagemaker("Processing"),
    "glue_job": glue,
}


def at(second: int, t0: datetime.datetime = T0) -> str:
    """An event's time, ``second`` seconds after ``t0`` (T0 unless given)."""
    return (t0 + datetime.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(connector: Any, detail: Mapping[str, Any], second: int) -> dict[str, Any]:
    """The EventBridge event that carries ``detail``, ``second`` seconds after T0."""
    events = connector.job_events
    return eventbridge_event(
        events.source, events.detail_type, dict(detail), [], event_id=str(uuid.uuid4()), time=at(second)
    )


def batch_event(job: Mapping[str, Any], second: int, *, t0: datetime.datetime = T0, **detail: Any) -> dict[str, Any]:
    """A "Batch Job State Change" about ``job`` (as DescribeJobs describes it), ``second`` seconds
    after ``t0`` (T0 unless given), with ``detail`` laid over the job."""
    return eventbridge_event(
        "aws.batch",
        "Batch Job State Change",
        {**job, **detail},
        [job["jobArn"]],
        event_id=str(uuid.uuid4()),
        time=at(second, t0),
    )


def as_event_json(value: Any) -> Any:
    """A describe answer (boto3's) as an event's JSON holds it: times in epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, Mapping):
        return {key: as_event_json(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [as_event_json(item) for item in value]
    return value


__all__ = ["DETAILS", "T0", "as_event_json", "at", "batch_event", "envelope"]
