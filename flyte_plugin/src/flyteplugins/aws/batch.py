"""``aws_batch_job``: an AWS Batch job submitted to a queue."""

from __future__ import annotations

from typing import Any

from ._task import AwsTask, required

__all__ = ["BatchJobTask"]


class BatchJobTask(AwsTask):
    """Submit an AWS Batch job (SubmitJob; its name is derived from the idempotency token).

    The inputs are the job's ``parameters`` (``Ref::name`` in the job definition's command) as
    text; ``environment`` is merged into ``container_overrides["environment"]`` (AWS's shape).
    Batch jobs have no data outputs; their logs stream from CloudWatch.

    ```python
    nightly = BatchJobTask(name="nightly", job_queue="flyte-queue", job_definition="report:3",
                           environment={"STAGE": "prod"}, inputs={"day": str}, timeout_seconds=3600)
    ```
    """

    _TASK_TYPE = "aws_batch_job"
    _GIVES_OUTPUTS = False
    _CONNECTOR = "connectors.builtin.aws.batch:AwsBatchJobConnector"

    def __init__(
        self,
        name: str,
        *,
        job_queue: str,
        job_definition: str,
        container_overrides: dict[str, Any] | None = None,
        environment: dict[str, str] | None = None,
        array_size: int | None = None,
        timeout_seconds: int | None = None,
        tags: dict[str, str] | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(type(self).__name__, job_queue=job_queue, job_definition=job_definition)
        custom = {
            "job_queue": job_queue,
            "job_definition": job_definition,
            "container_overrides": container_overrides,
            "environment": environment,
            "array_size": array_size,
            "timeout_seconds": timeout_seconds,
            "tags": tags,
        }
        super().__init__(name, custom, inputs, outputs, **kwargs)
