"""examples/sagemaker_processing_job.json: the role SageMaker assumes, and the script it runs."""

from collections.abc import Callable
from typing import Any

from . import ensure_bucket, ensure_role
from .sagemaker_training_job import ROLE

CODE = "s3://flyte-examples/sagemaker/code/preprocess.py"
FEATURES = "s3://flyte-examples/sagemaker/features"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    clients("s3").put_object(
        Bucket="flyte-examples",
        Key="sagemaker/code/preprocess.py",
        Body=b"import pandas as pd\nprint('preprocessing')\n",
    )
    ensure_role(clients, ROLE, "sagemaker.amazonaws.com", scoped=True)
