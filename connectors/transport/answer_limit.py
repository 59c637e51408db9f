"""The last line of defence against an answer too large for AWS Lambda to return.

Lambda refuses a synchronous response over its payload quota; API Gateway then answers a bare
HTTP 500, which the relay (like any Connect client) can only read as ``unavailable``, and the
executor retries that forever. So every answer the Lambda handler built is measured as Lambda
will serialise it, and one that would not fit is replaced by a ``resource_exhausted`` error in
the caller's protocol, saying how large the answer was and what the limit is:

- a Connect server stream (``application/connect+proto`` or ``+json``, GetTaskLogs): HTTP 200
  and an end-of-stream message carrying the error, as the Connect protocol requires;
- Connect unary and REST: the REST transport's error answer (the Connect protocol's status for
  the code, 429, and a ``{"code", "message"}`` JSON body, which is also Connect's unary form).

The service core may know better ways to keep an answer small (GetTask fails the task); this
module knows nothing of operations and applies to all of them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..connect_envelope import END_STREAM, encode
from ..errors import resource_exhausted
from .rest import REST_OPERATIONS, error_response

__all__ = ["LAMBDA_RESPONSE_LIMIT", "fit_answer", "limit_answers", "response_size"]

logger = logging.getLogger(__name__)

# Lambda's quota for a synchronous invocation's response: 6 MB, which Lambda counts as 6 MiB
# (6 * 1024 * 1024 = 6,291,456 bytes; the refusal quotes a few bytes more, 6,291,556). It counts the
# whole JSON document the runtime serialises from the handler's return value, so it covers the
# status, the headers and the body, a binary body being base64 (4/3 larger). API Gateway's own
# limit for an HTTP API (10 MB) is looser, so Lambda's is the one an answer must fit.
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024

_STREAM_CONTENT_TYPE = "application/connect+"


def response_size(response: Mapping[str, Any]) -> int:
    """The bytes Lambda counts for ``response``: its JSON as the Python 3.12 runtime writes it
    (awslambdaric's encoder: ``json.dumps`` with ``ensure_ascii=False``, UTF-8)."""
    body = response.get("body")
    if response.get("isBase64Encoded") and isinstance(body, str):
        # No base64 character needs escaping: count the body as is rather than copy megabytes.
        return _json_size({**response, "body": ""}) + len(body)
    return _json_size(response)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def limit_answers(
    adapter: Callable[[dict, Any], Any], limit: int = LAMBDA_RESPONSE_LIMIT
) -> Callable[[dict, Any], Any]:
    """Wrap a Lambda handler (Mangum) so that every answer it returns fits in ``limit`` bytes."""

    def handler(event: dict, context: Any) -> Any:
        return fit_answer(event, adapter(event, context), limit)

    return handler


def fit_answer(event: Mapping[str, Any], response: Any, limit: int = LAMBDA_RESPONSE_LIMIT) -> Any:
    """``response`` when it fits in ``limit`` bytes, else a small resource_exhausted answer in the
    protocol of ``event`` (an API Gateway HTTP API event)."""
    if not isinstance(response, dict) or "statusCode" not in response:
        return response  # not an HTTP answer: nothing to fit
    size = response_size(response)
    if size <= limit:
        return response
    operation = _operation(event)
    body = response.get("body") or ""
    logger.warning(
        "the answer to %s (HTTP %s, a body of %d characters%s) is %d bytes as a Lambda response, over the limit of %d: "
        "answering resource_exhausted instead",
        operation,
        response.get("statusCode"),
        len(body),
        ", base64" if response.get("isBase64Encoded") else "",
        size,
        limit,
    )
    error = resource_exhausted(
        f"the answer to {operation} is too large to return: {size} bytes as a Lambda response, over the limit "
        f"of {limit} bytes that AWS Lambda and API Gateway allow"
    )
    request_type = _header(event, "content-type")
    if request_type.startswith(_STREAM_CONTENT_TYPE):
        answered_type = _header(response, "content-type")
        content_type = answered_type if answered_type.startswith(_STREAM_CONTENT_TYPE) else request_type.split(";")[0]
        end = json.dumps({"error": {"code": error.code.value, "message": error.message}}).encode()
        return {
            "statusCode": 200,
            "headers": {"content-type": content_type},
            "body": base64.b64encode(encode(end, END_STREAM)).decode(),
            "isBase64Encoded": True,
        }
    answer = error_response(error)
    return {
        "statusCode": answer.status_code,
        "headers": {"content-type": answer.media_type},
        "body": bytes(answer.body).decode(),
        "isBase64Encoded": False,
    }


def _header(message: Mapping[str, Any], name: str) -> str:
    for key, value in (message.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return ""


def _rest_pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


_REST_ROUTES = [(method, _rest_pattern(path), name) for name, (method, path) in REST_OPERATIONS.items()]


def _operation(event: Mapping[str, Any]) -> str:
    """The operation's name, for messages: never the path itself, whose resource_meta holds a
    task handle (a bearer secret)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    path, method = str(http.get("path") or event.get("rawPath") or ""), str(http.get("method") or "")
    if path.startswith("/flyteidl2."):
        return path.rsplit("/", 1)[-1]
    for route_method, pattern, name in _REST_ROUTES:
        if method == route_method and pattern.match(path):
            return name
    return "this request"
