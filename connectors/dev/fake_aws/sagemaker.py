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
  until it is stopped.
"""

from __future__ import annotations

import weakref
from typing import Any

from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
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


def _refresh(job: Any, advance: bool) -> None:
    extra = _JOBS.get(job)
    if extra is None:
        return
    if "stopped" in extra:
        if advance:
            extra["stopped"] += 1
            if extra["stopped"] > 1:
                _set(job, "Stopped")
        return
    name = job.training_job_name if isinstance(job, FakeTrainingJob) else job.processing_job_name
    fate = fate_of("sagemaker", name)
    if fate:
        status = fate["status"]
        _set(job, status, fate.get("secondary_status") or ("Training" if status == "InProgress" else status))
        if fate["reason"]:
            job.failure_reason = fate["reason"]
        return
    managed = extra["managed"]
    if advance:
        managed.advance()
    step = managed.status
    if isinstance(job, FakeTrainingJob):
        _set(job, "Completed" if step == "Completed" else "InProgress", step)
    else:
        _set(job, step)


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
        _JOBS[job] = {"managed": ManagedState(model, steps)}
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


@wraps_method(SageMakerModelBackend, "describe_training_job")
def _describe_training(original: Any, self: SageMakerModelBackend, training_job_name: str) -> Any:
    _refresh(_found(self, "training_jobs", training_job_name, FakeTrainingJob, "training"), advance=True)
    return original(self, training_job_name)


@wraps_method(SageMakerModelBackend, "describe_processing_job")
def _describe_processing(original: Any, self: SageMakerModelBackend, processing_job_name: str) -> Any:
    _refresh(_found(self, "processing_jobs", processing_job_name, FakeProcessingJob, "processing"), advance=True)
    return original(self, processing_job_name)


@wraps_method(SageMakerModelBackend, "stop_processing_job")
def _stop_processing(original: Any, self: SageMakerModelBackend, processing_job_name: str) -> None:
    _stop(_found(self, "processing_jobs", processing_job_name, FakeProcessingJob, "processing"), "processing")


@adds_method(SageMakerResponse, "stop_training_job")
def _stop_training_response(self: SageMakerResponse) -> Any:
    name = self._get_param("TrainingJobName")
    _stop(_found(self.sagemaker_backend, "training_jobs", name, FakeTrainingJob, "training"), "training")
    return "{}"
