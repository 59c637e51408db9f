"""What the API answered, as the gRPC status a Flyte executor understands.

The service answers errors in the Connect protocol: an HTTP status and a JSON body
``{"code": "not_found", "message": "..."}``. API Gateway answers its own errors (a bad signature,
throttling, a crashed or timed-out function) as ``{"message": "Forbidden"}`` and an HTTP status,
with no Connect code. Both become a :class:`RelayError` carrying the gRPC status code the
executor acts on: it retries ``UNAVAILABLE``, so everything that is worth retrying (a refused
connection, throttling, a 5xx without a Connect code) is mapped to it. Such an error also carries
the reason the relay itself sends the call again (:mod:`.retry`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping

import grpc

from .retry import retry_reason

__all__ = ["RelayError", "error_from_response", "grpc_code_for_connect", "grpc_code_for_http_status"]

# Connect's codes are gRPC's, spelled in lower snake case; Connect spells CANCELLED "canceled".
_CONNECT_CODES: dict[str, grpc.StatusCode] = {
    code.name.lower(): code for code in grpc.StatusCode if code is not grpc.StatusCode.OK
}
_CONNECT_CODES["canceled"] = grpc.StatusCode.CANCELLED

# An HTTP status with no Connect code in the body: the Connect protocol's table, plus what API
# Gateway answers by itself (413 payload too large, 408 and 504 timeouts).
_HTTP_STATUSES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INTERNAL,  # the relay built a request the server could not read
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,  # API Gateway: no, bad or expired SigV4 signature, or no execute-api:Invoke
    404: grpc.StatusCode.UNIMPLEMENTED,  # no such route
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.UNAVAILABLE,  # API Gateway or Lambda throttling: the executor retries
}


class RelayError(Exception):
    """A failed forwarded call: the gRPC status to answer and its details; ``retry_reason`` says
    why sending the call again may succeed (None: it would not)."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_reason = retry_reason

    def __repr__(self) -> str:
        return f"RelayError({self.code.name}, {self.message!r})"


def grpc_code_for_connect(code: str) -> grpc.StatusCode:
    """The gRPC status code of a Connect error code (``"not_found"`` -> NOT_FOUND); UNKNOWN if unknown."""
    return _CONNECT_CODES.get(code.strip().lower(), grpc.StatusCode.UNKNOWN)


def grpc_code_for_http_status(status: int) -> grpc.StatusCode:
    """The gRPC status code of an HTTP error status that carries no Connect code."""
    if status in _HTTP_STATUSES:
        return _HTTP_STATUSES[status]
    if status >= 500:  # API Gateway's 500/502/503/504: the function crashed, timed out or was not reachable
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.UNKNOWN


def error_from_response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> RelayError:
    """The error an HTTP error response stands for: its Connect code when the body has one, else
    its HTTP status; the message names API Gateway's request id when there is one."""
    payload: object = None
    with contextlib.suppress(ValueError):
        payload = json.loads(body) if body else None
    request_id = (headers or {}).get("apigw-requestid")
    if isinstance(payload, dict) and isinstance(payload.get("code"), str):
        message = payload.get("message")
        return RelayError(
            grpc_code_for_connect(payload["code"]),
            message if isinstance(message, str) else payload["code"],
            retry_reason(status, payload["code"]),
        )
    code = grpc_code_for_http_status(status)
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        said = payload["message"]
    else:
        said = body[:200].decode("utf-8", "replace").strip() or "no body"
    message = f"the API answered HTTP {status}: {said}"
    if code is grpc.StatusCode.PERMISSION_DENIED:
        message += " (is the request signed for the API's region, by a role allowed execute-api:Invoke?)"
    if request_id:
        message += f" [apigw-requestid {request_id}]"
    return RelayError(code, message, retry_reason(status, None))
