"""The errors every operation answers with: Connect codes, whatever the transport.

The service core raises :class:`ConnectError` with one of these codes; the Connect transport
sends it as is, the REST transport maps it to an HTTP status. Anything else that escapes an
operation is a bug and is answered as ``internal`` with the stack trace kept in the logs.
"""

from __future__ import annotations

from connectrpc.code import Code
from connectrpc.errors import ConnectError

__all__ = [
    "Code",
    "ConnectError",
    "deadline_exceeded",
    "failed_precondition",
    "internal",
    "invalid_argument",
    "not_found",
    "resource_exhausted",
    "unavailable",
    "unimplemented",
]


def invalid_argument(message: str) -> ConnectError:
    return ConnectError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ConnectError:
    return ConnectError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ConnectError:
    return ConnectError(Code.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ConnectError:
    return ConnectError(Code.UNAVAILABLE, message)


def deadline_exceeded(message: str) -> ConnectError:
    return ConnectError(Code.DEADLINE_EXCEEDED, message)


def resource_exhausted(message: str) -> ConnectError:
    return ConnectError(Code.RESOURCE_EXHAUSTED, message)


def unimplemented(message: str) -> ConnectError:
    return ConnectError(Code.UNIMPLEMENTED, message)


def internal(message: str) -> ConnectError:
    return ConnectError(Code.INTERNAL, message)
