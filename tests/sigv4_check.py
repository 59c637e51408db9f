"""An ASGI middleware that checks SigV4 signatures the way API Gateway's IAM authorizer does.

It recomputes the signature with botocore from what it received (method, path, query, the
headers the signature names, the body) and the credentials it knows, and compares it with the
Authorization header. A request that is unsigned, signed by an unknown key, for another region
or service, too old, or whose signature does not match gets API Gateway's answer:
``403 {"message":"Forbidden"}``. Accepted requests are passed on unchanged, body included.
"""

from __future__ import annotations

import datetime
import hmac
import json
import re
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
FORBIDDEN = json.dumps({"message": "Forbidden"}).encode()


class SigV4Check:
    """Wraps ``app``; ``accepted`` and ``rejected`` keep the headers of each request (and its
    ``:path``), for tests to look at."""

    def __init__(
        self,
        app: Any,
        *,
        access_key: str = "testing",
        secret_key: str = "testing",
        token: str | None = "testing",
        region: str = "us-east-1",
        service: str = "execute-api",
        max_skew_seconds: float = 300,
    ) -> None:
        self.app = app
        self.credentials = Credentials(access_key, secret_key, token)
        self.region = region
        self.service = service
        self.max_skew = datetime.timedelta(seconds=max_skew_seconds)
        self.accepted: list[dict[str, str]] = []
        self.rejected: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        seen = {":path": scope["path"], **headers}
        if not self.verify(scope, headers, bytes(body)):
            self.rejected.append(seen)
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"apigw-requestid", b"test-request")],
                }
            )
            await send({"type": "http.response.body", "body": FORBIDDEN})
            return
        self.accepted.append(seen)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def verify(self, scope: dict[str, Any], headers: dict[str, str], body: bytes) -> bool:
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if match is None:
            return False
        amz_date = headers.get("x-amz-date", "")
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            return False
        if (
            match["key"] != self.credentials.access_key
            or match["region"] != self.region
            or match["service"] != self.service
            or match["date"] != amz_date[:8]
            or abs(datetime.datetime.now(datetime.UTC) - signed_at) > self.max_skew
        ):
            return False
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or any(name not in headers for name in signed):
            return False
        if self.credentials.token is not None and (
            headers.get("x-amz-security-token") != self.credentials.token or "x-amz-security-token" not in signed
        ):
            return False
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"http://{headers['host']}{path.decode('latin-1')}" + (f"?{query.decode('latin-1')}" if query else "")
        request = AWSRequest(
            method=scope["method"], url=url, data=body, headers={name: headers[name] for name in signed}
        )
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(self.credentials, self.service, self.region)
        if auth.signed_headers(auth.headers_to_sign(request)) != match["signed"]:
            return False
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return hmac.compare_digest(expected, match["signature"])
