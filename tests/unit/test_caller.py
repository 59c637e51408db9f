"""connectors/caller.py: who the principal of an API Gateway event is (issue 18, docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.caller import from_event, normalize
from connectors.dev.events import http_api_event


def event_signed(**iam: Any) -> dict[str, Any]:
    return http_api_event("GET", "/healthz", iam=iam)


@pytest.mark.parametrize(
    ("user_arn", "principal"),
    [
        # An assumed role: the role, whatever the session (IRSA, Pod Identity, SSO, a relay restarted).
        (
            "arn:aws:sts::123456789012:assumed-role/flyte-executor/botocore-session-1712345678",
            "arn:aws:sts::123456789012:assumed-role/flyte-executor",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/someone@example.com",
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123",
        ),
        (
            "arn:aws-cn:sts::123456789012:assumed-role/flyte-executor/eks-prod-relay-7f9c",
            "arn:aws-cn:sts::123456789012:assumed-role/flyte-executor",
        ),
        # Users, the root user and federated users are their ARN.
        ("arn:aws:iam::123456789012:user/ops/alice", "arn:aws:iam::123456789012:user/ops/alice"),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
        ("arn:aws:sts::123456789012:federated-user/bob", "arn:aws:sts::123456789012:federated-user/bob"),
    ],
)
def test_the_principal_is_the_identity_not_the_session(user_arn: str, principal: str) -> None:
    caller = from_event(event_signed(userArn=user_arn))
    assert caller is not None and (caller.principal, caller.arn) == (principal, user_arn)
    assert normalize(user_arn) == principal


def test_two_sessions_of_one_role_are_one_principal_and_two_roles_are_two() -> None:
    one = from_event(event_signed(userArn="arn:aws:sts::123456789012:assumed-role/relay/pod-a"))
    two = from_event(event_signed(userArn="arn:aws:sts::123456789012:assumed-role/relay/pod-b"))
    other = from_event(event_signed(userArn="arn:aws:sts::123456789012:assumed-role/relay-2/pod-a"))
    assert one and two and other
    assert one.principal == two.principal != other.principal


def test_cognito_identities_of_one_pool_role_are_told_apart() -> None:
    role = "arn:aws:sts::123456789012:assumed-role/Cognito_PoolAuth_Role/CognitoIdentityCredentials"
    first = from_event(event_signed(userArn=role, cognitoIdentity={"identityId": "us-east-1:aaaa", "amr": []}))
    second = from_event(event_signed(userArn=role, cognitoIdentity={"identityId": "us-east-1:bbbb", "amr": []}))
    assert first and second and first.principal != second.principal
    assert first.principal == "arn:aws:sts::123456789012:assumed-role/Cognito_PoolAuth_Role#cognito:us-east-1:aaaa"


def test_an_event_without_an_iam_signer_names_no_caller() -> None:
    event = http_api_event("GET", "/healthz")
    del event["requestContext"]["authorizer"]
    assert from_event(event) is None
    assert from_event({"requestContext": {"authorizer": "not a map"}}) is None
    assert from_event({}) is None and from_event(None) is None
    assert from_event(event_signed(userArn=None, callerId=None, userId=None)) is None


def test_without_a_user_arn_the_account_and_caller_id_stand_in() -> None:
    caller = from_event(event_signed(userArn=None, callerId="AROAEXAMPLE:session-9"))
    assert caller is not None and caller.principal == "iam:123456789012:AROAEXAMPLE"


def test_a_header_cannot_name_the_caller() -> None:
    """Only API Gateway's requestContext counts: a client's headers are not read."""
    event = http_api_event("GET", "/healthz")
    event["headers"]["x-amzn-principal"] = "arn:aws:sts::123456789012:assumed-role/victim/s"
    caller = from_event(event)
    assert caller is not None and "victim" not in caller.principal
