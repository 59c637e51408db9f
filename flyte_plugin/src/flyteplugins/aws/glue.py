"""``glue_job``: a run of an existing AWS Glue job."""

from __future__ import annotations

from typing import Any

from ._task import AwsTask, required

__all__ = ["GlueJobTask"]


class GlueJobTask(AwsTask):
    """Start a run of a Glue job (StartJobRun; the token rides in ``--flyte-idempotency-token``).

    Each input is passed as the job argument ``--<name>``; ``arguments`` holds fixed ones
    (keys like ``"--day"``).

    ```python
    load = GlueJobTask(name="load", job_name="load-events", arguments={"--stage": "prod"},
                       worker_type="G.1X", number_of_workers=2, inputs={"day": str})
    ```
    """

    _TASK_TYPE = "glue_job"
    _GIVES_OUTPUTS = False
    _CONNECTOR = "connectors.builtin.aws.glue:GlueJobConnector"

    def __init__(
        self,
        name: str,
        *,
        job_name: str,
        arguments: dict[str, str] | None = None,
        worker_type: str | None = None,
        number_of_workers: int | None = None,
        timeout_minutes: int | None = None,
        max_capacity: float | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(type(self).__name__, job_name=job_name)
        custom = {
            "job_name": job_name,
            "arguments": arguments,
            "worker_type": worker_type,
            "number_of_workers": number_of_workers,
            "timeout_minutes": timeout_minutes,
            "max_capacity": max_capacity,
        }
        super().__init__(name, custom, inputs, outputs, **kwargs)
