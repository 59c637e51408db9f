"""SageMaker training and processing jobs: unique names, jobs that take time, stops, fates.

- CreateTrainingJob / CreateProcessingJob of a name that exists is ResourceInUse, as AWS answers
  ("names must be unique within an AWS account and region"); moto replaces the job.
- A processing job keeps its Environment and ProcessingResources (DescribeProcessingJob answers
  them; moto drops them).
- StopTrainingJob exists (moto answers 500); StopProcessingJob of an ended job is
  ValidationException, as AWS answers (moto marks even a Completed job Stopped). A stopped job
  is Stopping on the next describe, then Stopped.
- A job moves through moto's state manager (models ``sagemaker::training-job``: secondary
  status Starting -> Downloading -> Training -> Uploading -> Completed, and
  ``sagemaker::processing-job``: InProgress -> Completed), immediate by default, so a test can
  hold jobs with ``world.hold(...)``; moto's jobs are Completed at once.
- A fate (service ``sagemaker``, job = the job's name) sets its status and FailureReason; a
  fate of ``InProgress`` keeps it running (``secondary_status`` in the fate, default Training)
  until it is stopped. ``model_artifacts`` in a fate sets ModelArtifacts.S3ModelArtifacts ("" for
  none: saving is "only a best effort case"); ``exit_message`` sets a processing job's ExitMessage
  ("metadata from the processing container when the processing job exits"), also when the fate
  comes as the job is already stopping (its container exits as it stops).
- A job is stopped by its StoppingCondition, as the model documents: "When the job reaches the
  time limit, SageMaker ends the job" (training: Stopping, then Stopped with SecondaryStatus
  ``MaxRuntimeExceeded`` - "The job stopped because it exceeded the maximum allowed runtime" - or,
  for managed Spot training, ``MaxWaitTimeExceeded`` - "...the maximum allowed wait time"; the
  model artifact SageMaker saved in the 120 s SIGTERM window stays in ModelArtifacts).
  MaxRuntimeInSeconds counts from the job leaving Starting/Pending, MaxWaitTimeInSeconds ("the
  amount of time spent waiting for Spot capacity plus the amount of time the job can run") from
  its creation. A processing job's ProcessingStoppingCondition: "After the condition is met, the
  processing job is stopped" (ProcessingJobStatus Stopped; the model has no secondary status for
  it). Only a job still running meets its limit: one held by a fate of ``InProgress`` or by
  ``world.hold``; moto's jobs end long before any limit.
- A fate of ``Deleting`` (TrainingJobStatus only) keeps the SecondaryStatus the job had (the model
  has no ``Deleting`` secondary status). DeleteTrainingJob / DeleteProcessingJob, which moto
  lacks: "You can delete only training jobs that are in a terminal state (Stopped, Failed, or
  Completed)... You cannot delete a job that is in the InProgress or Stopping state"
  (ResourceInUse); a training job answers Deleting on the next describe, then is gone ("all of the
  metadata for the training job is lost"); a processing job (no Deleting status) is gone at once.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import FakeProcessingJob, FakeTrainingJob, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from . import fate_of
from ._support import adds_method, wraps_method

TRAINING = "sagemaker::training-job"
PROCESSING = "sagemaker::processing-job"
TRAINING_STEPS: list[tuple[str | None, str]] = [  # moto's ManagedState transitions
    ("Starting", "Downloading"),
    ("Downloading", "Training"),
    ("Training", "Uploading"),
    ("Uploading", "Completed"),
]
PROCESSING_STEPS: list[tuple[str | None, str]] = [("InProgress", "Completed")]
ENDED = ("Completed", "Failed", "Stopped")
WAITING = ("Starting", "Pending")  # training's secondary statuses before its runtime counts
for _model in (TRAINING, PROCESSING):
    state_manager.register_default_transition(_model, {"progression": "immediate"})

_JOBS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _status(job: Any) -> str:
    return job.training_job_status if isinstance(job, FakeTrainingJob) else job.processing_job_status


def _set(job: Any, status: str, secondary: str = "") -> None:
    if isinstance(job, FakeTrainingJob):
        job.training_job_status = status
        job.secondary_status = secondary or status
    else:
        job.processing_job_status = status


def _exit_message(job: Any) -> None:
    fate = None if isinstance(job, FakeTrainingJob) else fate_of("sagemaker", job.processing_job_name)
    if fate and fate.get("exit_message"):
        job.exit_message = fate["exit_message"]


def _refresh(job: Any, advance: bool) -> None:
    extra = _JOBS.get(job)
    if extra is None:
        return
    if "deleted" in extra:  # DeleteTrainingJob: Deleting once, then gone
        if advance:
            extra["deleted"] += 1
        return
    if "stopped" in extra:  # a Stop call, or its StoppingCondition: Stopping once, then Stopped
        _exit_message(job)  # its container's, set by a fate however late (it exits as it stops)
        if advance:
            extra["stopped"] += 1
            if extra["stopped"] > 1:
                _set(job, "Stopped", extra.get("limit", ""))
        return
    name = job.training_job_name if isinstance(job, FakeTrainingJob) else job.processing_job_name
    fate = fate_of("sagemaker", name)
    if fate:
        status = fate["status"]
        default = {"InProgress": "Training", "Deleting": getattr(job, "secondary_status", "")}.get(status, status)
        _set(job, status, fate.get("secondary_status") or default)
        if fate["reason"]:
            job.failure_reason = fate["reason"]
        if "model_artifacts" in fate and isinstance(job, FakeTrainingJob):
            artifacts = {"S3ModelArtifacts": fate["model_artifacts"]} if fate["model_artifacts"] else None
            job.model_artifacts = artifacts  # type: ignore[assignment]  # None: left out of the answer
        if fate.get("exit_message") and not isinstance(job, FakeTrainingJob):
            job.exit_message = fate["exit_message"]
    else:
        managed = extra["managed"]
        if advance:
            managed.advance()
        step = managed.status
        if isinstance(job, FakeTrainingJob):
            _set(job, "Completed" if step == "Completed" else "InProgress", step)
        else:
            _set(job, step)
    if _status(job) == "InProgress":
        _stopping_condition(job, extra)


def _stopping_condition(job: Any, extra: dict[str, Any]) -> None:
    """Stop a running job that has run past its StoppingCondition, as SageMaker does."""
    limits = job.stopping_condition or {}
    now = time.monotonic()
    training = isinstance(job, FakeTrainingJob)
    if training and job.secondary_status in WAITING:
        extra["waited"] = True
    else:  # running: since now if it was seen waiting, else since it was created
        extra.setdefault("running_since", now if extra.get("waited") else extra["created"])
    waited, ran = now - extra["created"], now - extra.get("running_since", now)
    max_wait, max_run = limits.get("MaxWaitTimeInSeconds"), limits.get("MaxRuntimeInSeconds")
    if training and job.enable_managed_spot_training and max_wait and waited > max_wait:
        limit = "MaxWaitTimeExceeded"
    elif max_run and ran > max_run and "running_since" in extra:
        limit = "MaxRuntimeExceeded"
    else:
        return
    _set(job, "Stopping")
    extra["stopped"], extra["limit"] = 0, limit if training else ""


def _stop(job: Any, kind: str) -> None:
    _refresh(job, advance=False)
    status = _status(job)
    if status in ENDED or status == "Stopping":
        raise ValidationError(message=f"The request was rejected because the {kind} job is in status {status}.")
    _set(job, "Stopping")
    _JOBS.setdefault(job, {})["stopped"] = 0


def _create(kind: str, jobs_of: str, model: str, steps: list[tuple[str | None, str]], name_param: str) -> Any:
    def create(original: Any, self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get(name_param) or (args[0] if args else "")
        existing = getattr(self, jobs_of).get(name)
        if existing is not None:
            raise ResourceInUseException(
                message=f"{kind.capitalize()} job names must be unique within an AWS account and region, and a "
                f"{kind} job with this name already exists ({existing.arn})"
            )
        job = original(self, *args, **kwargs)
        _JOBS[job] = {"managed": ManagedState(model, steps), "created": time.monotonic()}
        _refresh(job, advance=False)
        return job

    return create


wraps_method(SageMakerModelBackend, "create_training_job")(
    _create("training", "training_jobs", TRAINING, TRAINING_STEPS, "training_job_name")
)
wraps_method(SageMakerModelBackend, "create_processing_job")(
    _create("processing", "processing_jobs", PROCESSING, PROCESSING_STEPS, "processing_job_name")
)


def _found(self: SageMakerModelBackend, jobs_of: str, name: str, cls: Any, kind: str) -> Any:
    job = getattr(self, jobs_of).get(name)
    if job is None:
        arn = cls.arn_formatter(name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find {kind} job '{arn}'.")
    return job


@wraps_method(SageMakerResponse, "create_processing_job")
def _create_processing_response(original: Any, self: SageMakerResponse) -> Any:
    answer = original(self)
    job = self.sagemaker_backend.processing_jobs[self._get_param("ProcessingJobName")]
    for param, attribute in (("Environment", "environment"), ("ProcessingResources", "processing_resources")):
        if self._get_param(param):
            setattr(job, attribute, self._get_param(param))
    return answer


def _described(self: SageMakerModelBackend, jobs_of: str, name: str, cls: Any, kind: str) -> None:
    job = _found(self, jobs_of, name, cls, kind)
    _refresh(job, advance=True)
    if _JOBS.get(job, {}).get("deleted", 0) > 1:  # answered Deleting once: now its metadata is lost
        del getattr(self, jobs_of)[name]
        _found(self, jobs_of, name, cls, kind)


@wraps_method(SageMakerModelBackend, "describe_training_job")
def _describe_training(original: Any, self: SageMakerModelBackend, training_job_name: str) -> Any:
    _described(self, "training_jobs", training_job_name, FakeTrainingJob, "training")
    return original(self, training_job_name)


@wraps_method(SageMakerModelBackend, "describe_processing_job")
def _describe_processing(original: Any, self: SageMakerModelBackend, processing_job_name: str) -> Any:
    _described(self, "processing_jobs", processing_job_name, FakeProcessingJob, "processing")
    return original(self, processing_job_name)


def _delete(self: SageMakerResponse, kind: str) -> str:
    jobs_of, noun = f"{kind}_jobs", f"{kind.capitalize()}Job"
    name = self._get_param(f"{noun}Name")
    jobs = getattr(self.sagemaker_backend, jobs_of)
    job = jobs.get(name)
    if job is None or "deleted" in _JOBS.get(job, {}):
        raise ResourceNotFound(message=f"{kind.capitalize()} job {name} does not exist.")
    _refresh(job, advance=False)
    status = _status(job)
    if status not in ENDED:
        raise ResourceInUseException(
            message=f"You cannot delete a {kind} job that is in the {status} state; only a job that is "
            f"Stopped, Failed or Completed can be deleted."
        )
    if isinstance(job, FakeTrainingJob):
        _set(job, "Deleting", job.secondary_status)
        _JOBS.setdefault(job, {})["deleted"] = 0
    else:
        del jobs[name]
    return "{}"


adds_method(SageMakerResponse, "delete_training_job")(lambda self: _delete(self, "training"))
adds_method(SageMakerResponse, "delete_processing_job")(lambda self: _delete(self, "processing"))


@wraps_method(SageMakerModelBackend, "stop_processing_job")
def _stop_processing(original: Any, self: SageMakerModelBackend, processing_job_name: str) -> None:
    _stop(_found(self, "processing_jobs", processing_job_name, FakeProcessingJob, "processing"), "processing")


@adds_method(SageMakerResponse, "stop_training_job")
def _stop_training_response(self: SageMakerResponse) -> Any:
    name = self._get_param("TrainingJobName")
    _stop(_found(self.sagemaker_backend, "training_jobs", name, FakeTrainingJob, "training"), "training")
    return "{}"
