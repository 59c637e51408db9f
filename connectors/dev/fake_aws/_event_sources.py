"""Each service's :class:`~._event_source.Source`: Batch, Athena, Step Functions, SageMaker
(training and processing), EMR Serverless, Glue and Redshift Data (what each publishes:
``_event_source.py``)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from typing import Any

from moto.athena.models import athena_backends
from moto.batch.models import batch_backends
from moto.emrserverless.models import emrserverless_backends
from moto.glue.models import glue_backends
from moto.redshiftdata.models import redshiftdata_backends
from moto.sagemaker.models import FakeTrainingJob, sagemaker_backends
from moto.stepfunctions.models import stepfunctions_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from . import athena, batch, emrserverless, fate_of, redshiftdata, sagemaker, stepfunctions
from ._event_source import Job, Source, Where, always, backends, iso, millis, output_members

# --- Batch ---------------------------------------------------------------------------------------


def _batch_jobs() -> Iterator[Job]:
    for account, region, backend in backends(batch_backends):
        for job in list(backend._jobs.values()):
            yield account, region, job


def _batch_drive(job: Any, advance: bool) -> None:
    if advance and "index" not in job.array_properties:  # an array's children move with their parent
        batch.settle(job)


BATCH = Source(
    source="aws.batch",
    detail_type="Batch Job State Change",
    model="batch::job",
    jobs=_batch_jobs,
    key=lambda job: job.job_id,
    drive=_batch_drive,
    state=lambda job: str(job.status),
    ended=frozenset({"SUCCEEDED", "FAILED"}),
    publishes=lambda job, state: state != "SUBMITTED",  # "Events aren't created for the initial job submission"
    detail=lambda job, previous, sequence, where: batch.described(job),
    resources=lambda job, where: [job.arn],
)


# --- Athena --------------------------------------------------------------------------------------


def _athena_jobs() -> Iterator[Job]:
    for account, region, backend in backends(athena_backends):
        for execution in list(backend.executions.values()):
            yield account, region, execution


def _athena_drive(execution: Any, advance: bool) -> None:
    if advance:
        athena.apply_fate(execution)


def _athena_detail(execution: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    ddl = ("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW")  # as moto's GetQueryExecution decides
    detail: dict[str, Any] = {
        "versionId": "0",
        "currentState": execution.status,
        "previousState": previous,
        "statementType": "DDL" if (execution.query or "").upper().startswith(ddl) else "DML",
        "queryExecutionId": execution.id,
        "workgroupName": execution.workgroup.name if execution.workgroup is not None else "primary",
        "sequenceNumber": str(sequence),
    }
    if previous is None:
        del detail["previousState"]
    fate = fate_of("athena", execution.id)
    if execution.status == "FAILED" and fate:
        error = athena.athena_error(fate)
        detail["athenaError"] = {
            "errorCategory": float(error["ErrorCategory"]),
            "errorType": float(error["ErrorType"]),
            "errorMessage": error["ErrorMessage"],
            "retryable": error["Retryable"],
        }
    return detail


ATHENA = Source(
    source="aws.athena",
    detail_type="Athena Query State Change",
    model="athena::execution",
    jobs=_athena_jobs,
    key=lambda execution: execution.id,
    drive=_athena_drive,
    state=lambda execution: str(execution.status),
    ended=frozenset({"SUCCEEDED", "FAILED", "CANCELLED"}),
    publishes=always,
    detail=_athena_detail,
)


# --- Step Functions ------------------------------------------------------------------------------


def _sfn_jobs() -> Iterator[Job]:
    # moto runs state machines (execute_state_machine, as make serve sets) in its parser's backends
    for made in (stepfunctions_backends, stepfunctions_parser_backends):
        for account, region, backend in backends(made):
            for machine in list(backend.state_machines):
                for execution in list(machine.executions):
                    yield account, region, execution


def _sfn_state(execution: Any) -> str:
    status = getattr(execution, "exec_status", None)  # the parser's execution; moto's own has .status
    return str(getattr(status, "value", status) if status is not None else getattr(execution, "status", ""))


def _sfn_arn(execution: Any) -> str:
    return str(getattr(execution, "exec_arn", None) or execution.execution_arn)


def _sfn_detail(execution: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    told = execution.to_describe_output() if hasattr(execution, "to_describe_output") else {}
    detail = {
        "executionArn": _sfn_arn(execution),
        "stateMachineArn": told.get("stateMachineArn", getattr(execution, "state_machine_arn", None)),
        "name": execution.name,
        "status": _sfn_state(execution),
        "startDate": told.get("startDate", getattr(execution, "start_date", None)),
        "stopDate": told.get("stopDate", getattr(execution, "stop_date", None)),
        "input": told.get("input", getattr(execution, "execution_input", None)),
        "inputDetails": told.get("inputDetails") or {"included": True},
        "output": told.get("output", getattr(execution, "output", None)),
        "outputDetails": told.get("outputDetails"),
        "error": told.get("error", getattr(execution, "error", None)),
        "cause": told.get("cause", getattr(execution, "cause", None)),
    }
    return dict(millis(detail))


SFN = Source(
    source="aws.states",
    detail_type="Step Functions Execution Status Change",
    model=None,  # moto's interpreter runs it; a fate ends it
    jobs=_sfn_jobs,
    key=_sfn_arn,
    drive=lambda execution, advance: stepfunctions.apply_fate(execution) if advance else None,
    state=_sfn_state,
    ended=frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}),
    publishes=always,
    detail=_sfn_detail,
    resources=lambda execution, where: [_sfn_arn(execution)],
)


# --- SageMaker -----------------------------------------------------------------------------------


def _sagemaker_jobs(attribute: str) -> Callable[[], Iterator[Job]]:
    def jobs() -> Iterator[Job]:
        for account, region, backend in backends(sagemaker_backends):
            for job in list(getattr(backend, attribute).values()):
                yield account, region, job

    return jobs


def _sagemaker_state(job: Any) -> str:
    if isinstance(job, FakeTrainingJob):
        return f"{job.training_job_status}/{job.secondary_status}"
    return str(job.processing_job_status)


def _sagemaker_detail(operation: str) -> Callable[[Any, str | None, int, Where], dict[str, Any]]:
    def detail(job: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
        described = job.response_object
        members = output_members("sagemaker", operation)
        shown = {key: value for key, value in described.items() if key in members and value is not None}
        shown["Tags"] = {tag["Key"]: tag["Value"] for tag in (job.tags or [])}
        return millis(shown)

    return detail


def _sagemaker_source(kind: str, attribute: str, model: str, operation: str, ended: set[str]) -> Source:
    return Source(
        source="aws.sagemaker",
        detail_type=f"SageMaker {kind} Job State Change",
        model=model,
        jobs=_sagemaker_jobs(attribute),
        key=lambda job: job.arn,
        drive=lambda job, advance: sagemaker._refresh(job, advance=advance),
        state=_sagemaker_state,
        ended=frozenset(ended),
        publishes=always,
        detail=_sagemaker_detail(operation),
        resources=lambda job, where: [job.arn],
    )


SAGEMAKER_ENDED = {"Completed", "Failed", "Stopped"}
TRAINING = _sagemaker_source(
    "Training",
    "training_jobs",
    sagemaker.TRAINING,
    "DescribeTrainingJob",
    {f"{status}/{status}" for status in SAGEMAKER_ENDED},
)
PROCESSING = _sagemaker_source(
    "Processing", "processing_jobs", sagemaker.PROCESSING, "DescribeProcessingJob", SAGEMAKER_ENDED
)


# --- EMR Serverless ------------------------------------------------------------------------------


def _emr_jobs() -> Iterator[Job]:
    for account, region, backend in backends(emrserverless_backends):
        for runs in list(backend.job_runs.values()):
            for run in list(runs):
                yield account, region, run


def _emr_detail(run: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    detail = {
        "jobRunId": run.id,
        "jobRunName": run.name,
        "applicationId": run.application_id,
        "arn": run.arn,
        "releaseLabel": run.release_label,
        "state": run.state,
        "previousState": previous,
        "createdBy": run.created_by or f"arn:aws:sts::{where[0]}:assumed-role/flyte-connectors/local",
        "updatedAt": iso(datetime.datetime.now(datetime.UTC)),
        "createdAt": iso(run.created_at),
        "stateDetails": run.state_details,
    }
    return {key: value for key, value in detail.items() if value is not None}


EMR_SERVERLESS = Source(
    source="aws.emr-serverless",
    detail_type="EMR Serverless Job Run State Change",
    model=emrserverless.MODEL,
    jobs=_emr_jobs,
    key=lambda run: run.id,
    drive=lambda run, advance: emrserverless._refresh(run, advance=advance),
    state=lambda run: str(run.state),
    ended=frozenset(emrserverless.ENDED),
    publishes=always,
    detail=_emr_detail,
)


# --- Glue ----------------------------------------------------------------------------------------

GLUE_EVENTS = {  # state -> (severity, message); "Glue Job State Change" only for these
    "SUCCEEDED": ("INFO", "Job run succeeded"),
    "FAILED": ("ERROR", "Job run failed"),
    "TIMEOUT": ("WARN", "Job run timed out"),
    "STOPPED": ("INFO", "Job run stopped"),
}


def _glue_jobs() -> Iterator[Job]:
    for account, region, backend in backends(glue_backends):
        for job in list(backend.jobs.values()):
            for run in list(job.job_runs):
                yield account, region, run


def _glue_drive(run: Any, advance: bool) -> None:
    if advance:
        run.as_dict()  # GetJobRun's view of it: a stop completes, a fate applies


def _glue_detail(run: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    severity, message = GLUE_EVENTS[run.status]
    fate = fate_of("glue", run.job_run_id)
    if fate and fate.get("reason") and run.status == fate["status"]:
        message = fate["reason"]  # the run's ErrorMessage
    return {
        "jobName": run.job_name,
        "severity": severity,
        "state": run.status,
        "jobRunId": run.job_run_id,
        "message": message,
    }


GLUE = Source(
    source="aws.glue",
    detail_type="Glue Job State Change",
    model="glue::job_run",
    jobs=_glue_jobs,
    key=lambda run: run.job_run_id,
    drive=_glue_drive,
    state=lambda run: str(run.status),
    ended=frozenset({"STOPPED", "SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "EXPIRED"}),
    publishes=lambda run, state: state in GLUE_EVENTS,
    detail=_glue_detail,
)


# --- Redshift Data -------------------------------------------------------------------------------


def _redshift_jobs() -> Iterator[Job]:
    for account, region, backend in backends(redshiftdata_backends):
        for statement in list(backend.statements.values()):
            yield account, region, statement


def _redshift_drive(statement: Any, advance: bool) -> None:
    if advance:
        redshiftdata._advance(statement)


def _redshift_publishes(statement: Any, state: str) -> bool:
    kept = redshiftdata._KEPT.get(statement)
    return kept is not None and kept.with_event and state in ("FINISHED", "FAILED", "ABORTED")


def _redshift_detail(statement: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    kept = redshiftdata._KEPT.get(statement)
    finished = statement.status == "FINISHED"
    detail = {
        "principal": f"arn:aws:iam::{where[0]}:user/{statement.db_user or 'flyte-connectors'}",
        "statementName": kept.name if kept is not None else None,
        "statementId": statement.id,
        "redshiftQueryId": statement.redshift_query_id if finished else -1,
        "state": statement.status,
        "rows": statement.result_rows if finished else -1,
        "expireAt": int(time.time()) + 24 * 3600,  # "the query results are kept for 24 hours"
    }
    return {key: value for key, value in detail.items() if value is not None}


def _redshift_resources(statement: Any, where: Where) -> list[str]:
    account, region = where
    kept = redshiftdata._KEPT.get(statement)
    if statement.cluster_identifier:
        return [f"arn:aws:redshift:{region}:{account}:cluster:{statement.cluster_identifier}"]
    if kept is not None and kept.workgroup:
        return [f"arn:aws:redshift-serverless:{region}:{account}:workgroup/{kept.workgroup}"]
    return []


REDSHIFT_DATA = Source(
    source="aws.redshift-data",
    detail_type="Redshift Data Statement Status Change",
    model=redshiftdata.MODEL,
    jobs=_redshift_jobs,
    key=lambda statement: statement.id,
    drive=_redshift_drive,
    state=lambda statement: str(statement.status),
    ended=frozenset({"FINISHED", "FAILED", "ABORTED"}),
    publishes=_redshift_publishes,
    detail=_redshift_detail,
    resources=_redshift_resources,
)

SOURCES = (BATCH, ATHENA, SFN, TRAINING, PROCESSING, EMR_SERVERLESS, GLUE, REDSHIFT_DATA)
