"""AWS Glue job runs, made to behave as the Glue API reference documents.

- BatchStopJobRun, which moto lacks (a bare 500): a run that is STARTING, RUNNING or WAITING
  goes STOPPING, then STOPPED on the next read; a run that cannot be stopped (it has ended) or is
  unknown comes back in ``Errors`` with an ErrorDetail, the call itself succeeding ("A list of
  the errors that were encountered in trying to stop JobRuns"). AWS does not document the
  ErrorCode of an ended run; this answers ``InvalidInputException``.
- GetJobRuns "returns the job runs in chronological order, with the newest jobs returned
  first"; moto answers the oldest first.
- A run's LogGroupName is ``/aws-glue/jobs`` (the prefix of the output and error groups), and a
  run that ends writes what its script printed to ``/aws-glue/jobs/output`` (and a failure to
  ``/aws-glue/jobs/error``), stream = the run id, as Glue does. moto says ``test/log`` and
  writes nothing.
- A run never fails in moto: a fate (``status`` FAILED, ERROR, TIMEOUT..., ``reason`` as its
  ErrorMessage) decides how it ends, applied when moto would have it SUCCEEDED.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.glue.models import FakeJob, FakeJobRun
from moto.glue.responses import GlueResponse
from moto.logs.models import logs_backends

from . import fate_of
from ._support import adds_method, wraps_method

LOG_GROUP = "/aws-glue/jobs"
STOPPABLE = ("STARTING", "RUNNING", "WAITING")
ENDED = ("STOPPED", "SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "EXPIRED")


@dataclass
class _Seen:
    """What this fake keeps of a run, beside moto's run (which has no field for it)."""

    where: tuple[str, str] | None = None  # (account, region): where its output is logged
    stopping_seen: bool = False  # answered STOPPING once: STOPPED on the next read
    logged: bool = False  # its output is written


_RUNS: weakref.WeakKeyDictionary[FakeJobRun, _Seen] = weakref.WeakKeyDictionary()


@adds_method(GlueResponse, "batch_stop_job_run")
def _batch_stop_job_run(self: GlueResponse) -> ActionResult:
    name = self._get_param("JobName", "")
    job = self.glue_backend.get_job(name)
    stopped, errors = [], []
    for run_id in self._get_param("JobRunIds") or []:
        run = next((run for run in job.job_runs if run.job_run_id == run_id), None)
        state = run.status if run is not None else None
        if run is not None and state in (*STOPPABLE, "STOPPING"):
            run.status = "STOPPING"
            stopped.append({"JobName": name, "JobRunId": run_id})
            continue
        code, message = (
            ("EntityNotFoundException", f"Job run {run_id} not found.")
            if run is None
            else ("InvalidInputException", f"Job run {run_id} is {state} and cannot be stopped.")
        )
        errors.append(
            {"JobName": name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}
        )
    return ActionResult({"SuccessfulSubmissions": stopped, "Errors": errors})


@wraps_method(FakeJob, "get_job_runs")
def _newest_first(original: Any, self: FakeJob) -> list[FakeJobRun]:
    return list(reversed(original(self)))


@wraps_method(FakeJob, "start_job_run")
def _start(original: Any, self: FakeJob, **kwargs: Any) -> str:
    run_id = original(self, **kwargs)
    run = next(run for run in self.job_runs if run.job_run_id == run_id)
    _RUNS.setdefault(run, _Seen()).where = (self.backend.account_id, self.backend.region_name)
    return run_id


@wraps_method(FakeJobRun, "as_dict")
def _as_dict(original: Any, self: FakeJobRun) -> dict[str, Any]:
    seen = _RUNS.setdefault(self, _Seen())
    state = self.status
    if state == "STOPPING" and seen.stopping_seen:
        self.status = state = "STOPPED"
    seen.stopping_seen = state == "STOPPING"
    fate = fate_of("glue", self.job_run_id)
    if fate and state == "SUCCEEDED":
        self.status = state = fate["status"]
    answer = original(self)
    answer["LogGroupName"] = LOG_GROUP
    if fate and state == fate["status"] and fate.get("reason"):
        answer["ErrorMessage"] = fate["reason"]
    if state in ENDED and not seen.logged:
        seen.logged = True
        _write_output(self, state, fate)
    return answer


def _write_output(run: FakeJobRun, state: str, fate: dict[str, str] | None) -> None:
    seen = _RUNS.get(run)
    where = seen.where if seen is not None else None
    if where is None:
        return
    arguments = {key: value for key, value in (run.arguments or {}).items() if key != "--flyte-idempotency-token"}
    shown = " ".join(f"{key}={value}" for key, value in sorted(arguments.items()))
    logs = logs_backends[where[0]][where[1]]
    now = int(time.time() * 1000)
    written = [
        ("output", f"{run.job_name} started with {shown or 'no arguments'}"),
        ("output", f"{run.job_name} {state.lower()}"),
    ]
    if fate and fate.get("reason"):
        written.append(("error", fate["reason"]))
    for kind, message in written:
        group = f"{LOG_GROUP}/{kind}"
        logs.ensure_log_group(group)
        logs.ensure_log_stream(group, run.job_run_id)
        logs.put_log_events(group, run.job_run_id, [{"timestamp": now, "message": message}])
