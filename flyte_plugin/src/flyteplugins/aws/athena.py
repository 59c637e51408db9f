"""``athena_query``: an Amazon Athena query; its result file is the first DataFrame output."""

from __future__ import annotations

from typing import Any

from flyte.models import SerializationContext
from flyteidl2.core import tasks_pb2

from ._task import AwsTask, required, with_results

__all__ = ["AthenaQueryTask"]


class AthenaQueryTask(AwsTask):
    """Run an Athena query (StartQueryExecution; the idempotency token is its ClientRequestToken).

    ``?`` placeholders in ``query`` take the inputs named in ``parameters`` (by default every
    input, in declared order) as typed SQL literals. The first declared DataFrame output (or
    ``output_dataframe_type``, declared as ``results``) refers to the result CSV in S3.

    ```python
    daily = AthenaQueryTask(name="daily_counts", query="select count(*) from events where day = ?",
                            work_group="flyte", database="analytics", inputs={"day": str},
                            output_dataframe_type=DataFrame)
    ```
    """

    _TASK_TYPE = "athena_query"
    _CONNECTOR = "connectors.builtin.aws.athena:AthenaQueryConnector"

    def __init__(
        self,
        name: str,
        *,
        query: str,
        parameters: list[str] | None = None,
        work_group: str | None = None,
        catalog: str | None = None,
        database: str | None = None,
        output_location: str | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        output_dataframe_type: type | None = None,
        **kwargs: Any,
    ) -> None:
        required(type(self).__name__, query=query)
        custom = {
            "query": query,
            "parameters": parameters,
            "work_group": work_group,
            "catalog": catalog,
            "database": database,
            "output_location": output_location,
        }
        super().__init__(name, custom, inputs, with_results(outputs, output_dataframe_type), **kwargs)

    def sql(self, sctx: SerializationContext) -> tasks_pb2.Sql | None:
        return tasks_pb2.Sql(statement=self._custom["query"], dialect=tasks_pb2.Sql.Dialect.ANSI)
