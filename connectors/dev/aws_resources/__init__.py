"""The AWS resources the examples (examples/<task type>.json) name, created in a local moto.

``make serve`` and the tests call :func:`create_example_resources` against the embedded moto
server: one module per connector, each with ``create(clients)`` that is safe to call again.
``clients(service)`` gives a boto3 client for that endpoint. Not shipped to Lambda.

They are set up as a deployment needs its own to be (docs/security.md): the resources a connector
may use when template.yaml's *Arns parameters are left empty carry the scope tag
(:data:`SCOPE_TAG`, ConnectorTagKey: ConnectorTagValue): the Athena work group, the Batch job queue
and job definition revision, the EMR Serverless application, the Glue job and the roles the
SageMaker and EMR Serverless jobs run as. The Redshift cluster and the state machine are not: IAM
cannot scope those connectors by tags, so a deployment names them (RedshiftClusterArns,
StateMachineArns). The fake AWS checks no IAM; the tags show the setup.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import urllib.request
from collections.abc import Callable
from typing import Any

# moto runs Batch jobs without Docker and Step Functions state machines only when told so.
MOTO_CONFIG = {"batch": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
# ConnectorTagKey's default, and ConnectorTagValue's (the stack's name) for the stack name
# samconfig.toml gives `sam deploy`.
SCOPE_TAG = {"flyte-connectors": "flyte-connectors"}


def scope_tags() -> list[dict[str, str]]:
    """:data:`SCOPE_TAG` as the APIs that take a list of {Key, Value} want it (Athena, IAM)."""
    return [{"Key": key, "Value": value} for key, value in SCOPE_TAG.items()]


def configure_moto(endpoint: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - the http endpoint of the moto server being set up
        f"{endpoint}/moto-api/config",
        data=json.dumps(MOTO_CONFIG).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - as above
        pass


def client_factory(endpoint: str) -> Callable[[str], Any]:
    import boto3

    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            made[service] = boto3.session.Session().client(service, endpoint_url=endpoint, region_name=REGION)
        return made[service]

    return clients


def create_example_resources(endpoint: str) -> list[str]:
    """Configure moto and create every connector's example resources; the modules that did."""
    configure_moto(endpoint)
    clients = client_factory(endpoint)
    done = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}").create(clients)
            done.append(module.name)
    return done


def ensure_role(clients: Callable[[str], Any], name: str, service: str, scoped: bool = False) -> str:
    """An IAM role that ``service`` (``sagemaker.amazonaws.com``...) may assume; its ARN.
    ``scoped``: a role the connectors pass to AWS as a job's role, tagged :data:`SCOPE_TAG`."""
    iam = clients("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        tags = scope_tags() if scoped else []
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)["Role"]["Arn"]


def ensure_bucket(clients: Callable[[str], Any], name: str) -> None:
    s3 = clients("s3")
    try:
        s3.head_bucket(Bucket=name)
    except Exception:
        s3.create_bucket(Bucket=name)
