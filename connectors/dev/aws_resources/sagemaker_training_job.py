"""examples/sagemaker_training_job.json: the role SageMaker assumes (tagged for the connectors, which
pass it), and s3://flyte-examples/sagemaker/."""

from collections.abc import Callable
from typing import Any

from . import ensure_bucket, ensure_role

ROLE = "flyte-sagemaker"
OUTPUT_PATH = "s3://flyte-examples/sagemaker/models"
TRAIN_DATA = "s3://flyte-examples/sagemaker/data/train.csv"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    clients("s3").put_object(Bucket="flyte-examples", Key="sagemaker/data/train.csv", Body=b"1,0.5,0.25\n0,0.1,0.75\n")
    ensure_role(clients, ROLE, "sagemaker.amazonaws.com", scoped=True)
