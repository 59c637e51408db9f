"""examples/emr_serverless_job.json: the Spark application ``flyte-example`` (id APPLICATION_ID, which
the patched moto gives it), its execution role (both tagged for the connectors) and the job's script
in s3://flyte-examples/emr-serverless/."""

from collections.abc import Callable
from typing import Any

from . import SCOPE_TAG, ensure_bucket, ensure_role

APPLICATION_NAME = "flyte-example"
APPLICATION_ID = "00flyteexample00"  # fixed through connectors/dev/fake_aws/emrserverless.py's tag
ROLE = "flyte-emr-serverless-job"
ENTRY_POINT = "s3://flyte-examples/emr-serverless/wordcount.py"
SCRIPT = b"""import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("wordcount").getOrCreate()
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lines = spark.read.text(args["--source"])
print(lines.count())
"""


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    clients("s3").put_object(Bucket="flyte-examples", Key="emr-serverless/wordcount.py", Body=SCRIPT)
    ensure_role(clients, ROLE, "emr-serverless.amazonaws.com", scoped=True)
    emr = clients("emr-serverless")
    names = [app["name"] for app in emr.list_applications()["applications"] if app["id"] == APPLICATION_ID]
    if APPLICATION_NAME not in names:
        emr.create_application(
            name=APPLICATION_NAME,
            releaseLabel="emr-7.0.0",
            type="SPARK",
            tags={"fake-aws:application-id": APPLICATION_ID, **SCOPE_TAG},
        )
