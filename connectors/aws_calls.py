"""How this service calls AWS: its clients' botocore config, the region, and an AWS failure as a
Connect error by kind.

Shared by the AWS connectors (:mod:`connectors.builtin.aws.base`, which builds their clients on
it and offers these names to them) and the task roles' STS client (:mod:`connectors.task_roles`),
so that neither has to import the other's module to reach them.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from .errors import Code, ConnectError

__all__ = ["aws_error", "client_config", "error_code", "forget_profile_region", "region"]

# Botocore's own retries stay within a connector call's deadline (CONNECTOR_TIMEOUT_SECONDS, 8 s by
# default): "standard" mode retries throttling and transient errors with jittered back-off.
_RETRY_ATTEMPTS_ENV = "AWS_CONNECTOR_MAX_ATTEMPTS"


def client_config() -> Any:
    """The botocore config of every AWS client the service builds: retries and timeouts within a
    connector call's deadline."""
    from botocore.config import Config

    timeout = float(os.environ.get("CONNECTOR_TIMEOUT_SECONDS", "") or 8.0)
    attempts = int(os.environ.get(_RETRY_ATTEMPTS_ENV, "") or 3)
    return Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=min(3.0, timeout),
        read_timeout=timeout,
        user_agent_extra="flyte-aws-connectors",
    )


def region() -> str:
    """The region the clients call and the console links name: ``AWS_REGION`` (the Lambda's own),
    else ``AWS_DEFAULT_REGION``, else the profile's, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or _profile_region() or "us-east-1"


@functools.cache
def _profile_region() -> str | None:
    """The profile's region, read once per process: region() names one in every console link of
    every answer, and a boto3 Session reads the config files."""
    import boto3

    return boto3.session.Session().region_name


def forget_profile_region() -> None:
    """Read the profile's region again on next use (after a SnapStart restore)."""
    _profile_region.cache_clear()


# -- errors ------------------------------------------------------------------------------------

_VALIDATION = re.compile(
    r"Validation|Invalid|Malformed|MissingParameter|MissingRequired|ClientException|"
    r"SerializationException|UnsupportedOperation|IncompatibleVersion"
)
_DENIED = re.compile(
    r"AccessDenied|Unauthorized|NotAuthorized|Forbidden|UnrecognizedClient|InvalidClientTokenId|"
    r"ExpiredToken|SignatureDoesNotMatch|MissingAuthenticationToken|InvalidSignature"
)
_THROTTLED = re.compile(
    r"Throttl|TooManyRequests|RequestLimitExceeded|LimitExceeded|SlowDown|QuotaExceeded|"
    r"ProvisionedThroughputExceeded|RequestThrottled|ResourceLimitExceeded|Capacity|ConcurrentRuns|"
    r"ActiveStatementsExceeded|ActiveSessionsExceeded"
)
# A call that timed out on AWS's side may still have taken effect: its outcome is unknown.
_TIMED_OUT = re.compile(r"OperationTimeout|RequestTimeout")
_NOT_FOUND = re.compile(r"NotFound|DoesNotExist|NoSuch|UnknownResource")
_CONFLICT = re.compile(
    r"Conflict|AlreadyExists|ResourceInUse|IdempotentParameterMismatch|ConcurrentModification|"
    r"IllegalState|InvalidState"
)


def aws_error(error: BaseException, what: str) -> ConnectError:
    """A Connect error for an AWS failure, by kind, with AWS's own code and message.

    ``what`` names the call (``athena StartQueryExecution``). Order matters: a code such as
    ``InvalidClientTokenId`` is a credentials problem before it is a validation one.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    if isinstance(error, ConnectError):
        return error
    if isinstance(error, ClientError):
        body = error.response.get("Error", {})
        code = str(body.get("Code", "") or "")
        message = str(body.get("Message", "") or error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        mapped = ConnectError(
            _code_of_kind(code, status), f"{what}: {code}: {message}" if code else f"{what}: {message}"
        )
        mapped.aws_code = code  # type: ignore[attr-defined]  # for a connector that tells one refusal from another
        return mapped
    if isinstance(error, ParamValidationError):
        return ConnectError(Code.INVALID_ARGUMENT, f"{what}: {error}")
    if isinstance(error, NoCredentialsError):
        return ConnectError(Code.UNAUTHENTICATED, f"{what}: no AWS credentials: {error}")
    if isinstance(error, (BotoConnectionError, ReadTimeoutError)):
        return ConnectError(Code.UNAVAILABLE, f"{what}: AWS did not answer: {error}")
    if isinstance(error, BotoCoreError):
        return ConnectError(Code.UNAVAILABLE, f"{what}: {error}")
    raise error  # not an AWS failure: the service's call wrapper reports it as internal


def _code_of_kind(code: str, status: int) -> Code:
    """The Connect code for an AWS error code and HTTP status, by kind (see :func:`aws_error`)."""
    if _DENIED.search(code) or status == 403:
        return Code.PERMISSION_DENIED
    if _THROTTLED.search(code) or status == 429:
        return Code.RESOURCE_EXHAUSTED
    if _CONFLICT.search(code) or status == 409:
        return Code.FAILED_PRECONDITION
    if _NOT_FOUND.search(code) or status == 404:
        return Code.NOT_FOUND
    if _TIMED_OUT.search(code):
        return Code.UNAVAILABLE
    if status >= 500 or "InternalServer" in code or "ServiceUnavailable" in code or "InternalFailure" in code:
        return Code.UNAVAILABLE
    if _VALIDATION.search(code) or status == 400:
        return Code.INVALID_ARGUMENT
    return Code.FAILED_PRECONDITION


def error_code(error: BaseException) -> str:
    """AWS's error code of a ClientError, or of the Connect error :func:`aws_error` made of one
    (``""`` for anything else)."""
    if isinstance(getattr(error, "aws_code", None), str):
        return error.aws_code  # type: ignore[attr-defined]
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
