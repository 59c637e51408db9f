"""AWS Batch without Docker (moto's ``batch_simple``), made to behave as AWS Batch documents.

moto's Docker-less Batch marks every job SUCCEEDED inside SubmitJob. Here instead:

- A job moves through SUBMITTED, PENDING, RUNNABLE, STARTING and RUNNING by moto's state manager
  (``batch::job``: moto's default is one step per describe; ``world.hold`` keeps it SUBMITTED) and
  ends on the describe after the one that found it RUNNING: SUCCEEDED, or as the fate a test set for its id says
  (``status``, ``reason`` as statusReason, ``exit_code``, ``attempt_reason``). A fate set after
  the job ended rewrites how it ended, as if it had ended that way.
- When a job runs, its container "output" goes to CloudWatch Logs, as AWS Batch's awslogs driver
  sends it: group ``/aws/batch/job`` (or the job definition's ``awslogs-group``), stream
  ``<job definition>/default/<job id>``, reported as ``container.logStreamName`` only once the job
  has started. The output is the command with its ``Ref::`` parameters filled in (an ``echo``
  prints its words). DescribeJobs also reports the job definition's ``logConfiguration`` and the
  container's ``exitCode``, as AWS does.
- TerminateJob: a job not yet finished ends FAILED with the caller's reason as statusReason
  ("Jobs that are in the STARTING or RUNNING state are terminated, which causes them to
  transition to FAILED. Jobs that have not progressed to the STARTING state are cancelled");
  an array parent takes its children with it. A finished job stays as it ended (moto wrote the
  reason onto it).
- A fate of a status a job passes through on its way (``RUNNING``, ``RUNNABLE``...) holds the job
  there once it gets there, its ``reason`` as statusReason (RUNNABLE with
  ``CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY``, "All compute environments have insufficient
  capacity to service the job"), until it is terminated or another fate is set.
- An array job's children are listed with ``arrayJobId``, not among the queue's jobs (moto adds
  them to the queue, so ListJobs by JOB_NAME found each child beside the parent). A fate set for
  the parent's id is each child's (a child's own, ``<parent id>:<index>``, goes first), never
  the parent's: it ends as its children do. The parent is PENDING from when a child gets to RUNNABLE
  until its children have ended, as the model says: "Array job parents are updated to PENDING
  when any child job is updated to RUNNABLE and remain in PENDING status while child jobs are
  running" (moto left it SUBMITTED), with ``arrayProperties.statusSummary`` counting its
  children by status; then it ends FAILED if one failed, else SUCCEEDED.
- ListJobs answers the newest job first ("The results are sorted by the createdAt field, with
  the most recent jobs being first").
"""

from __future__ import annotations

import datetime
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from moto.batch.models import BatchBackend, Job
from moto.batch_simple.models import BatchSimpleBackend

from . import fate_of
from ._support import wraps_method

_lock = threading.RLock()
DEFAULT_GROUP = "/aws/batch/job"
ON_THE_WAY = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")  # a fate of one holds the job there


@dataclass
class _Seen:
    """What this fake keeps of a job, beside moto's job (which has no field for it)."""

    ran: bool = False  # seen RUNNING once: it ends on the next describe
    fate: dict[str, str] | None = None  # the fate last applied


_JOBS: weakref.WeakKeyDictionary[Job, _Seen] = weakref.WeakKeyDictionary()
_reading = threading.local()  # ``on`` while :func:`described` renders a job without moving it


@wraps_method(BatchSimpleBackend, "_mark_job_as_finished")
def _registered(original: Any, self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
    """Register the submitted job, leaving it SUBMITTED (moto would finish it here)."""
    self.backend._jobs[job.job_id] = job
    if "index" in job.array_properties and job in job.job_queue.jobs:
        job.job_queue.jobs.remove(job)  # a child: listed by arrayJobId only


@wraps_method(Job, "describe_short")
def _describe_short(original: Any, self: Job) -> dict[str, Any]:
    if not getattr(_reading, "on", False):
        with _lock:
            _settle(self)
    return original(self)


def settle(job: Job) -> None:
    """Move ``job`` on as a DescribeJobs of it does (state_events.py drives jobs so with time)."""
    with _lock:
        _settle(job)


def described(job: Job) -> dict[str, Any]:
    """``job`` as DescribeJobs describes it, without moving it on (a state-change event's detail)."""
    _reading.on = True
    try:
        with _lock:
            return job.describe()
    finally:
        _reading.on = False


@wraps_method(Job, "_container_details")
def _container_details(original: Any, self: Job) -> dict[str, Any]:
    details = original(self)
    configured = (self.job_definition.container_properties or {}).get("logConfiguration")
    if configured:
        details["logConfiguration"] = configured
    if self.job_stopped and self.exit_code is not None:
        details["exitCode"] = self.exit_code  # moto drops the one describe_short wrote
    return details


@wraps_method(BatchBackend, "list_jobs")
def _list_jobs(original: Any, self: BatchBackend, *args: Any, **kwargs: Any) -> list[Job]:
    return sorted(original(self, *args, **kwargs), key=lambda job: job.job_created_at, reverse=True)


@wraps_method(BatchBackend, "terminate_job")
def _terminate(original: Any, self: BatchBackend, job_id: str, reason: str) -> None:
    with _lock:
        job = self.get_job_by_id(job_id)
        if job is not None and job.job_stopped and reason:
            return  # AWS leaves a finished job as it ended
        original(self, job_id, reason)  # moto's checks of the arguments; marks the job to stop
        if job is None:
            return
        for child in job._child_jobs or []:
            if not child.job_stopped:
                child.terminate(reason)
                child._mark_stopped(success=False)
        job._mark_stopped(success=False)


def _settle(job: Job) -> None:
    """Move ``job`` on as a describe of it would find it on AWS."""
    if job.job_stopped:
        if not job.stop:  # ended by itself, not terminated: a fate set since rewrites how it ended
            _apply_fate(job)
        return
    if job._child_jobs:
        for child in job._child_jobs:
            _settle(child)
        if all(child.job_stopped for child in job._child_jobs):
            failed = [child for child in job._child_jobs if child.status == "FAILED"]
            if failed:
                job.job_stopped_reason = f"Array Child Job failed: {failed[0].job_stopped_reason or 'exit code'}"
            job._mark_stopped(success=not failed)
        elif any(child.status not in ("SUBMITTED", "PENDING") for child in job._child_jobs):
            job.status = "PENDING"  # a child got to RUNNABLE: PENDING while its children run
        return
    fate = _fate(job)
    holding = fate["status"] if fate and fate["status"] in ON_THE_WAY else None
    if job.status != holding:
        job.advance()
    status = job.status
    if status in ("STARTING", "RUNNING") and job.latest_attempt is None:
        job.job_started_at = datetime.datetime.now()
        job._start_attempt()
    seen = _JOBS.setdefault(job, _Seen())
    if status == holding:
        job.job_stopped_reason = fate.get("reason") or None if fate else None
    if status == "RUNNING" and not seen.ran:
        seen.ran = True  # seen RUNNING once; it ends on the next describe
        job.log_stream_name = job._stream_name
    elif status == "RUNNING" and status != holding:
        _write_output(job)
        job.exit_code = 0
        job._mark_stopped(success=True)
        _apply_fate(job)


def _fate(job: Job) -> dict[str, str] | None:
    return fate_of("batch", job.job_id) or fate_of("batch", job.job_id.split(":")[0])


def _apply_fate(job: Job) -> None:
    fate = _fate(job)
    seen = _JOBS.setdefault(job, _Seen())
    if not fate or seen.fate == fate or fate["status"] in ON_THE_WAY or job._child_jobs:
        return  # an array parent ends as its children did: its fate is theirs
    seen.fate = fate
    job.status = fate["status"]
    job.job_stopped_reason = fate.get("reason") or None
    if fate["status"] == "FAILED":
        job.exit_code = int(fate.get("exit_code") or 1)
    if job.latest_attempt is not None:
        job.latest_attempt["statusReason"] = fate.get("attempt_reason") or fate.get("reason", "")
        job.latest_attempt["container"]["exitCode"] = job.exit_code
        job.latest_attempt["container"]["reason"] = fate.get("reason", "")


def _write_output(job: Job) -> None:
    """The container's output, in CloudWatch Logs where the awslogs driver puts it."""
    properties = job.job_definition.container_properties or {}
    options = (properties.get("logConfiguration") or {}).get("options") or {}
    group = options.get("awslogs-group") or DEFAULT_GROUP
    command = job._add_parameters_to_command(job._get_container_property("command", []) or [])
    words = [str(word) for word in command]
    lines = [" ".join(words[1:])] if words[:1] == ["echo"] else [f"+ {' '.join(words)}"]
    now = int(time.time() * 1000)
    logs = job._log_backend
    logs.ensure_log_group(group)
    stream = job._stream_name  # its log_stream_name since it started
    logs.ensure_log_stream(group, stream)
    logs.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])
