"""The errors every operation answers with: Connect codes, whatever the transport.

The service core raises :class:`ConnectError` with one of these codes; the Connect transport
sends it as is, the REST transport maps it to an HTTP status. Anything else that escapes an
operation is a bug and is answered as ``internal`` with the stack trace kept in the logs.
"""

from __future__ import annotations

from collections.abc import Callable

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
    "permission_denied",
    "resource_exhausted",
    "unavailable",
    "unimplemented",
]


def _error(code: Code) -> Callable[[str], ConnectError]:
    def error(message: str) -> ConnectError:
        return ConnectError(code, message)

    error.__name__ = error.__qualname__ = code.value
    error.__doc__ = f"A ConnectError with code {code.value}."
    return error


invalid_argument = _error(Code.INVALID_ARGUMENT)
not_found = _error(Code.NOT_FOUND)
failed_precondition = _error(Code.FAILED_PRECONDITION)
permission_denied = _error(Code.PERMISSION_DENIED)
unavailable = _error(Code.UNAVAILABLE)
deadline_exceeded = _error(Code.DEADLINE_EXCEEDED)
resource_exhausted = _error(Code.RESOURCE_EXHAUSTED)
unimplemented = _error(Code.UNIMPLEMENTED)
internal = _error(Code.INTERNAL)
