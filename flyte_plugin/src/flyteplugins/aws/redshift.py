"""``redshift_query``: a Redshift Data API statement on a cluster or a Serverless workgroup."""

from __future__ import annotations

from typing import Any

from flyte.models import SerializationContext
from flyteidl2.core import tasks_pb2

from ._task import AwsTask, required, with_results

__all__ = ["RedshiftQueryTask"]


class RedshiftQueryTask(AwsTask):
    """Run a SQL statement with the Redshift Data API (ExecuteStatement, ClientToken = the token).

    Every input is a named parameter ``:name``. Give exactly one of ``cluster_identifier`` (with
    ``db_user`` or ``secret_arn``) and ``workgroup_name``. With a DataFrame output and
    ``unload_prefix``, the query is wrapped in ``UNLOAD ... TO '<unload_prefix>/<token>/'
    IAM_ROLE '<unload_iam_role>' FORMAT AS PARQUET`` and the output refers to that prefix.

    ```python
    top = RedshiftQueryTask(name="top_users", query="select * from users where day = :day",
                            database="dev", workgroup_name="analytics", inputs={"day": str},
                            unload_prefix="s3://bucket/unload", unload_iam_role="arn:aws:iam::123:role/unload",
                            output_dataframe_type=DataFrame)
    ```
    """

    _TASK_TYPE = "redshift_query"
    _CONNECTOR = "connectors.builtin.aws.redshift:RedshiftQueryConnector"

    def __init__(
        self,
        name: str,
        *,
        query: str,
        database: str,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        db_user: str | None = None,
        secret_arn: str | None = None,
        unload_prefix: str | None = None,
        unload_iam_role: str | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        output_dataframe_type: type | None = None,
        **kwargs: Any,
    ) -> None:
        required(type(self).__name__, query=query, database=database)
        if (cluster_identifier is None) == (workgroup_name is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of cluster_identifier and workgroup_name")
        if unload_prefix is not None and not unload_iam_role:
            raise ValueError(f"{type(self).__name__}: unload_iam_role is required with unload_prefix")
        custom = {
            "query": query,
            "database": database,
            "cluster_identifier": cluster_identifier,
            "workgroup_name": workgroup_name,
            "db_user": db_user,
            "secret_arn": secret_arn,
            "unload_prefix": unload_prefix,
            "unload_iam_role": unload_iam_role,
        }
        super().__init__(name, custom, inputs, with_results(outputs, output_dataframe_type), **kwargs)

    def sql(self, sctx: SerializationContext) -> tasks_pb2.Sql | None:
        return tasks_pb2.Sql(statement=self._custom["query"], dialect=tasks_pb2.Sql.Dialect.ANSI)
