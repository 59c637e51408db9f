"""Where connectrpc 0.10 answers a client's mistake as a server error, answer it as the client's.

- A body that does not decode is ``invalid_argument``, not ``unknown``.
- A gzip body that is not gzip is ``invalid_argument``; one that inflates past the size limit
  stops there with ``resource_exhausted`` (no zip bombs), instead of being inflated whole first.
- A streaming message flagged compressed with no known compression is ``invalid_argument`` (or
  ``unimplemented`` for an unknown one), not ``internal``.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from connectrpc.codec import Codec, proto_binary_codec, proto_json_codec

from ..connect_envelope import COMPRESSED
from ..errors import Code, ConnectError, invalid_argument, resource_exhausted

__all__ = ["BoundedGzip", "StreamEnvelopeCheck", "strict_codecs"]


class StrictCodec:
    """A codec whose decode failures are the caller's fault: ``invalid_argument``."""

    def __init__(self, inner: Codec) -> None:
        self._inner = inner

    def name(self) -> str:
        return self._inner.name()

    def encode(self, message: Any) -> bytes:
        return self._inner.encode(message)

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            return self._inner.decode(data, message)
        except Exception as error:
            kind = message.DESCRIPTOR.name if hasattr(message, "DESCRIPTOR") else "message"
            raise invalid_argument(f"malformed {kind} ({self.name()}): {error}") from None


class BoundedGzip:
    """gzip whose decompression stops at the size limit (no zip bombs) and whose bad input is
    ``invalid_argument`` (connectrpc 0.10 lets gzip's own exceptions out as ``unknown``)."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes

    def name(self) -> str:
        return "gzip"

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return gzip.compress(data)

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        out, rest = bytearray(), bytes(data)
        try:
            while rest:  # one or more gzip members
                member = zlib.decompressobj(wbits=31)
                out += member.decompress(rest, self._max + 1 - len(out))
                if len(out) > self._max or member.unconsumed_tail:
                    raise resource_exhausted(f"the decompressed message is over the limit of {self._max} bytes")
                if not member.eof:
                    raise invalid_argument("malformed gzip body: it ends before its gzip stream does")
                rest = member.unused_data
        except zlib.error as error:
            raise invalid_argument(f"malformed gzip body: {error}") from None
        return bytes(out)


class StreamEnvelopeCheck:
    """A streaming request whose message is flagged compressed without a compression the server
    knows is the client's error (connectrpc 0.10 answers ``internal``): ``invalid_argument``, or
    ``unimplemented`` when it names an unknown compression. Checks the envelope prefixes as the
    body arrives, without buffering it."""

    def __init__(self, app: Any, compressions: set[str]) -> None:
        self._app = app
        self._compressions = compressions

    @property
    def path(self) -> str:
        return self._app.path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", ())) if scope["type"] == "http" else {}
        if not headers.get(b"content-type", b"").startswith(b"application/connect+"):
            return await self._app(scope, receive, send)
        encoding = headers.get(b"connect-content-encoding", b"identity").decode("latin-1")
        if encoding != "identity" and encoding in self._compressions:
            return await self._app(scope, receive, send)
        pending, skip = bytearray(), 0

        async def checked_receive() -> Any:
            nonlocal pending, skip
            message = await receive()
            if message["type"] == "http.request":
                pending += message.get("body", b"")
                while True:
                    dropped = min(skip, len(pending))
                    del pending[:dropped]
                    skip -= dropped
                    if skip or len(pending) < 5:
                        break
                    if pending[0] & COMPRESSED:
                        if encoding == "identity":
                            raise invalid_argument(
                                "a message is flagged compressed but connect-content-encoding names none"
                            )
                        raise ConnectError(
                            Code.UNIMPLEMENTED,
                            f"unknown compression: {encoding!r}: supported encodings "
                            f"are {', '.join(sorted(self._compressions))}",
                        )
                    skip = 5 + int.from_bytes(pending[1:5], "big")
            return message

        await self._app(scope, checked_receive, send)


def strict_codecs() -> dict[str, Any]:
    codecs = [StrictCodec(proto_binary_codec()), StrictCodec(proto_json_codec())]
    return {codec.name(): codec for codec in codecs}
