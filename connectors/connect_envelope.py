"""Connect streaming envelopes: ``flags (1 byte) | length (4 bytes, big endian) | message``.

Flag 0x01 marks a compressed message, 0x02 the end-of-stream message (JSON, with the stream's
error if it failed). The reader takes the body in whatever chunks HTTP delivers. Used by the
relay, the event builder, `connectors invoke`, the benchmarks and the tests: the one place that
writes and reads the format. Standard library only, so any of them can import it cheaply.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["COMPRESSED", "END_STREAM", "EnvelopeError", "EnvelopeReader", "encode", "end_stream_error", "read_all"]

COMPRESSED = 0x01
END_STREAM = 0x02
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # API Gateway and Lambda answer at most 6 MB anyway


class EnvelopeError(ValueError):
    """The response is not a well-formed Connect stream."""


def encode(message: bytes, flags: int = 0) -> bytes:
    return bytes([flags]) + len(message).to_bytes(4, "big") + message


class EnvelopeReader:
    """Feed body chunks, get complete ``(flags, message)`` pairs, decompressed."""

    def __init__(self, encoding: str = "identity") -> None:
        if encoding not in ("identity", "gzip"):
            raise EnvelopeError(f"the stream is compressed with {encoding!r}, which the relay does not read")
        self._encoding = encoding
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        self._buffer += chunk
        while len(self._buffer) >= 5:
            flags, length = self._buffer[0], int.from_bytes(self._buffer[1:5], "big")
            if length > MAX_MESSAGE_BYTES:
                raise EnvelopeError(f"a stream message of {length} bytes is over the relay's limit")
            if len(self._buffer) < 5 + length:
                return
            message = bytes(self._buffer[5 : 5 + length])
            del self._buffer[: 5 + length]
            if flags & COMPRESSED:
                message = self._decompress(message)
            yield flags, message

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole message yet."""
        return len(self._buffer)

    def _decompress(self, message: bytes) -> bytes:
        if self._encoding == "identity":
            raise EnvelopeError("a stream message is flagged compressed but the stream names no compression")
        try:
            return gzip.decompress(message)
        except (OSError, EOFError, zlib.error) as error:
            raise EnvelopeError(f"a stream message does not inflate: {error}") from None


def read_all(body: bytes, encoding: str = "identity") -> list[tuple[int, bytes]]:
    """Every ``(flags, message)`` of a whole stream body; EnvelopeError if it ends mid-message."""
    reader = EnvelopeReader(encoding)
    messages = list(reader.feed(body))
    if reader.pending:
        raise EnvelopeError(f"the stream ends {reader.pending} bytes into a message")
    return messages


def end_stream_error(message: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an end-of-stream message (``{"code", "message"}``), or None on success."""
    try:
        payload = json.loads(message) if message else {}
    except ValueError:
        raise EnvelopeError("the end-of-stream message is not JSON") from None
    if not isinstance(payload, dict):
        raise EnvelopeError("the end-of-stream message is not a JSON object")
    error = payload.get("error")
    if error is None:
        return None
    if not isinstance(error, dict):
        raise EnvelopeError("the end-of-stream error is not a JSON object")
    return error
