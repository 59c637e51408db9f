"""The ``detail`` of an AWS service's job state-change event, one builder per service, laid out as
that service documents it (what each carries: fake_aws/_event_source.py).

Given a job's values, each builder answers the detail with the service's fields in its order: the
fake AWS fills them from moto's jobs (fake_aws/_event_sources.py), the samples in events/status/
from fixed values (status_event_samples.py). Batch's and SageMaker's details are the describe
answer itself, so they have no builder here.
"""

from __future__ import annotations

from typing import Any

GLUE_EVENTS = {  # state -> (severity, message); "Glue Job State Change" only for these
    "SUCCEEDED": ("INFO", "Job run succeeded"),
    "FAILED": ("ERROR", "Job run failed"),
    "TIMEOUT": ("WARN", "Job run timed out"),
    "STOPPED": ("INFO", "Job run stopped"),
}


def athena_detail(
    *,
    state: str,
    previous: str | None,
    statement_type: str,
    query_execution_id: str,
    workgroup: str,
    sequence: int,
    athena_error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ "Athena Query State Change": no previousState on a query's first event; athenaError on a
    FAILED one."""
    detail: dict[str, Any] = {"versionId": "0", "currentState": state}
    if previous is not None:
        detail["previousState"] = previous
    detail |= {
        "statementType": statement_type,
        "queryExecutionId": query_execution_id,
        "workgroupName": workgroup,
        "sequenceNumber": str(sequence),
    }
    if athena_error is not None:
        detail["athenaError"] = athena_error
    return detail


def step_functions_detail(
    *,
    execution_arn: str,
    state_machine_arn: str | None,
    name: str,
    status: str,
    start_date: Any,
    stop_date: Any,
    execution_input: str | None,
    input_details: dict[str, Any] | None,
    output: str | None,
    output_details: dict[str, Any] | None,
    error: str | None,
    cause: str | None,
) -> dict[str, Any]:
    """ "Step Functions Execution Status Change": the execution as DescribeExecution describes it,
    absent fields null (dates as given: the event carries epoch milliseconds)."""
    return {
        "executionArn": execution_arn,
        "stateMachineArn": state_machine_arn,
        "name": name,
        "status": status,
        "startDate": start_date,
        "stopDate": stop_date,
        "input": execution_input,
        "inputDetails": input_details,
        "output": output,
        "outputDetails": output_details,
        "error": error,
        "cause": cause,
    }


def emr_serverless_detail(
    *,
    job_run_id: str,
    job_run_name: str | None,
    application_id: str,
    arn: str,
    release_label: str | None,
    state: str,
    previous_state: str | None,
    created_by: str | None,
    updated_at: str | None,
    created_at: str | None,
    state_details: str | None = None,
) -> dict[str, Any]:
    """ "EMR Serverless Job Run State Change"; a field with no value is left out."""
    detail = {
        "jobRunId": job_run_id,
        "jobRunName": job_run_name,
        "applicationId": application_id,
        "arn": arn,
        "releaseLabel": release_label,
        "state": state,
        "previousState": previous_state,
        "createdBy": created_by,
        "updatedAt": updated_at,
        "createdAt": created_at,
        "stateDetails": state_details,
    }
    return {key: value for key, value in detail.items() if value is not None}


def glue_detail(*, job_name: str, state: str, job_run_id: str, message: str | None = None) -> dict[str, Any]:
    """ "Glue Job State Change", sent only for the states of :data:`GLUE_EVENTS`: their severity, and
    their message unless ``message`` (a failed run's ErrorMessage) is given."""
    severity, standard = GLUE_EVENTS[state]
    return {
        "jobName": job_name,
        "severity": severity,
        "state": state,
        "jobRunId": job_run_id,
        "message": message or standard,
    }


def redshift_data_detail(
    *,
    principal: str,
    statement_name: str | None,
    statement_id: str,
    redshift_query_id: int,
    state: str,
    rows: int,
    expire_at: int,
) -> dict[str, Any]:
    """ "Redshift Data Statement Status Change" (a statement run WithEvent, as it ends); a statement
    with no name has no statementName."""
    detail = {
        "principal": principal,
        "statementName": statement_name,
        "statementId": statement_id,
        "redshiftQueryId": redshift_query_id,
        "state": state,
        "rows": rows,
        "expireAt": expire_at,
    }
    return {key: value for key, value in detail.items() if value is not None}
