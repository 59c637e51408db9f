"""examples/athena_query.json: the work group ``flyte`` (tagged for the connectors) with results in
s3://flyte-examples/athena/ (a deployment names that bucket: AthenaResultsBucketArns)."""

from collections.abc import Callable
from typing import Any

from . import ensure_bucket, scope_tags

WORK_GROUP = "flyte"
RESULTS = "s3://flyte-examples/athena/"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    athena = clients("athena")
    names = [group["Name"] for group in athena.list_work_groups()["WorkGroups"]]
    if WORK_GROUP not in names:
        athena.create_work_group(
            Name=WORK_GROUP,
            Configuration={"ResultConfiguration": {"OutputLocation": RESULTS}},
            Tags=scope_tags(),
        )
