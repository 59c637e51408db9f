"""connectors.transport.answer_limit on Lambda responses built by hand: the boundary, the forms."""

from __future__ import annotations

import base64
import json

import pytest

from connectors.connect_envelope import END_STREAM, end_stream_error, read_all
from connectors.dev.events import http_api_event
from connectors.transport.answer_limit import LAMBDA_RESPONSE_LIMIT, fit_answer, limit_answers, response_size

HANDLE = "t1gw_-63lbETG9RgawQG21KQAAAACMd_TPK_Qj4XuNERqeLJbh"
METRICS = http_api_event("POST", "/flyteidl2.connector.AsyncConnectorService/GetTaskMetrics", b"\n\x00")
LOGS_JSON = http_api_event(
    "POST",
    "/flyteidl2.connector.AsyncConnectorService/GetTaskLogs",
    b"\x00\x00\x00\x00\x02{}",
    content_type="application/connect+json",
)
REST_TASK = http_api_event("GET", f"/api/v1/connector/task/echo/0/{HANDLE}")


def answer(body: str, content_type: str = "application/json") -> dict:
    return {"statusCode": 200, "body": body, "headers": {"content-type": content_type}, "isBase64Encoded": False}


def sized(size: int, char: str = "a") -> dict:
    """An answer of exactly ``size`` bytes as Lambda counts them."""
    base = response_size(answer(""))
    per = len(char.encode())
    assert (size - base) % per == 0
    response = answer(char * ((size - base) // per))
    assert response_size(response) == size
    return response


def test_the_limit_is_lambdas_6_mib():
    assert LAMBDA_RESPONSE_LIMIT == 6_291_456


def test_an_answer_of_exactly_the_limit_fits_and_one_byte_more_does_not():
    at_limit = sized(LAMBDA_RESPONSE_LIMIT)
    assert fit_answer(METRICS, at_limit) is at_limit
    replaced = fit_answer(METRICS, sized(LAMBDA_RESPONSE_LIMIT + 1))
    assert replaced["statusCode"] == 429
    error = json.loads(replaced["body"])
    assert error["code"] == "resource_exhausted"
    assert f"{LAMBDA_RESPONSE_LIMIT + 1} bytes" in error["message"] and str(LAMBDA_RESPONSE_LIMIT) in error["message"]


def test_non_ascii_text_counts_in_utf_8_bytes():
    response = sized(LAMBDA_RESPONSE_LIMIT, char="é")  # 2 bytes each: just fits
    assert fit_answer(METRICS, response) is response
    assert len(response["body"]) < LAMBDA_RESPONSE_LIMIT // 2 + 100
    assert fit_answer(METRICS, sized(LAMBDA_RESPONSE_LIMIT + 2, char="é"))["statusCode"] == 429


def test_a_stream_gets_an_end_of_stream_error_in_its_own_codec():
    big = {
        "statusCode": 200,
        "isBase64Encoded": True,
        "body": "A" * (LAMBDA_RESPONSE_LIMIT + 1),
        "headers": {"content-type": "application/connect+json", "connect-content-encoding": "gzip"},
    }
    replaced = fit_answer(LOGS_JSON, big)
    assert replaced["statusCode"] == 200
    assert replaced["headers"] == {"content-type": "application/connect+json"}  # no compression named: none used
    [(flags, message)] = read_all(base64.b64decode(replaced["body"]))
    assert flags == END_STREAM
    error = end_stream_error(message)
    assert error["code"] == "resource_exhausted" and "GetTaskLogs" in error["message"]


def test_rest_names_the_operation_never_the_handle(caplog):
    replaced = fit_answer(REST_TASK, sized(LAMBDA_RESPONSE_LIMIT + 1))
    assert replaced["statusCode"] == 429 and replaced["headers"]["content-type"] == "application/json"
    message = json.loads(replaced["body"])["message"]
    assert "GetTask" in message and HANDLE not in message
    assert caplog.records and all(HANDLE not in record.getMessage() for record in caplog.records)
    assert all("aaaa" not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("result", [{"cancelled": 0, "failed": 0}, None, "text"])
def test_what_is_not_an_http_answer_passes_through(result):
    assert fit_answer(METRICS, result) is result


def test_limit_answers_wraps_a_handler():
    calls = []

    def adapter(event, context):
        calls.append((event, context))
        return sized(200)

    handler = limit_answers(adapter, limit=199)
    assert handler(METRICS, "context")["statusCode"] == 429
    assert calls == [(METRICS, "context")]
    assert limit_answers(adapter, limit=200)(METRICS, None) == sized(200)


def test_a_base64_body_counts_as_lambda_serialises_it():
    response = {
        "statusCode": 200,
        "body": base64.b64encode(bytes(range(256)) * 1000).decode(),
        "headers": {"content-type": "application/proto"},
        "isBase64Encoded": True,
    }
    assert response_size(response) == len(json.dumps(response, ensure_ascii=False).encode())
