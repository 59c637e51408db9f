"""``emr_serverless_job``: a Spark job run on an EMR Serverless application."""

from __future__ import annotations

from typing import Any

from ._task import AwsTask, required

__all__ = ["EmrServerlessJobTask"]


class EmrServerlessJobTask(AwsTask):
    """Start an EMR Serverless job run (StartJobRun, clientToken = the idempotency token).

    Each input is appended to ``entry_point_arguments`` as ``--<name> <value>``. The custom
    field ``name`` (the job run's name in EMR) is ``job_run_name`` here, since ``name`` is the
    task's own.

    ```python
    etl = EmrServerlessJobTask(name="etl", application_id="00f1abcdexample",
                               execution_role_arn="arn:aws:iam::123456789012:role/emr-job",
                               entry_point="s3://bucket/jobs/etl.py", inputs={"day": str})
    ```
    """

    _TASK_TYPE = "emr_serverless_job"
    _GIVES_OUTPUTS = False
    _CONNECTOR = "connectors.builtin.aws.emr_serverless:EmrServerlessJobConnector"

    def __init__(
        self,
        name: str,
        *,
        application_id: str,
        execution_role_arn: str,
        entry_point: str,
        entry_point_arguments: list[str] | None = None,
        spark_submit_parameters: str | None = None,
        configuration_overrides: dict[str, Any] | None = None,
        job_run_name: str | None = None,
        execution_timeout_minutes: int | None = None,
        tags: dict[str, str] | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(
            type(self).__name__,
            application_id=application_id,
            execution_role_arn=execution_role_arn,
            entry_point=entry_point,
        )
        custom = {
            "application_id": application_id,
            "execution_role_arn": execution_role_arn,
            "entry_point": entry_point,
            "entry_point_arguments": entry_point_arguments,
            "spark_submit_parameters": spark_submit_parameters,
            "configuration_overrides": configuration_overrides,
            "name": job_run_name,
            "execution_timeout_minutes": execution_timeout_minutes,
            "tags": tags,
        }
        super().__init__(name, custom, inputs, outputs, **kwargs)
