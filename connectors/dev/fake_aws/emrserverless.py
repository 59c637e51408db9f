"""EMR Serverless: clientToken honoured, runs that take time, cancel as AWS does it, fates applied.

- StartJobRun with a clientToken already used on the application answers the run it started
  ("the client idempotency token of the job run to start. Its value must be unique for each
  request", EMR Serverless API reference); moto starts a new run each time.
- A run moves SUBMITTED -> PENDING -> SCHEDULED -> RUNNING -> SUCCESS through moto's state
  manager (model ``emr-serverless::job-run``, immediate by default), so a test can hold runs
  with ``world.hold("emr-serverless::job-run")``; moto's runs are SUCCESS at once.
- CancelJobRun of a run that has ended is ValidationException "not in a cancellable state", as
  AWS answers; moto marks even a finished run CANCELLED. A cancelled run is CANCELLING on the
  next GetJobRun, then CANCELLED.
- Not AWS, for the examples only: CreateApplication tagged ``fake-aws:application-id`` gets that
  id (moto's ids are random, and examples/emr_serverless_job.json must name one); created again,
  the application that has it is answered.
- ListJobRuns of an application that has no runs yet lists none (moto: "does not exist").
- A fate (service ``emr-serverless``, job = the run id or its name) sets the run's state and
  stateDetails (a fate of ``RUNNING`` keeps it running until it is cancelled).
- A run that has not ended when its executionTimeoutMinutes have passed since StartJobRun is
  cancelled by EMR Serverless itself: "If the job run exceeds this duration, Amazon EMR Serverless
  cancels it automatically" (the model; the user guide: CANCELLING when "the job run has timed
  out"), so CANCELLING on that GetJobRun, then CANCELLED, with stateDetails saying so (AWS's own
  wording is not documented). Only a run held running (a fate of ``RUNNING``, ``world.hold``) lives
  that long, and the timeout is at least 5 minutes (moto: "RunTimeout must be at least 5
  minutes"), so a fate may say how many seconds a minute of that run lasts (``minute_seconds``,
  default 60): ``{"status": "RUNNING", "minute_seconds": 0.2}`` times a 5-minute run out in 1 s.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from moto.emrserverless.exceptions import ValidationException
from moto.emrserverless.models import APPLICATION_ARN_TEMPLATE, Application, EMRServerlessBackend, JobRun
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState

from . import fate_of
from ._support import wraps_method

MODEL = "emr-serverless::job-run"
STEPS: list[tuple[str | None, str]] = [
    ("SUBMITTED", "PENDING"),
    ("PENDING", "SCHEDULED"),
    ("SCHEDULED", "RUNNING"),
    ("RUNNING", "SUCCESS"),
]
ENDED = ("SUCCESS", "FAILED", "CANCELLED")
FIXED_ID_TAG = "fake-aws:application-id"
MINUTE_SECONDS = 60.0
state_manager.register_default_transition(MODEL, {"progression": "immediate"})

# per run: its ManagedState, when it started, and the GetJobRun calls seen since it was cancelled
_RUNS: weakref.WeakKeyDictionary[JobRun, dict[str, Any]] = weakref.WeakKeyDictionary()
_TOKENS: dict[tuple[int, str, str], JobRun] = {}  # (backend, application, clientToken) -> run


def _refresh(run: JobRun, advance: bool) -> None:
    extra = _RUNS.get(run)
    if extra is None:
        return
    if "cancelled" in extra:
        if advance:
            extra["cancelled"] += 1
            if extra["cancelled"] > 1:
                run.state = "CANCELLED"
        return
    fate = fate_of("emr-serverless", run.id) or (fate_of("emr-serverless", run.name) if run.name else None)
    minute = float((fate or {}).get("minute_seconds") or MINUTE_SECONDS)
    if fate:
        run.state = fate["status"]
        run.state_details = fate["reason"] or None
    else:
        if advance:
            extra["managed"].advance()
        run.state = extra["managed"].status
    timeout = run.execution_timeout_minutes
    if run.state not in ENDED and timeout and time.monotonic() - extra["started"] > timeout * minute:
        run.state = "CANCELLING"  # EMR Serverless cancels it: not a CancelJobRun call
        run.state_details = f"Job run timed out: it ran longer than its executionTimeoutMinutes ({timeout} minutes)"
        extra["cancelled"] = 0


@wraps_method(EMRServerlessBackend, "start_job_run")
def _start(original: Any, self: EMRServerlessBackend, **kwargs: Any) -> JobRun:
    token = kwargs.get("client_token") or ""
    key = (id(self), kwargs.get("application_id") or "", token)
    if token and key in _TOKENS:
        return _TOKENS[key]
    run = original(self, **kwargs)
    _RUNS[run] = {"managed": ManagedState(MODEL, STEPS), "started": time.monotonic()}
    _refresh(run, advance=False)
    if token:
        _TOKENS[key] = run
    return run


@wraps_method(EMRServerlessBackend, "get_job_run")
def _get(original: Any, self: EMRServerlessBackend, application_id: str, job_run_id: str) -> JobRun:
    run = original(self, application_id, job_run_id)
    _refresh(run, advance=True)
    return run


@wraps_method(EMRServerlessBackend, "list_job_runs")
def _list(original: Any, self: EMRServerlessBackend, application_id: str, *args: Any, **kwargs: Any) -> list[JobRun]:
    for run in self.job_runs.get(application_id, []):
        _refresh(run, advance=False)
    if application_id in self.applications and application_id not in self.job_runs:
        return []  # an application with no runs yet: AWS lists none, moto said it did not exist
    return original(self, application_id, *args, **kwargs)


@wraps_method(EMRServerlessBackend, "cancel_job_run")
def _cancel(original: Any, self: EMRServerlessBackend, application_id: str, job_run_id: str) -> tuple[str, str]:
    run = EMRServerlessBackend.get_job_run.__wrapped__(self, application_id, job_run_id)  # type: ignore[attr-defined]
    _refresh(run, advance=False)
    if run.state in ENDED or run.state == "CANCELLING":
        raise ValidationException(f"Job run {job_run_id} is not in a cancellable state: {run.state}")
    run.state = "CANCELLING"
    _RUNS.setdefault(run, {"managed": ManagedState(MODEL, STEPS), "started": time.monotonic()})["cancelled"] = 0
    return application_id, job_run_id


@wraps_method(EMRServerlessBackend, "create_application")
def _create_application(original: Any, self: EMRServerlessBackend, **kwargs: Any) -> Application:
    fixed = (kwargs.get("tags") or {}).get(FIXED_ID_TAG)
    if fixed and fixed in self.applications:
        return self.applications[fixed]
    application = original(self, **kwargs)
    if fixed:
        del self.applications[application.id]
        application.id = fixed
        application.arn = APPLICATION_ARN_TEMPLATE.format(
            partition=self.partition, region=self.region_name, account_id=self.account_id, application_id=fixed
        )
        self.applications[fixed] = application
    return application
