"""The AWS resources the examples (examples/<task type>.json) name, created in a local moto.

``make serve`` and the tests call :func:`create_example_resources` against the embedded moto
server: one module per connector, each with ``create(clients)`` that is safe to call again.
``clients(service)`` gives a boto3 client for that endpoint. Not shipped to Lambda.
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


def ensure_role(clients: Callable[[str], Any], name: str, service: str) -> str:
    """An IAM role that ``service`` (``sagemaker.amazonaws.com``...) may assume; its ARN."""
    iam = clients("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def ensure_bucket(clients: Callable[[str], Any], name: str) -> None:
    s3 = clients("s3")
    try:
        s3.head_bucket(Bucket=name)
    except Exception:
        s3.create_bucket(Bucket=name)
