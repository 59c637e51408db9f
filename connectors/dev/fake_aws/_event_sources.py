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

from ..job_event_details import (
    GLUE_EVENTS,
    athena_detail,
    emr_serverless_detail,
    glue_detail,
    redshift_data_detail,
    step_functions_detail,
)
from . import athena, batch, emrserverless, fate_of, redshiftdata, sagemaker, stepfunctions
from ._event_source import Job, Source, Where, always, iso, jobs_in, millis, output_members, when_advanced

# --- Batch ---------------------------------------------------------------------------------------


def _batch_drive(job: Any, advance: bool) -> None:
    if advance and "index" not in job.array_properties:  # an array's children move with their parent
        batch.settle(job)


BATCH = Source(
    source="aws.batch",
    detail_type="Batch Job State Change",
    model="batch::job",
    jobs=jobs_in(batch_backends, lambda backend: backend._jobs.values()),
    key=lambda job: job.job_id,
    drive=_batch_drive,
    state=lambda job: str(job.status),
    ended=frozenset({"SUCCEEDED", "FAILED"}),
    publishes=lambda job, state: state != "SUBMITTED",  # "Events aren't created for the initial job submission"
    detail=lambda job, previous, sequence, where: batch.described(job),
    resources=lambda job, where: [job.arn],
)


# --- Athena --------------------------------------------------------------------------------------


def _athena_detail(execution: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    ddl = ("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW")  # as moto's GetQueryExecution decides
    fate = fate_of("athena", execution.id)
    athena_error = None
    if execution.status == "FAILED" and fate:
        error = athena.athena_error(fate)
        athena_error = {
            "errorCategory": float(error["ErrorCategory"]),
            "errorType": float(error["ErrorType"]),
            "errorMessage": error["ErrorMessage"],
            "retryable": error["Retryable"],
        }
    return athena_detail(
        state=execution.status,
        previous=previous,
        statement_type="DDL" if (execution.query or "").upper().startswith(ddl) else "DML",
        query_execution_id=execution.id,
        workgroup=execution.workgroup.name if execution.workgroup is not None else "primary",
        sequence=sequence,
        athena_error=athena_error,
    )


ATHENA = Source(
    source="aws.athena",
    detail_type="Athena Query State Change",
    model="athena::execution",
    jobs=jobs_in(athena_backends, lambda backend: backend.executions.values()),
    key=lambda execution: execution.id,
    drive=when_advanced(athena.apply_fate),
    state=lambda execution: str(execution.status),
    ended=frozenset({"SUCCEEDED", "FAILED", "CANCELLED"}),
    publishes=always,
    detail=_athena_detail,
)


# --- Step Functions ------------------------------------------------------------------------------


def _executions(backend: Any) -> Iterator[Any]:
    for machine in list(backend.state_machines):
        yield from list(machine.executions)


def _sfn_jobs() -> Iterator[Job]:
    # moto runs state machines (execute_state_machine, as make serve sets) in its parser's backends
    for made in (stepfunctions_backends, stepfunctions_parser_backends):
        yield from jobs_in(made, _executions)()


def _sfn_state(execution: Any) -> str:
    status = getattr(execution, "exec_status", None)  # the parser's execution; moto's own has .status
    return str(getattr(status, "value", status) if status is not None else getattr(execution, "status", ""))


def _sfn_arn(execution: Any) -> str:
    return str(getattr(execution, "exec_arn", None) or execution.execution_arn)


def _sfn_detail(execution: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    told = execution.to_describe_output() if hasattr(execution, "to_describe_output") else {}
    detail = step_functions_detail(
        execution_arn=_sfn_arn(execution),
        state_machine_arn=told.get("stateMachineArn", getattr(execution, "state_machine_arn", None)),
        name=execution.name,
        status=_sfn_state(execution),
        start_date=told.get("startDate", getattr(execution, "start_date", None)),
        stop_date=told.get("stopDate", getattr(execution, "stop_date", None)),
        execution_input=told.get("input", getattr(execution, "execution_input", None)),
        input_details=told.get("inputDetails") or {"included": True},
        output=told.get("output", getattr(execution, "output", None)),
        output_details=told.get("outputDetails"),
        error=told.get("error", getattr(execution, "error", None)),
        cause=told.get("cause", getattr(execution, "cause", None)),
    )
    return dict(millis(detail))


SFN = Source(
    source="aws.states",
    detail_type="Step Functions Execution Status Change",
    model=None,  # moto's interpreter runs it; a fate ends it
    jobs=_sfn_jobs,
    key=_sfn_arn,
    drive=when_advanced(stepfunctions.apply_fate),
    state=_sfn_state,
    ended=frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}),
    publishes=always,
    detail=_sfn_detail,
    resources=lambda execution, where: [_sfn_arn(execution)],
)


# --- SageMaker -----------------------------------------------------------------------------------


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
        jobs=jobs_in(sagemaker_backends, lambda backend: getattr(backend, attribute).values()),
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


def _job_runs(backend: Any) -> Iterator[Any]:
    for runs in list(backend.job_runs.values()):
        yield from list(runs)


def _emr_detail(run: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    return emr_serverless_detail(
        job_run_id=run.id,
        job_run_name=run.name,
        application_id=run.application_id,
        arn=run.arn,
        release_label=run.release_label,
        state=run.state,
        previous_state=previous,
        created_by=run.created_by or f"arn:aws:sts::{where[0]}:assumed-role/flyte-connectors/local",
        updated_at=iso(datetime.datetime.now(datetime.UTC)),
        created_at=iso(run.created_at),
        state_details=run.state_details,
    )


EMR_SERVERLESS = Source(
    source="aws.emr-serverless",
    detail_type="EMR Serverless Job Run State Change",
    model=emrserverless.MODEL,
    jobs=jobs_in(emrserverless_backends, _job_runs),
    key=lambda run: run.id,
    drive=lambda run, advance: emrserverless._refresh(run, advance=advance),
    state=lambda run: str(run.state),
    ended=frozenset(emrserverless.ENDED),
    publishes=always,
    detail=_emr_detail,
)


# --- Glue ----------------------------------------------------------------------------------------


def _glue_runs(backend: Any) -> Iterator[Any]:
    for job in list(backend.jobs.values()):
        yield from list(job.job_runs)


def _glue_detail(run: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    fate = fate_of("glue", run.job_run_id)
    message = None
    if fate and fate.get("reason") and run.status == fate["status"]:
        message = fate["reason"]  # the run's ErrorMessage
    return glue_detail(job_name=run.job_name, state=run.status, job_run_id=run.job_run_id, message=message)


GLUE = Source(
    source="aws.glue",
    detail_type="Glue Job State Change",
    model="glue::job_run",
    jobs=jobs_in(glue_backends, _glue_runs),
    key=lambda run: run.job_run_id,
    drive=when_advanced(lambda run: run.as_dict()),  # GetJobRun's view of it: a stop completes, a fate applies
    state=lambda run: str(run.status),
    ended=frozenset({"STOPPED", "SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "EXPIRED"}),
    publishes=lambda run, state: state in GLUE_EVENTS,
    detail=_glue_detail,
)


# --- Redshift Data -------------------------------------------------------------------------------


def _redshift_publishes(statement: Any, state: str) -> bool:
    kept = redshiftdata._KEPT.get(statement)
    return kept is not None and kept.with_event and state in ("FINISHED", "FAILED", "ABORTED")


def _redshift_detail(statement: Any, previous: str | None, sequence: int, where: Where) -> dict[str, Any]:
    kept = redshiftdata._KEPT.get(statement)
    finished = statement.status == "FINISHED"
    return redshift_data_detail(
        principal=f"arn:aws:iam::{where[0]}:user/{statement.db_user or 'flyte-connectors'}",
        statement_name=kept.name if kept is not None else None,
        statement_id=statement.id,
        redshift_query_id=statement.redshift_query_id if finished else -1,
        state=statement.status,
        rows=statement.result_rows if finished else -1,
        expire_at=int(time.time()) + 24 * 3600,  # "the query results are kept for 24 hours"
    )


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
    jobs=jobs_in(redshiftdata_backends, lambda backend: backend.statements.values()),
    key=lambda statement: statement.id,
    drive=when_advanced(redshiftdata._advance),
    state=lambda statement: str(statement.status),
    ended=frozenset({"FINISHED", "FAILED", "ABORTED"}),
    publishes=_redshift_publishes,
    detail=_redshift_detail,
    resources=_redshift_resources,
)

SOURCES = (BATCH, ATHENA, SFN, TRAINING, PROCESSING, EMR_SERVERLESS, GLUE, REDSHIFT_DATA)
