"""examples/glue_job.json: the Glue job ``flyte-example`` (a Python shell script in S3, tagged for the
connectors) with a role Glue may assume; up to 100 runs at once, so that held runs in tests do not
refuse new ones."""

from collections.abc import Callable
from typing import Any

from . import SCOPE_TAG, ensure_bucket, ensure_role

JOB_NAME = "flyte-example"
SCRIPT = "s3://flyte-examples/glue/flyte_example.py"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    clients("s3").put_object(
        Bucket="flyte-examples",
        Key="glue/flyte_example.py",
        Body=b"import sys\nfrom awsglue.utils import getResolvedOptions\n"
        b"args = getResolvedOptions(sys.argv, ['day'])\nprint('hello from flyte on', args['day'])\n",
    )
    role = ensure_role(clients, "flyte-example-glue", "glue.amazonaws.com")
    glue = clients("glue")
    try:
        glue.get_job(JobName=JOB_NAME)
    except glue.exceptions.EntityNotFoundException:
        glue.create_job(
            Name=JOB_NAME,
            Role=role,
            Command={"Name": "pythonshell", "ScriptLocation": SCRIPT, "PythonVersion": "3.9"},
            DefaultArguments={"--day": "today"},
            MaxCapacity=0.0625,
            Timeout=60,
            ExecutionProperty={"MaxConcurrentRuns": 100},
            Tags=SCOPE_TAG,
        )
