"""Flyte v2 task classes for AWS, run by the flyte-aws-connectors service.

Each class is a Flyte task whose task type routes it to the connector service (remote runs) and
whose ``custom`` fields tell the connector what to start:

| class | task type | AWS |
|---|---|---|
| AthenaQueryTask | athena_query | Athena StartQueryExecution |
| RedshiftQueryTask | redshift_query | Redshift Data ExecuteStatement |
| BatchJobTask | aws_batch_job | Batch SubmitJob |
| StepFunctionsTask | sfn_execution | Step Functions StartExecution |
| EmrServerlessJobTask | emr_serverless_job | EMR Serverless StartJobRun |
| SageMakerTrainingJobTask | sagemaker_training_job | SageMaker CreateTrainingJob |
| SageMakerProcessingJobTask | sagemaker_processing_job | SageMaker CreateProcessingJob |
| GlueJobTask | glue_job | Glue StartJobRun |

```python
import flyte
from flyte.io import DataFrame
from flyteplugins.aws import AthenaQueryTask

daily = AthenaQueryTask(name="daily_counts", query="select count(*) from events where day = ?",
                        work_group="flyte", inputs={"day": str}, output_dataframe_type=DataFrame)
aws = flyte.TaskEnvironment.from_task("aws", daily)
env = flyte.TaskEnvironment(name="analytics", depends_on=[aws])

@env.task
async def report(day: str) -> DataFrame:
    return await daily(day=day)
```

Importing this package needs only ``flyte``. A local run (``flyte.run`` in local mode) calls
the service package's connector in-process: see docs/flyte-tasks.md.
"""

from .athena import AthenaQueryTask
from .batch import BatchJobTask
from .emr_serverless import EmrServerlessJobTask
from .glue import GlueJobTask
from .redshift import RedshiftQueryTask
from .sagemaker import SageMakerProcessingJobTask, SageMakerTrainingJobTask
from .step_functions import StepFunctionsTask

__all__ = [
    "AthenaQueryTask",
    "BatchJobTask",
    "EmrServerlessJobTask",
    "GlueJobTask",
    "RedshiftQueryTask",
    "SageMakerProcessingJobTask",
    "SageMakerTrainingJobTask",
    "StepFunctionsTask",
]
