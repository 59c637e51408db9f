"""The embedded fake AWS answers every operation the connectors and the examples call, as the
locked botocore sends it.

botocore moves services between protocols (1.44.18 moved Athena from JSON 1.1 to rest-json) and
moto's server follows on its own schedule: an operation it does not route answers a bare 404 page,
and everything built on it (`make serve`, the examples, the tests) breaks the day the lock moves.
This test sends each operation, with the smallest request its model accepts, through the locked
botocore's own client to the fake AWS the tests and `make serve` use, and fails on an answer that
is not AWS-shaped: a 404 page, a 5xx, an error code that is a number or says "not implemented".
An AWS error (ValidationException, ResourceNotFoundException...) is a routed, parsed call: fine.

The operations: every connector's ``iam_actions`` that is an operation of its service, and every
call the examples' resources make (recorded while they are created).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.parsers import ResponseParserError

from connectors.builtin.aws import aws_connector_classes
from connectors.dev import aws_resources
from connectors.dev.aws_resources import REGION
from connectors.dev.fake_aws import protocols

ROOT = Path(__file__).resolve().parents[3]
# IAM's service prefix -> botocore's service name
IAM_PREFIXES = {"states": "stepfunctions"}
NOT_AWS_SHAPED = ("NotImplemented", "InternalFailure", "InternalError", "InternalServerError")
# IAM actions AWS checks on a call the connector makes (tags given at create, the credentials the
# Redshift Data API fetches for the caller): authorizations, never sent by a connector.
AUTHORIZATIONS_ONLY = {
    ("emr-serverless", "TagResource"), ("sagemaker", "AddTags"), ("redshift", "GetClusterCredentials"),
    ("redshift", "GetClusterCredentialsWithIAM"), ("redshift-serverless", "GetCredentials"),
}  # fmt: skip
# Members a model leaves optional that every real call sends (the connectors do): moto needs them.
SENT_ANYWAY = {
    ("dynamodb", "CreateTable"): {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
    },
    ("sagemaker", "CreateTrainingJob"): {
        "AlgorithmSpecification": {"TrainingImage": "a", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    },
}


# The service's own calls besides the connectors': the store (connectors/store/, through its
# ``_call("operation"``, plus the table's creation) and the secrets (connectors/secrets.py, through
# Powertools' providers: GetSecretValue, then GetParameter).
SECRETS_OPERATIONS = {("secretsmanager", "GetSecretValue"), ("ssm", "GetParameter")}


def store_operations() -> set[tuple[str, str]]:
    model = botocore.session.get_session().get_service_model("dynamodb")
    by_method = {botocore.xform_name(name): name for name in model.operation_names}
    source = " ".join(path.read_text() for path in (ROOT / "connectors" / "store").glob("*.py"))
    methods = set(re.findall(r'_call\(\s*"([a-z_]+)"', source)) | set(re.findall(r"client\.([a-z_]+)\(", source))
    return {("dynamodb", by_method[method]) for method in methods if method in by_method}


def connector_operations() -> set[tuple[str, str]]:
    session = botocore.session.get_session()
    found = set()
    for cls in aws_connector_classes():
        for actions in cls.iam_actions.values():
            for action in actions:
                prefix, name = action.split(":", 1)
                service = IAM_PREFIXES.get(prefix, prefix)
                known = service in session.get_available_services()
                if known and name in session.get_service_model(service).operation_names:
                    found.add((service, name))
    return found - AUTHORIZATIONS_ONLY


@pytest.fixture(scope="module")
def example_operations(aws_endpoint: str, monkeypatch_module: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """The operations creating the examples' resources sends (they are created again: safe)."""
    called: set[tuple[str, str]] = set()
    make_client = boto3.session.Session.client

    def recording_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = make_client(self, *args, **kwargs)
        service = client.meta.service_model.service_name
        client.meta.events.register("before-call", lambda model, **_: called.add((service, model.name)))
        return client

    monkeypatch_module.setattr(boto3.session.Session, "client", recording_client)
    aws_resources.create_example_resources(aws_endpoint)
    monkeypatch_module.undo()
    return called


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# An ARN of a resource each service knows (moto reads the resource kind out of it).
ARN_RESOURCES = {"sagemaker": "training-job/a"}


def smallest(shape: Shape, name: str = "", service: str = "") -> Any:
    """The smallest value botocore's parameter validation accepts for ``shape`` (a member called
    ``name``), an ARN where the name says one: moto reads ARNs apart, as AWS validates them."""
    low = shape.metadata.get("min")
    if shape.type_name == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = shape.required_members  # type: ignore[attr-defined]
        return {member: smallest(members[member], member, service) for member in required}
    if shape.type_name == "string" and name.lower().endswith("arn") and not shape.enum:  # type: ignore[attr-defined]
        if "role" in name.lower():
            return f"arn:aws:iam::123456789012:role/{name}"
        return f"arn:aws:{service}:{REGION}:123456789012:{ARN_RESOURCES.get(service, 'job/a')}"
    if shape.type_name == "list":
        return [smallest(shape.member, name, service) for _ in range(int(low or 0))]  # type: ignore[attr-defined]
    if shape.type_name == "map":
        return {}
    if shape.type_name == "string":
        return shape.enum[0] if shape.enum else "a" * max(int(low or 1), 1)  # type: ignore[attr-defined]
    if shape.type_name in ("integer", "long"):
        return max(int(low or 1), 1)
    if shape.type_name in ("float", "double"):
        return 1.0
    if shape.type_name == "boolean":
        return False
    if shape.type_name == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    if shape.type_name == "blob":
        return b"a" * max(int(low or 1), 1)
    raise AssertionError(f"no smallest value for a {shape.type_name} ({shape.name})")


def answer_of(endpoint: str, service: str, operation: str) -> tuple[int, str]:
    client = boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION, config=Config(retries={"max_attempts": 1})
    )
    model = client.meta.service_model.operation_model(operation)
    params = smallest(model.input_shape, service=service) if model.input_shape is not None else {}
    params.update(SENT_ANYWAY.get((service, operation), {}))
    method = getattr(client, botocore.xform_name(operation))
    try:
        answer = method(**params)
    except ClientError as error:
        status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        if model.http.get("method") == "HEAD" and status in (403, 404):
            return status, "(a HEAD answer has no body: AWS sends the bare status)"
        return status, str(error.response["Error"].get("Code"))
    except ResponseParserError as error:  # a body that is not the protocol's (an HTML error page)
        return 599, f"unparseable answer: {str(error)[:200]}"
    return int(answer["ResponseMetadata"]["HTTPStatusCode"]), ""


def test_the_operations_cover_every_connector_and_the_examples(example_operations: set[tuple[str, str]]) -> None:
    services = {service for service, _ in connector_operations()}
    assert services >= {
        "athena", "batch", "emr-serverless", "glue", "logs", "redshift-data", "sagemaker", "stepfunctions"
    }  # fmt: skip
    assert ("athena", "StartQueryExecution") in connector_operations()
    assert {"GetItem", "Query", "PutItem", "UpdateItem", "CreateTable"} <= {op for _, op in store_operations()}
    assert ("athena", "CreateWorkGroup") in example_operations or ("athena", "ListWorkGroups") in example_operations


def test_every_operation_is_answered_as_aws_answers(
    aws_endpoint: str, example_operations: set[tuple[str, str]]
) -> None:
    operations = sorted(connector_operations() | example_operations | store_operations() | SECRETS_OPERATIONS)
    wrong = {}
    for service, operation in operations:
        status, code = answer_of(aws_endpoint, service, operation)
        if status >= 500 or code.isdigit() or any(word in code for word in NOT_AWS_SHAPED):
            wrong[f"{service} {operation}"] = f"HTTP {status} {code}"
    assert not wrong, f"the fake AWS does not answer these as AWS would (botocore {botocore.__version__}): {wrong}"
    assert len(operations) > 25


def test_services_the_locked_botocore_calls_over_rest_are_routed_on_every_path() -> None:
    for service in protocols.rest_protocol_services():
        assert service in protocols.ROUTED, service
    assert protocols.ROUTED["athena"] == "fake_aws"  # botocore >= 1.44.18 calls Athena over rest-json
