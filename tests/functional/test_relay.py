"""`connectors relay` between a stock Flyte executor's gRPC client and the signed HTTP API.

The API is the app served by uvicorn behind a middleware that checks SigV4 signatures as API
Gateway does (tests/sigv4_check.py), over HTTPS with a certificate from a CA made for the test
run, and over plain http as `make serve` is. The relay runs as it does next to an executor, on a
loopback port, signing with the test credentials (it signs only for https); flyteidl2's generated
gRPC stubs, the client the executor uses, drive it and must see the answers and the gRPC status
codes the executor acts on.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin import EchoConnector
from connectors.dev.local_dynamodb import HOST, free_port
from connectors.registry import ConnectorRegistry
from connectors.relay import serve
from connectors.transport import create_app
from tests.conftest import ServedApp, make_service
from tests.flyte_requests import ECHO, echo_request
from tests.sample_connectors import StallingConnector
from tests.sigv4_check import SigV4Check

REGION = "us-east-1"  # the checker's region; the test credentials come from conftest's LOCAL_ENV


class RunningRelay:
    """``serve()`` on a free loopback port, in its own event loop in a background thread."""

    def __init__(
        self, endpoint: str, *, unsigned: bool = False, ssl_context: ssl.SSLContext | None = None, **options: Any
    ) -> None:
        self.endpoint = endpoint
        self.unsigned = unsigned
        self.ssl_context = ssl_context
        self.options = options  # more of serve()'s keyword arguments
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(
                self.endpoint,
                f"{HOST}:0",
                region=REGION,
                unsigned=self.unsigned,
                stop=self._stop,
                ready=self._started,
                grace_seconds=1,
                ssl_context=self.ssl_context,
                **self.options,
            )

        try:
            self._loop.run_until_complete(main())
        except BaseException as error:  # surfaced by __enter__
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    def _started(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def __enter__(self) -> grpc.Channel:
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._error is not None:
            raise RuntimeError(f"the relay did not start: {self._error!r}")
        self._channel = grpc.insecure_channel(f"{HOST}:{self.port}")
        return self._channel

    def stop(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self._channel.close()
        if self._thread.is_alive():
            self.stop()


def loopback_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA made for this run and a certificate it issued for 127.0.0.1: (CA, certificate, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        issuer_key: ec.EllipticCurvePrivateKey,
        *extensions: tuple[x509.ExtensionType, bool],
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connectors relay test CA")])
    ca = issue(
        "connectors relay test CA",
        ca_key,
        ca_name,
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    )
    certificate = issue(
        HOST,
        key,
        ca_name,
        ca_key,
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def api(settings, dynamodb_client) -> Iterator[tuple[ServedApp, SigV4Check]]:
    """The checked app over plain http, as `make serve` serves it: for unsigned relays."""
    registry = ConnectorRegistry([EchoConnector(), StallingConnector()])
    checked = SigV4Check(create_app(make_service(settings, dynamodb_client, registry)), region=REGION)
    with ServedApp(checked) as server:
        yield server, checked


@pytest.fixture(scope="module")
def https_api(api, tmp_path_factory) -> Iterator[tuple[str, ssl.SSLContext]]:
    """The same checked app (and its record of requests) over HTTPS, as API Gateway serves it:
    its URL, and an SSL context that trusts its certificate."""
    ca, certificate, key = loopback_certificate(tmp_path_factory.mktemp("tls"))
    with ServedApp(api[1], ssl_certfile=str(certificate), ssl_keyfile=str(key)) as server:
        yield f"https://{HOST}:{server.port}", ssl.create_default_context(cafile=str(ca))


@pytest.fixture(scope="module")
def channel(https_api) -> Iterator[grpc.Channel]:
    url, trusted = https_api
    with RunningRelay(url, ssl_context=trusted) as channel:
        yield channel


def tasks_stub(channel: grpc.Channel) -> service_pb2_grpc.AsyncConnectorServiceStub:
    return service_pb2_grpc.AsyncConnectorServiceStub(channel)


def grpc_error(call, request, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, **kwargs)
        if not hasattr(result, "SerializeToString"):  # a stream: read it to the end
            list(result)
    return caught.value


def test_a_flyte_executor_drives_an_echo_task_through_the_relay(api, channel):
    checked = api[1]
    metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
    listed = metadata.ListConnectors(pb.ListConnectorsRequest(), timeout=5)
    assert {("echo", 0), ("stalling", 0)} <= {
        (c.name, c.version) for m in listed.connectors for c in m.supported_task_categories
    }
    echo = metadata.GetConnector(pb.GetConnectorRequest(name="Echo Connector"), timeout=5).connector
    assert [c.name for c in echo.supported_task_categories] == ["echo"]

    tasks = tasks_stub(channel)
    handle = tasks.CreateTask(
        echo_request(x=11, name="relayed", custom={"delay_seconds": 0.3}), timeout=10
    ).resource_meta
    assert handle.startswith(b"t1")
    deadline = time.monotonic() + 10
    while (
        resource := tasks.GetTask(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO), timeout=10).resource
    ).phase != TaskExecution.SUCCEEDED and time.monotonic() < deadline:
        assert resource.phase == TaskExecution.RUNNING
        time.sleep(0.1)
    assert resource.phase == TaskExecution.SUCCEEDED
    outputs = {lit.name: lit.value.scalar.primitive for lit in resource.outputs.literals}
    assert outputs["x"].integer == 11 and outputs["name"].string_value == "relayed"

    logs = list(tasks.GetTaskLogs(pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO), timeout=5))
    assert [part.WhichOneof("part") for part in logs] == ["header", "body"]
    assert any("will echo" in line.message for line in logs[1].body.lines)

    metrics = tasks.GetTaskMetrics(pb.GetTaskMetricsRequest(resource_meta=handle, task_category=ECHO), timeout=5)
    assert [result.metric for result in metrics.results] == ["elapsed_seconds"]

    for _ in range(2):  # DeleteTask is called again on a retried abort; it must succeed again
        tasks.DeleteTask(pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO), timeout=5)

    # Every call arrived signed (the checker let it through) and carried the call's deadline.
    assert not checked.rejected
    sent = {headers[":path"].rsplit("/", 1)[1]: headers for headers in checked.accepted}
    assert set(sent) == {
        "ListConnectors",
        "GetConnector",
        "CreateTask",
        "GetTask",
        "GetTaskLogs",
        "GetTaskMetrics",
        "DeleteTask",
    }
    assert sent["GetTaskLogs"]["content-type"] == "application/connect+proto"
    assert sent["CreateTask"]["content-type"] == "application/proto"
    # (gRPC rounds the grpc-timeout it sends up a little, hence the slack)
    assert 9_000 < int(sent["CreateTask"]["connect-timeout-ms"]) <= 10_200
    assert all(
        0 < int(headers["connect-timeout-ms"]) <= 5_200
        for name, headers in sent.items()
        if name not in ("CreateTask", "GetTask")
    )


@pytest.mark.parametrize(
    ("method", "request_", "status"),
    [
        ("CreateTask", echo_request(task_type="bigquery"), grpc.StatusCode.NOT_FOUND),
        ("CreateTask", pb.CreateTaskRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ("GetTask", pb.GetTaskRequest(resource_meta=b"junk", task_category=ECHO), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "DeleteTask",
            pb.DeleteTaskRequest(resource_meta=b"junk", task_category=ECHO),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "GetTaskMetrics",
            pb.GetTaskMetricsRequest(resource_meta=b"junk", task_category=ECHO),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "GetTaskLogs",
            pb.GetTaskLogsRequest(resource_meta=b"junk", task_category=ECHO),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_the_services_errors_arrive_as_grpc_status_codes(channel, method, request_, status):
    error = grpc_error(getattr(tasks_stub(channel), method), request_, timeout=5)
    assert error.code() == status, error.details()
    assert error.details()


def test_an_unknown_task_type_names_what_is_served(channel):
    error = grpc_error(tasks_stub(channel).CreateTask, echo_request(task_type="bigquery"), timeout=5)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "bigquery" in error.details() and "echo" in error.details()


def test_an_unknown_connector_name_is_not_found(channel):
    metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
    error = grpc_error(metadata.GetConnector, pb.GetConnectorRequest(name="Nope"), timeout=5)
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_an_unsigned_relay_is_refused_by_the_signature_check(api):
    server, checked = api
    before = len(checked.rejected)
    with RunningRelay(server.url, unsigned=True) as channel:
        metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
        error = grpc_error(metadata.ListConnectors, pb.ListConnectorsRequest(), timeout=5)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "Forbidden" in error.details() and "test-request" in error.details()
        error = grpc_error(tasks_stub(channel).GetTaskLogs, pb.GetTaskLogsRequest(task_category=ECHO), timeout=5)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(checked.rejected) == before + 2
    assert all("authorization" not in headers for headers in checked.rejected[before:])


def test_a_signing_relay_refuses_a_plain_http_endpoint(api):
    server, checked = api  # server.url is http://127.0.0.1:<port>
    before = len(checked.accepted)
    relay = RunningRelay(server.url)
    with pytest.raises(RuntimeError, match="did not start"), relay as channel:
        service_pb2_grpc.ConnectorMetadataServiceStub(channel).ListConnectors(pb.ListConnectorsRequest(), timeout=5)
        sent = checked.accepted[before:][-1]
        pytest.fail(
            f"the relay signed a request over plain http: Authorization {sent.get('authorization')!r} "
            f"and X-Amz-Security-Token {sent.get('x-amz-security-token')!r} went in clear"
        )
    assert isinstance(relay._error, ValueError)
    said = str(relay._error)
    assert server.url in said and "in clear" in said and "replay" in said and "https" in said and "--unsigned" in said
    assert len(checked.accepted) == before


def test_a_relay_sends_nothing_to_an_https_server_it_does_not_trust(api, https_api):
    checked = api[1]
    before = len(checked.accepted) + len(checked.rejected)
    with RunningRelay(https_api[0]) as channel:  # the default trust store, without the test CA
        error = grpc_error(
            service_pb2_grpc.ConnectorMetadataServiceStub(channel).ListConnectors, pb.ListConnectorsRequest(), timeout=5
        )
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "CERTIFICATE_VERIFY_FAILED" in error.details()
    assert len(checked.accepted) + len(checked.rejected) == before


def relay_command(*args: str) -> subprocess.Popen[str]:
    """`connectors relay` as an operator runs it, in a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "relay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_connectors_relay_will_not_sign_over_plain_http(api):
    server, checked = api
    before = len(checked.accepted) + len(checked.rejected)
    process = relay_command("--endpoint", server.url, "--listen", f"{HOST}:{free_port()}", "--region", REGION)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"connectors relay started, signing for a plain http endpoint:\n{stderr}")
    assert process.returncode == 2, stderr
    assert stderr.startswith("connectors relay: ") and "Traceback" not in stderr
    assert server.url in stderr and "in clear" in stderr and "replay" in stderr
    assert "https://" in stderr and "--unsigned" in stderr and "make serve" in stderr
    assert len(checked.accepted) + len(checked.rejected) == before  # nothing was sent


def test_connectors_relay_unsigned_relays_to_a_plain_http_endpoint(api):
    server, checked = api
    before = len(checked.rejected)
    port = free_port()
    process = relay_command("--unsigned", "--endpoint", server.url, "--listen", f"{HOST}:{port}")
    try:
        with grpc.insecure_channel(f"{HOST}:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
            error = grpc_error(metadata.ListConnectors, pb.ListConnectorsRequest(), timeout=5)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED  # it reached the API, unsigned
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "unsigned" in stderr and "Traceback" not in stderr
    assert len(checked.rejected) == before + 1 and "authorization" not in checked.rejected[-1]


def test_a_relay_whose_api_is_down_answers_unavailable():
    with RunningRelay(f"https://{HOST}:{free_port()}") as channel:
        started = time.monotonic()
        error = grpc_error(tasks_stub(channel).CreateTask, echo_request(), timeout=5)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        assert time.monotonic() - started < 2  # a refused connection is answered at once, not at the deadline
        error = grpc_error(tasks_stub(channel).GetTaskLogs, pb.GetTaskLogsRequest(task_category=ECHO), timeout=5)
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_the_calls_deadline_goes_with_it(api, channel):
    checked = api[1]
    before = len(checked.accepted)
    started = time.monotonic()
    # The stalling connector never answers; the service's own connector timeout is 2 s.
    error = grpc_error(tasks_stub(channel).CreateTask, echo_request(task_type="stalling"), timeout=0.8)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.8
    sent = checked.accepted[before:]
    assert len(sent) == 1 and 0 < int(sent[0]["connect-timeout-ms"]) <= 1_000


def test_many_concurrent_calls_share_the_relay(channel):
    metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
    futures = [metadata.ListConnectors.future(pb.ListConnectorsRequest(), timeout=10) for _ in range(50)]
    assert all(future.result().connectors for future in futures)


def test_a_call_without_a_deadline_gets_api_gateways_30_seconds(api, channel):
    checked = api[1]
    before = len(checked.accepted)
    service_pb2_grpc.ConnectorMetadataServiceStub(channel).ListConnectors(pb.ListConnectorsRequest())
    assert 29_000 < int(checked.accepted[before]["connect-timeout-ms"]) <= 30_000
