"""Who is calling: the IAM principal API Gateway verified, as this request's context.

Every route of the HTTP API requires IAM (SigV4) auth, and API Gateway puts the signer in the
event's ``requestContext.authorizer.iam`` (``userArn``, ``accountId``, ``callerId``,
``cognitoIdentity``...). The transport reads it there (never from a header a client could set)
into :data:`current` for the rest of the request. Without an API Gateway event (``connectors
serve``, a test's loopback server) there is no caller principal: :func:`principal` is ``""``.

A task's record keeps the principal that created it, and only that principal may read it, delete
it or start a newer attempt of its action (docs/security.md). The principal compared is the
*identity*, not the credentials' session:

- an assumed role, ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, is compared as
  ``arn:aws:sts::ACCOUNT:assumed-role/ROLE``: the session name changes with every set of
  credentials (an IRSA pod's ``botocore-session-…``, a relay restarted, two relays of one executor
  rollout), the role is who the caller is;
- a Cognito identity's credentials are an assumed role shared by every identity of its pool: the
  identity id is kept beside the role (``…/ROLE#cognito:IDENTITY_ID``);
- an IAM user, the account root and a federated user are their ARN as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import permission_denied

_ASSUMED_ROLE = re.compile(r"^(arn:[^:]+:sts::[^:]*:assumed-role/[^/]+)/.+$")


@dataclass(frozen=True)
class Caller:
    """The signer of one request: ``principal`` is what a record keeps and is compared;
    ``arn`` is API Gateway's ``userArn`` as given (with the session name), for the logs."""

    principal: str
    arn: str


# This request's caller: set by the transport for each request (an asyncio task of its own).
current: ContextVar[Caller | None] = ContextVar("caller", default=None)


def principal() -> str:
    """This request's principal, ``""`` when the request came without one."""
    caller = current.get()
    return caller.principal if caller is not None else ""


class Owned(Protocol):
    """A task's record, or what a read of an action's attempts tells of one (connectors/store/)."""

    @property
    def principal(self) -> str | None: ...

    @property
    def attempt(self) -> int: ...


def check_principal(record: Owned, principal: str) -> None:
    """``permission_denied`` unless ``principal`` created ``record``. A record written before
    principals were kept (None) is open to any caller."""
    if record.principal is not None and record.principal != principal:
        raise permission_denied(
            f"attempt {record.attempt} of this action was created by another principal: "
            "only the principal that created a task may read it, delete it or start a newer attempt of it"
        )


def normalize(user_arn: str, cognito_identity_id: str = "") -> str:
    """The identity of ``user_arn``: an assumed-role ARN without its session name; a Cognito
    identity's id appended to its pool's role."""
    match = _ASSUMED_ROLE.match(user_arn)
    identity = match.group(1) if match else user_arn
    return f"{identity}#cognito:{cognito_identity_id}" if cognito_identity_id else identity


def from_event(event: Mapping[str, Any] | None) -> Caller | None:
    """The caller an API Gateway HTTP API (payload 2.0) event names, or None when it names none
    (a route without IAM auth, an event that is not API Gateway's)."""
    context = (event or {}).get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    if not isinstance(iam, Mapping):
        return None
    arn = _text(iam.get("userArn"))
    if not arn:
        # Not seen from API Gateway's IAM authorizer, which always names the signer's ARN: the
        # account and the caller id (a role's id without its session) stand in for it.
        caller_id = _text(iam.get("callerId")) or _text(iam.get("userId"))
        if not caller_id:
            return None
        account = _text(iam.get("accountId"))
        return Caller(principal=f"iam:{account}:{caller_id.split(':')[0]}", arn=f"iam:{account}:{caller_id}")
    cognito = iam.get("cognitoIdentity")
    identity_id = _text(cognito.get("identityId")) if isinstance(cognito, Mapping) else ""
    return Caller(principal=normalize(arn, identity_id), arn=arn)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


__all__ = ["Caller", "Owned", "check_principal", "current", "from_event", "normalize", "principal"]
