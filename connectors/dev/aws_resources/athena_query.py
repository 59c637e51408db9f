"""examples/athena_query.json: the work group ``flyte`` with results in s3://flyte-examples/athena/."""

from collections.abc import Callable
from typing import Any

from . import ensure_bucket

WORK_GROUP = "flyte"
RESULTS = "s3://flyte-examples/athena/"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    athena = clients("athena")
    names = [group["Name"] for group in athena.list_work_groups()["WorkGroups"]]
    if WORK_GROUP not in names:
        athena.create_work_group(Name=WORK_GROUP, Configuration={"ResultConfiguration": {"OutputLocation": RESULTS}})
