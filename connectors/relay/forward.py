"""The HTTP side of the relay: one gRPC call becomes one Connect request to the API.

Unary calls are ``POST <endpoint>/<service>/<Method>`` with a binary proto body
(``application/proto``); GetTaskLogs, a server stream, is the same with one enveloped message
(``application/connect+proto``) and an enveloped answer. Every request carries the remaining
time of the incoming gRPC call as its ``connect-timeout-ms`` and is abandoned when that time is
up. Failures come back as :class:`RelayError` with the gRPC status to answer.

All the service's operations are idempotent (a repeated CreateTask finds the same task by its
task execution id), so a call that failed in a way worth retrying (no answer, throttling, an
``unavailable`` service, a 5xx from API Gateway: :mod:`.retry`) is sent again, after a jittered
backoff, while its attempts and its deadline last. A GetTaskLogs stream is sent again only
before its first message: after that the executor has seen part of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncGenerator
from typing import TypeVar
from urllib.parse import urlsplit

import grpc
import httpx
from google.protobuf.message import DecodeError, Message

from ..connect_envelope import END_STREAM, EnvelopeError, EnvelopeReader, encode, end_stream_error
from .errors import RelayError, error_from_response, grpc_code_for_connect
from .metrics import RelayMetrics, operation_of
from .retry import RetryPolicy, retry_reason
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
        raise ValueError(
            f"the endpoint must be the API's http(s) URL, like "
            f"https://<api-id>.execute-api.<region>.amazonaws.com, not {endpoint!r}"
        )
    if signed and parts.scheme != "https":
        raise ValueError(
            f"will not sign requests to {endpoint}: over plain http the SigV4 signature and the session "
            f"token would travel in clear, and anyone who saw them could replay the requests. Use the "
            f"API's https URL (https://<api-id>.execute-api.<region>.amazonaws.com), or --unsigned for "
            f"a local endpoint that needs no signature, such as `make serve`"
        )
    return endpoint


class Forwarder:
    """Forwards calls to ``endpoint`` over one pooled httpx client (HTTP/1.1 keep-alive).

    ``signer`` None sends requests unsigned (a local endpoint such as ``connectors serve``); with
    a signer the endpoint must be https (ValueError otherwise). ``ssl_context`` verifies the API's
    certificate (default: httpx's, certifi's CAs or ``SSL_CERT_FILE``). ``retry`` says when a
    failed call is sent again (default: :class:`RetryPolicy`'s); ``metrics`` counts those retries.
    Create it inside the event loop that will use it; close it with ``aclose()``.
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
        retry: RetryPolicy | None = None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self.endpoint = check_endpoint(endpoint, signed=signer is not None).rstrip("/")
        self.signer = signer
        self.default_timeout = default_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.metrics = metrics
        self._client = httpx.AsyncClient(
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=30.0
            ),
            follow_redirects=False,
            transport=transport,
            verify=True if ssl_context is None else ssl_context,
        )

    async def __aenter__(self) -> Forwarder:
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

    async def _send(
        self, procedure: str, content_type: str, body: bytes, deadline: float, stream: bool
    ) -> httpx.Response:
        """Sign and send once; the response's status is not checked yet. Raises RelayError when
        time is up or no answer came (retry reason "no_answer")."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise RelayError(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before the API answered")
        url = self.endpoint + procedure
        headers = {
            "content-type": content_type,
            "connect-protocol-version": "1",
            "connect-timeout-ms": str(max(1, int(remaining * 1000))),
        }
        try:
            async with asyncio.timeout_at(deadline):
                if self.signer is not None:
                    headers = await self._signed(self.signer, url, headers, body)
                request = self._client.build_request(
                    "POST", url, content=body, headers=headers, timeout=httpx.Timeout(remaining)
                )
                return await self._client.send(request, stream=stream)
        except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout):
            raise RelayError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the API did not answer within the call's deadline ({remaining:.3g} s)",
            ) from None
        except httpx.TransportError as error:  # refused, reset, a closed keep-alive connection, a connect timeout
            raise RelayError(
                grpc.StatusCode.UNAVAILABLE,
                f"the relay could not reach {self.endpoint}: {type(error).__name__}: {error}",
                "no_answer",
            ) from None

    async def _retry_or_raise(self, procedure: str, error: RelayError, attempt: int, deadline: float) -> None:
        """Wait before sending again a call whose attempt ``attempt`` failed with ``error``; raise
        ``error`` when it is not to be sent again (not retryable, no attempts or time left)."""
        reason = error.retry_reason
        if reason is None:
            raise error
        operation = operation_of(procedure)
        delay, limit = self.retry.next_delay(attempt, deadline - asyncio.get_running_loop().time())
        if delay is None:
            if self.metrics is not None:
                self.metrics.exhausted(operation, reason, limit)
            if self.retry.max_attempts > 1:
                logger.info("%s: %s after %d attempt(s), no more (%s limit)", procedure, reason, attempt, limit)
            raise error
        if self.metrics is not None:
            self.metrics.retried(operation, reason)
        logger.info(
            "%s: %s (%s), sending again in %.0f ms (attempt %d of %d)",
            procedure,
            reason,
            error.code.name,
            delay * 1000,
            attempt + 1,
            self.retry.max_attempts,
        )
        await asyncio.sleep(delay)

    async def _signed(self, signer: Signer, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        try:
            return await signer.sign("POST", url, headers, body)
        except Exception as error:  # a credential refresh that failed (STS unreachable, token file missing)
            logger.warning("could not sign a request: %s", error)
            raise RelayError(
                grpc.StatusCode.UNAVAILABLE, f"the relay could not sign the request: {error}", "signing"
            ) from None

    async def unary(
        self,
        procedure: str,
        request: Message,
        response_type: type[M],
        timeout: float | None,  # noqa: ASYNC109 - the incoming gRPC call's remaining time: every attempt's deadline
    ) -> M:
        """One unary call: ``procedure`` is ``/<package.Service>/<Method>``; ``timeout`` the
        remaining seconds of the incoming call (None: no deadline)."""
        deadline = self._deadline(timeout)
        body = request.SerializeToString()
        attempt = 1
        while True:
            try:
                return await self._unary_once(procedure, body, response_type, deadline)
            except RelayError as error:
                await self._retry_or_raise(procedure, error, attempt, deadline)
            attempt += 1

    async def _unary_once(self, procedure: str, body: bytes, response_type: type[M], deadline: float) -> M:
        response = await self._send(procedure, "application/proto", body, deadline, stream=False)
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.content, response.headers)
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("application/proto"):
            raise RelayError(
                grpc.StatusCode.INTERNAL, f"the API answered {content_type or 'no content type'}, not application/proto"
            )
        try:
            return response_type.FromString(response.content)
        except DecodeError as error:
            raise RelayError(
                grpc.StatusCode.INTERNAL, f"the API answered a malformed {response_type.DESCRIPTOR.name}: {error}"
            ) from None

    async def server_stream(
        self,
        procedure: str,
        request: Message,
        response_type: type[M],
        timeout: float | None,  # noqa: ASYNC109 - as unary's
    ) -> AsyncGenerator[M, None]:
        """A server-streaming call: yields each message as it arrives. Close the generator
        (``contextlib.aclosing``) to abandon the stream early."""
        deadline = self._deadline(timeout)
        body = encode(request.SerializeToString())
        attempt = 1
        while True:
            started = False
            try:
                async with contextlib.aclosing(self._stream_once(procedure, body, response_type, deadline)) as messages:
                    async for message in messages:
                        started = True
                        yield message
                return
            except RelayError as error:
                if started:  # the executor has part of the stream: an error now is its to handle
                    raise
                await self._retry_or_raise(procedure, error, attempt, deadline)
            attempt += 1

    async def _stream_once(
        self, procedure: str, body: bytes, response_type: type[M], deadline: float
    ) -> AsyncGenerator[M, None]:
        response = await self._send(procedure, "application/connect+proto", body, deadline, stream=True)
        try:
            if response.status_code != 200:
                async with asyncio.timeout_at(deadline):
                    content = await response.aread()
                raise error_from_response(response.status_code, content, response.headers)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("application/connect+proto"):
                raise RelayError(
                    grpc.StatusCode.INTERNAL,
                    f"the API answered {content_type or 'no content type'}, not application/connect+proto",
                )
            reader = EnvelopeReader(response.headers.get("connect-content-encoding", "identity"))
            chunks = response.aiter_bytes()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks, None)
                except TimeoutError:
                    raise RelayError(
                        grpc.StatusCode.DEADLINE_EXCEEDED, "the API's stream did not end within the call's deadline"
                    ) from None
                except httpx.TransportError as error:
                    raise RelayError(
                        grpc.StatusCode.UNAVAILABLE,
                        f"the API's stream broke: {type(error).__name__}: {error}",
                        "no_answer",
                    ) from None
                if chunk is None:
                    raise RelayError(
                        grpc.StatusCode.UNAVAILABLE,
                        "the API's stream ended without its end-of-stream message",
                        "no_answer",
                    )
                for flags, message in reader.feed(chunk):
                    if flags & END_STREAM:
                        failure = end_stream_error(message)
                        if failure is not None:
                            said, code = failure.get("message"), str(failure.get("code", "unknown"))
                            raise RelayError(
                                grpc_code_for_connect(code),
                                said if isinstance(said, str) else "the stream failed",
                                retry_reason(200, code),
                            )
                        return
                    try:
                        parsed = response_type.FromString(message)
                    except DecodeError as error:
                        raise RelayError(
                            grpc.StatusCode.INTERNAL,
                            f"the API streamed a malformed {response_type.DESCRIPTOR.name}: {error}",
                        ) from None
                    yield parsed
        except EnvelopeError as error:
            raise RelayError(grpc.StatusCode.INTERNAL, f"the API's stream is malformed: {error}") from None
        finally:
            await response.aclose()
