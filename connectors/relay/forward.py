"""The HTTP side of the relay: one gRPC call becomes one Connect request to the API.

Unary calls are ``POST <endpoint>/<service>/<Method>`` with a binary proto body
(``application/proto``); GetTaskLogs, a server stream, is the same with one enveloped message
(``application/connect+proto``) and an enveloped answer. Every request carries the remaining
time of the incoming gRPC call as its ``connect-timeout-ms`` and is abandoned when that time is
up. Failures come back as :class:`RelayError` with the gRPC status to answer.

All the service's operations are idempotent (a repeated CreateTask finds the same task by its
task execution id), so a request that failed before any answer came back (a refused connection,
a keep-alive connection the far end had just closed) is sent once more while time remains.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import AsyncIterator, Type, TypeVar
from urllib.parse import urlsplit

import grpc
import httpx
from google.protobuf.message import DecodeError, Message

from ..connect_envelope import END_STREAM, EnvelopeError, EnvelopeReader, encode, end_stream_error
from .errors import RelayError, error_from_response, grpc_code_for_connect
from .signing import Signer

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Forwarder", "check_endpoint"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

# A call without a gRPC deadline gets API Gateway's own limit: an HTTP API integration answers
# within 30 s or not at all.
DEFAULT_TIMEOUT_SECONDS = 30.0
USER_AGENT = "flyte-connectors-relay/0.1"


def check_endpoint(endpoint: str, *, signed: bool) -> str:
    """``endpoint`` if it is an http(s) URL with a host (and no query), else ValueError.

    ``signed`` requests need an https one: over plain http the signature and the session token
    would travel in clear, for anyone on the path to replay (API Gateway accepts a signature for
    about 5 minutes)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"the endpoint must be the API's http(s) URL, like "
                         f"https://<api-id>.execute-api.<region>.amazonaws.com, not {endpoint!r}")
    if signed and parts.scheme != "https":
        raise ValueError(f"will not sign requests to {endpoint}: over plain http the SigV4 signature and the session "
                         f"token would travel in clear, and anyone who saw them could replay the requests. Use the "
                         f"API's https URL (https://<api-id>.execute-api.<region>.amazonaws.com), or --unsigned for "
                         f"a local endpoint that needs no signature, such as `make serve`")
    return endpoint


class Forwarder:
    """Forwards calls to ``endpoint`` over one pooled httpx client (HTTP/1.1 keep-alive).

    ``signer`` None sends requests unsigned (a local endpoint such as ``connectors serve``); with
    a signer the endpoint must be https (ValueError otherwise). ``ssl_context`` verifies the API's
    certificate (default: httpx's, certifi's CAs or ``SSL_CERT_FILE``). Create it inside the event
    loop that will use it; close it with ``aclose()``.
    """

    def __init__(
        self,
        endpoint: str,
        signer: Signer | None,
        *,
        max_connections: int = 200,
        default_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.endpoint = check_endpoint(endpoint, signed=signer is not None).rstrip("/")
        self.signer = signer
        self.default_timeout = default_timeout
        self._client = httpx.AsyncClient(
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=30.0),
            follow_redirects=False,
            transport=transport,
            verify=True if ssl_context is None else ssl_context,
        )

    async def __aenter__(self) -> "Forwarder":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _deadline(self, timeout: float | None) -> float:
        seconds = self.default_timeout if timeout is None else min(timeout, self.default_timeout)
        if seconds <= 0:
            raise RelayError(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline had passed when the relay got it")
        return asyncio.get_running_loop().time() + seconds

    async def _send(self, procedure: str, content_type: str, body: bytes, deadline: float, stream: bool) -> httpx.Response:
        """Sign and send, once more after a failure that got no answer; the response's status is
        not checked yet. Raises RelayError when time is up or the API cannot be reached."""
        loop = asyncio.get_running_loop()
        url = self.endpoint + procedure
        for attempt in (1, 2):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RelayError(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before the API answered")
            headers = {
                "content-type": content_type,
                "connect-protocol-version": "1",
                "connect-timeout-ms": str(max(1, int(remaining * 1000))),
            }
            try:
                async with asyncio.timeout_at(deadline):
                    if self.signer is not None:
                        headers = await self._signed(url, headers, body)
                    request = self._client.build_request("POST", url, content=body, headers=headers,
                                                         timeout=httpx.Timeout(remaining))
                    return await self._client.send(request, stream=stream)
            except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout):
                raise RelayError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                 f"the API did not answer within the call's deadline ({remaining:.3g} s)") from None
            except httpx.TimeoutException as error:  # connect or pool timeout: the request never left
                raise RelayError(grpc.StatusCode.UNAVAILABLE,
                                 f"the relay could not reach {self.endpoint}: {type(error).__name__}") from None
            except httpx.TransportError as error:
                if attempt == 1:
                    logger.info("%s: %s from %s, sending once more", procedure, type(error).__name__, self.endpoint)
                    continue
                raise RelayError(grpc.StatusCode.UNAVAILABLE,
                                 f"the relay could not reach {self.endpoint}: {type(error).__name__}: {error}") from None
        raise AssertionError("unreachable")

    async def _signed(self, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        assert self.signer is not None
        try:
            return await self.signer.sign("POST", url, headers, body)
        except Exception as error:  # a credential refresh that failed (STS unreachable, token file missing)
            logger.warning("could not sign a request: %s", error)
            raise RelayError(grpc.StatusCode.UNAVAILABLE, f"the relay could not sign the request: {error}") from None

    async def unary(self, procedure: str, request: Message, response_type: Type[M], timeout: float | None) -> M:
        """One unary call: ``procedure`` is ``/<package.Service>/<Method>``; ``timeout`` the
        remaining seconds of the incoming call (None: no deadline)."""
        deadline = self._deadline(timeout)
        response = await self._send(procedure, "application/proto", request.SerializeToString(), deadline, stream=False)
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.content, response.headers)
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("application/proto"):
            raise RelayError(grpc.StatusCode.INTERNAL, f"the API answered {content_type or 'no content type'}, "
                                                       "not application/proto")
        try:
            return response_type.FromString(response.content)
        except DecodeError as error:
            raise RelayError(grpc.StatusCode.INTERNAL, f"the API answered a malformed "
                                                       f"{response_type.DESCRIPTOR.name}: {error}") from None

    async def server_stream(self, procedure: str, request: Message, response_type: Type[M],
                            timeout: float | None) -> AsyncIterator[M]:
        """A server-streaming call: yields each message as it arrives. Close the generator
        (``contextlib.aclosing``) to abandon the stream early."""
        deadline = self._deadline(timeout)
        body = encode(request.SerializeToString())
        response = await self._send(procedure, "application/connect+proto", body, deadline, stream=True)
        try:
            if response.status_code != 200:
                async with asyncio.timeout_at(deadline):
                    content = await response.aread()
                raise error_from_response(response.status_code, content, response.headers)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("application/connect+proto"):
                raise RelayError(grpc.StatusCode.INTERNAL, f"the API answered {content_type or 'no content type'}, "
                                                           "not application/connect+proto")
            reader = EnvelopeReader(response.headers.get("connect-content-encoding", "identity"))
            chunks = response.aiter_bytes()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks, None)
                except TimeoutError:
                    raise RelayError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                     "the API's stream did not end within the call's deadline") from None
                except httpx.TransportError as error:
                    raise RelayError(grpc.StatusCode.UNAVAILABLE, f"the API's stream broke: {type(error).__name__}: "
                                                                  f"{error}") from None
                if chunk is None:
                    raise RelayError(grpc.StatusCode.UNAVAILABLE, "the API's stream ended without its "
                                                                  "end-of-stream message")
                for flags, message in reader.feed(chunk):
                    if flags & END_STREAM:
                        error = end_stream_error(message)
                        if error is not None:
                            said = error.get("message")
                            raise RelayError(grpc_code_for_connect(str(error.get("code", "unknown"))),
                                             said if isinstance(said, str) else "the stream failed")
                        return
                    try:
                        parsed = response_type.FromString(message)
                    except DecodeError as error:
                        raise RelayError(grpc.StatusCode.INTERNAL, f"the API streamed a malformed "
                                                                   f"{response_type.DESCRIPTOR.name}: {error}") from None
                    yield parsed
        except EnvelopeError as error:
            raise RelayError(grpc.StatusCode.INTERNAL, f"the API's stream is malformed: {error}") from None
        finally:
            await response.aclose()
