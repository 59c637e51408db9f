"""The task handle: what CreateTask answers as ``resource_meta`` and GetTask/DeleteTask bring back.

A handle locates its record in one read and proves its holder was given it::

    b"t1" + base64url(action digest (16 bytes) + attempt (4 bytes, big-endian) + secret (16 bytes))

The action digest and attempt are the record's key; the secret is 128 random bits kept on the
record and compared in constant time, so a handle cannot be guessed or forged from a task
execution id. The ``t1`` prefix is the format version: a later format gets a new prefix and
old handles keep working.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import struct
from dataclasses import dataclass

from ..errors import invalid_argument

PREFIX_V1 = b"t1"
_DIGEST_BYTES = 16
_SECRET_BYTES = 16
_BODY = struct.Struct(f">{_DIGEST_BYTES}sI{_SECRET_BYTES}s")
_ENCODED_BODY_LENGTH = len(base64.urlsafe_b64encode(b"\0" * _BODY.size).rstrip(b"="))


def new_secret() -> bytes:
    return secrets.token_bytes(_SECRET_BYTES)


@dataclass(frozen=True)
class TaskHandle:
    action_digest: bytes
    attempt: int
    secret: bytes

    @property
    def action_id(self) -> str:
        """The record's partition key."""
        return self.action_digest.hex()

    def encode(self) -> bytes:
        body = _BODY.pack(self.action_digest, self.attempt, self.secret)
        return PREFIX_V1 + base64.urlsafe_b64encode(body).rstrip(b"=")

    def matches(self, secret: bytes) -> bool:
        return hmac.compare_digest(self.secret, secret)

    @classmethod
    def decode(cls, data: bytes) -> TaskHandle:
        """Parse a handle; ``invalid_argument`` for anything that is not one."""
        if not data:
            raise invalid_argument("resource_meta is empty: pass the value CreateTask answered")
        if not data.startswith(PREFIX_V1):
            raise invalid_argument("resource_meta is not a task handle issued by this service")
        encoded = data[len(PREFIX_V1) :]
        if len(encoded) != _ENCODED_BODY_LENGTH:
            raise invalid_argument("resource_meta is not a task handle issued by this service (bad length)")
        try:
            body = base64.b64decode(encoded + b"=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument("resource_meta is not a task handle issued by this service (bad encoding)") from None
        if len(body) != _BODY.size:
            raise invalid_argument("resource_meta is not a task handle issued by this service (bad length)")
        digest, attempt, secret = _BODY.unpack(body)
        return cls(digest, attempt, secret)
