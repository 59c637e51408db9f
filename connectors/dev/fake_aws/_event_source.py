"""What the state-change publisher (state_events.py) needs of each kind of job: a :class:`Source`.

Each service's source (``_event_sources.py``): its jobs in moto's backends, how time moves them,
and the EventBridge event AWS publishes when one changes status, as that service documents it.

- Batch, "Batch Job State Change": the detail is the job as DescribeJobs describes it; "events
  aren't created for the initial job submission" (AWS Batch user guide, job state change events).
- Athena, "Athena Query State Change": currentState, previousState, queryExecutionId,
  sequenceNumber, statementType, versionId, workgroupName; a FAILED one adds athenaError
  (Athena user guide, monitoring query events with EventBridge).
- Step Functions, "Step Functions Execution Status Change": the execution as DescribeExecution
  describes it, dates in epoch milliseconds, absent fields null.
- SageMaker, "SageMaker Training Job State Change" / "SageMaker Processing Job State Change": the
  job as DescribeTrainingJob / DescribeProcessingJob describe it, times in epoch milliseconds,
  tags as a map; a training job's secondary status changes are state changes too.
- EMR Serverless, "EMR Serverless Job Run State Change": jobRunId, jobRunName, applicationId, arn,
  releaseLabel, state, previousState, createdBy, createdAt, updatedAt (and stateDetails).
- Glue, "Glue Job State Change": "generated for SUCCEEDED, FAILED, TIMEOUT, and STOPPED":
  jobName, severity, state, jobRunId, message.
- Redshift Data, "Redshift Data Statement Status Change": only for a statement run WithEvent,
  as it ends FINISHED, FAILED or ABORTED: principal, statementName, statementId, redshiftQueryId,
  state, rows, expireAt.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session

Job = tuple[str, str, Any]  # (account, region, moto's object)
Where = tuple[str, str]  # (account, region)


@dataclass(frozen=True)
class Source:
    """One kind of job and the event its service publishes when one changes status."""

    source: str  # the event's "source"
    detail_type: str  # its "detail-type"
    model: str | None  # moto's state manager model (what world.hold names); None: moves by itself
    jobs: Callable[[], Iterable[Job]]
    key: Callable[[Any], str]  # the job's id, unique within its account and region
    drive: Callable[[Any, bool], None]  # look at the job as a describe does; move it on when True
    state: Callable[[Any], str]  # its status as the event tells it
    ended: frozenset[str]
    publishes: Callable[[Any, str], bool]  # whether a change to this state is published
    detail: Callable[[Any, str | None, int, Where], dict[str, Any]]  # (job, previous state, sequence, where)
    resources: Callable[[Any, Where], list[str]] = lambda job, where: []


def backends(made: Any) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) of every backend moto made (never one more)."""
    for account, regional in list(dict.items(made)):
        for region, backend in list(dict.items(regional)):
            yield account, region, backend


def jobs_in(made: Any, members: Callable[[Any], Iterable[Any]]) -> Callable[[], Iterator[Job]]:
    """A :attr:`Source.jobs`: the jobs ``members`` lists of each backend moto made."""

    def jobs() -> Iterator[Job]:
        for account, region, backend in backends(made):
            for job in list(members(backend)):
                yield account, region, job

    return jobs


def when_advanced(step: Callable[[Any], Any]) -> Callable[[Any, bool], None]:
    """A :attr:`Source.drive` that only moves the job on (``step``), not merely looking at it."""

    def drive(job: Any, advance: bool) -> None:
        if advance:
            step(job)

    return drive


def always(job: Any, state: str) -> bool:
    return True


def millis(value: Any) -> Any:
    """Timestamps as EventBridge details carry them (epoch milliseconds), in nested values too."""
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: millis(item) for key, item in value.items()}
    if isinstance(value, list):
        return [millis(item) for item in value]
    return value


def iso(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def output_members(service: str, operation: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    return frozenset(model.output_shape.members)
