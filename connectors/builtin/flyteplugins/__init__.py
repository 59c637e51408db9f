"""Flyte's own connectors (flyte-sdk 2.12's plugins), ported with lean dependencies.

The same task types, template fields, remote calls, phases, messages and log links as the flyte
SDK's connector server, so that a team's tasks move here unchanged. Each is optional: a build
chooses them by installing their extras (``make sam-build FLYTE_CONNECTORS="databricks slurm"``
installs ``.[databricks,slurm]`` into the layer), and a deployment serves each one whose
dependencies it holds, registered lazily like the AWS connectors.
"""

from __future__ import annotations

from typing import Any

from ..spec import ConnectorSpec

# task type -> its port; ``requires`` is what its extra in pyproject.toml installs
FLYTEPLUGIN_CONNECTORS: dict[str, ConnectorSpec] = {
    "databricks": ConnectorSpec("databricks:DatabricksConnector", "Databricks Connector", requires=("httpx",)),
    "snowflake": ConnectorSpec(
        "snowflake:SnowflakeConnector", "Snowflake Connector", 30.0, requires=("snowflake.connector", "cryptography")
    ),
    "bigquery_query_job_task": ConnectorSpec(
        "bigquery:BigQueryConnector", "Bigquery Connector", requires=("google.cloud.bigquery", "google.oauth2")
    ),
    "slurm": ConnectorSpec("slurm:SlurmConnector", "Slurm Connector", requires=("asyncssh",)),
}


def flyteplugin_connector_class(task_type: str) -> type[Any]:
    return FLYTEPLUGIN_CONNECTORS[task_type].load_class(__name__)


def available_flyteplugin_connectors() -> list[str]:
    """The task types whose dependencies this build holds."""
    return [task_type for task_type, spec in FLYTEPLUGIN_CONNECTORS.items() if spec.available()]


__all__ = ["FLYTEPLUGIN_CONNECTORS", "available_flyteplugin_connectors", "flyteplugin_connector_class"]
