"""The relay's parts without servers: the error mapping, Connect envelopes, the region, signing
with rotating credentials, the forwarder's handling of odd answers, and the test signature check."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json

import grpc
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from flyteidl2.connector import connector_pb2 as pb

from connectors.connect_envelope import COMPRESSED, END_STREAM, EnvelopeError, EnvelopeReader, encode
from connectors.relay import Forwarder, RelayError, Signer, error_from_response, resolve_region
from tests.sigv4_check import SigV4Check

LIST = "/flyteidl2.connector.ConnectorMetadataService/ListConnectors"
LOGS = "/flyteidl2.connector.AsyncConnectorService/GetTaskLogs"


def connect_error(code: str, message: str = "m") -> bytes:
    return json.dumps({"code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # Connect errors from the service: the code in the body wins over the HTTP status.
        (404, connect_error("not_found"), grpc.StatusCode.NOT_FOUND),
        (400, connect_error("invalid_argument"), grpc.StatusCode.INVALID_ARGUMENT),
        (503, connect_error("unavailable"), grpc.StatusCode.UNAVAILABLE),
        (504, connect_error("deadline_exceeded"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (500, connect_error("internal"), grpc.StatusCode.INTERNAL),
        (501, connect_error("unimplemented"), grpc.StatusCode.UNIMPLEMENTED),
        (429, connect_error("resource_exhausted"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (400, connect_error("failed_precondition"), grpc.StatusCode.FAILED_PRECONDITION),
        (499, connect_error("canceled"), grpc.StatusCode.CANCELLED),
        (500, connect_error("unknown"), grpc.StatusCode.UNKNOWN),
        (500, connect_error("no_such_code"), grpc.StatusCode.UNKNOWN),
        # API Gateway's own answers: {"message": ...} and a status.
        (403, b'{"message":"Forbidden"}', grpc.StatusCode.PERMISSION_DENIED),
        (
            403,
            b'{"message":"The security token included in the request is expired"}',
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (401, b'{"message":"Unauthorized"}', grpc.StatusCode.UNAUTHENTICATED),
        (429, b'{"message":"Too Many Requests"}', grpc.StatusCode.UNAVAILABLE),
        (404, b'{"message":"Not Found"}', grpc.StatusCode.UNIMPLEMENTED),
        (413, b'{"message":"Request Entity Too Large"}', grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, b'{"message":"Internal Server Error"}', grpc.StatusCode.UNAVAILABLE),
        (503, b'{"message":"Service Unavailable"}', grpc.StatusCode.UNAVAILABLE),
        (504, b'{"message":"Endpoint request timed out"}', grpc.StatusCode.UNAVAILABLE),
        # No body, or not JSON.
        (502, b"", grpc.StatusCode.UNAVAILABLE),
        (500, b"<html>oops</html>", grpc.StatusCode.UNAVAILABLE),
        (400, b"", grpc.StatusCode.INTERNAL),
        (418, b"", grpc.StatusCode.UNKNOWN),
    ],
)
def test_error_mapping(status, body, expected):
    error = error_from_response(status, body, {"apigw-requestid": "abc"})
    assert error.code == expected
    assert error.message


def test_an_api_gateway_error_names_its_status_message_and_request_id():
    error = error_from_response(403, b'{"message":"Forbidden"}', {"apigw-requestid": "Xyz="})
    assert "403" in error.message and "Forbidden" in error.message and "Xyz=" in error.message
    assert "execute-api:Invoke" in error.message
    assert error_from_response(404, connect_error("not_found", "no task t1"), {}).message == "no task t1"


def test_envelopes_split_anywhere_come_back_whole():
    stream = encode(b"first") + encode(b"") + encode(b"x" * 70_000) + encode(b'{"metadata":{}}', END_STREAM)
    for size in (1, 3, 5, 7, 4096, len(stream)):
        reader = EnvelopeReader()
        parts = [part for i in range(0, len(stream), size) for part in reader.feed(stream[i : i + size])]
        assert parts == [(0, b"first"), (0, b""), (0, b"x" * 70_000), (END_STREAM, b'{"metadata":{}}')]
        assert reader.pending == 0


def test_compressed_envelopes_need_a_compression_the_relay_reads():
    assert list(EnvelopeReader("gzip").feed(encode(gzip.compress(b"hello"), COMPRESSED))) == [(COMPRESSED, b"hello")]
    with pytest.raises(EnvelopeError):
        list(EnvelopeReader().feed(encode(b"hello", COMPRESSED)))
    with pytest.raises(EnvelopeError):
        EnvelopeReader("br")
    with pytest.raises(EnvelopeError):
        list(EnvelopeReader().feed(b"\x00\xff\xff\xff\xff"))  # 4 GB announced


def test_the_region_comes_from_the_flag_the_host_or_the_environment(monkeypatch):
    assert resolve_region("https://a1b2c3.execute-api.eu-west-1.amazonaws.com") == "eu-west-1"
    assert resolve_region("https://a1b2c3-vpce-0abc.execute-api.us-gov-west-1.vpce.amazonaws.com") == "us-gov-west-1"
    assert resolve_region("https://a1b2c3.execute-api.eu-west-1.amazonaws.com", "us-east-2") == "us-east-2"
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert resolve_region("https://connectors.example.com") == "ap-southeast-2"


class _Session:
    def __init__(self, credentials):
        self._credentials = credentials

    def get_credentials(self):
        return self._credentials


def _access_key(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("Credential=")[1].split("/")[0]


def test_signing_follows_rotated_credentials():
    issued = []

    def refresh():
        issued.append(f"AKIA{len(issued)}")
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)  # inside the refresh window
        return {"access_key": issued[-1], "secret_key": "s", "token": "t", "expiry_time": expiry.isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    signer = Signer("us-east-1", session=_Session(credentials))

    async def sign() -> dict[str, str]:
        return await signer.sign("POST", "https://api.example.com" + LIST, {"content-type": "application/proto"}, b"x")

    first, second = asyncio.run(sign()), asyncio.run(sign())
    assert _access_key(first) != _access_key(second)  # each signature used fresh credentials
    assert _access_key(second) == issued[-1]
    assert second["X-Amz-Security-Token"] == "t" and "content-type" in second


def test_the_signature_check_rejects_what_api_gateway_would():
    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    checker = SigV4Check(ok)

    def send(
        secret: str = "testing", region: str = "us-east-1", body: bytes = b"body", tamper: bytes | None = None
    ) -> int:
        request = AWSRequest(
            method="POST", url="http://api.test" + LIST, data=body, headers={"content-type": "application/proto"}
        )
        SigV4Auth(Credentials("testing", secret, "testing"), "execute-api", region).add_auth(request)

        async def go() -> int:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=checker)) as http:
                response = await http.post(
                    request.url, content=tamper if tamper is not None else body, headers=dict(request.headers.items())
                )
                return response.status_code

        return asyncio.run(go())

    assert send() == 200
    assert send(secret="wrong") == 403
    assert send(region="eu-west-1") == 403
    assert send(tamper=b"other body") == 403
    assert checker.rejected[-1].get("authorization")


def test_a_signing_forwarder_needs_an_https_endpoint():
    signer = Signer("us-east-1", session=_Session(Credentials("testing", "testing", "testing")))
    for endpoint in (
        "http://api.example.com",
        "http://127.0.0.1:8080",
        "HTTP://a1b2c3.execute-api.eu-west-1.amazonaws.com",
    ):
        with pytest.raises(ValueError) as caught:
            Forwarder(endpoint, signer)
        said = str(caught.value)
        assert endpoint in said and "https" in said and "in clear" in said and "replay" in said and "--unsigned" in said
    _run(Forwarder("https://api.example.com", signer).aclose())
    _run(Forwarder("http://127.0.0.1:8080", None).aclose())  # unsigned: a local endpoint such as `make serve`


def _forwarder(handler) -> Forwarder:
    return Forwarder("https://api.example.com", None, transport=httpx.MockTransport(handler))


def _run(coroutine):
    return asyncio.run(coroutine)


def test_a_request_that_got_no_answer_is_sent_once_more():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(
            200, content=pb.ListConnectorsResponse().SerializeToString(), headers={"content-type": "application/proto"}
        )

    async def call():
        async with _forwarder(handler) as forwarder:
            return await forwarder.unary(LIST, pb.ListConnectorsRequest(), pb.ListConnectorsResponse, 5)

    assert _run(call()) == pb.ListConnectorsResponse()
    assert len(calls) == 2
    assert all(0 < int(request.headers["connect-timeout-ms"]) <= 5000 for request in calls)


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (httpx.Response(200, content=b"<html/>", headers={"content-type": "text/html"}), grpc.StatusCode.INTERNAL),
        (
            httpx.Response(200, content=b"\xff\xff", headers={"content-type": "application/proto"}),
            grpc.StatusCode.INTERNAL,
        ),
        (httpx.Response(429, json={"message": "Too Many Requests"}), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_odd_unary_answers(response, code):
    async def call():
        async with _forwarder(lambda request: response) as forwarder:
            await forwarder.unary(LIST, pb.ListConnectorsRequest(), pb.ListConnectorsResponse, 5)

    with pytest.raises(RelayError) as caught:
        _run(call())
    assert caught.value.code == code


def test_a_deadline_already_passed_is_not_sent():
    async def call():
        async with _forwarder(lambda request: pytest.fail("sent")) as forwarder:
            await forwarder.unary(LIST, pb.ListConnectorsRequest(), pb.ListConnectorsResponse, 0)

    with pytest.raises(RelayError) as caught:
        _run(call())
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


STREAM = {"content-type": "application/connect+proto"}
HEADER = pb.GetTaskLogsResponse(header=pb.GetTaskLogsResponseHeader(token="t")).SerializeToString()


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (encode(HEADER) + encode(b"{}", END_STREAM), STREAM, None),
        (
            encode(HEADER) + encode(b'{"error": {"code": "not_found", "message": "gone"}}', END_STREAM),
            STREAM,
            grpc.StatusCode.NOT_FOUND,
        ),
        (encode(HEADER), STREAM, grpc.StatusCode.UNAVAILABLE),  # cut before its end-of-stream message
        (encode(HEADER)[:-2], STREAM, grpc.StatusCode.UNAVAILABLE),
        (
            encode(gzip.compress(HEADER, mtime=0), COMPRESSED) + encode(b"{}", END_STREAM),
            {**STREAM, "connect-content-encoding": "gzip"},
            None,
        ),
        (encode(HEADER) + encode(b"not json", END_STREAM), STREAM, grpc.StatusCode.INTERNAL),
        (b"{}", {"content-type": "application/json"}, grpc.StatusCode.INTERNAL),
    ],
)
def test_stream_answers(body, headers, code):
    async def call():
        async with _forwarder(lambda request: httpx.Response(200, content=body, headers=headers)) as forwarder:
            return [m async for m in forwarder.server_stream(LOGS, pb.GetTaskLogsRequest(), pb.GetTaskLogsResponse, 5)]

    if code is None:
        assert [m.header.token for m in _run(call())] == ["t"]
    else:
        with pytest.raises(RelayError) as caught:
            _run(call())
        assert caught.value.code == code, caught.value.message
