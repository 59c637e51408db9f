"""examples/redshift_query.json: the provisioned cluster ``flyte-example`` (database ``dev``) and
the role ``flyte-redshift-unload`` that UNLOAD writes to s3://flyte-examples/redshift/ with. Not
tagged: a deployment names the cluster (RedshiftClusterArns) and the database user
(RedshiftDbUsers), or redshift_query stays off."""

from collections.abc import Callable
from typing import Any

from . import ensure_bucket, ensure_role

CLUSTER = "flyte-example"
DATABASE = "dev"
DB_USER = "flyte"
UNLOAD_ROLE_NAME = "flyte-redshift-unload"
UNLOAD_PREFIX = "s3://flyte-examples/redshift/unload"


def create(clients: Callable[[str], Any]) -> None:
    ensure_bucket(clients, "flyte-examples")
    ensure_role(clients, UNLOAD_ROLE_NAME, "redshift.amazonaws.com")
    redshift = clients("redshift")
    if CLUSTER not in [c["ClusterIdentifier"] for c in redshift.describe_clusters()["Clusters"]]:
        redshift.create_cluster(
            ClusterIdentifier=CLUSTER,
            NodeType="ra3.xlplus",
            MasterUsername="admin",
            MasterUserPassword="Example-only-1",
            DBName=DATABASE,
            NumberOfNodes=1,
            ClusterType="single-node",
        )
