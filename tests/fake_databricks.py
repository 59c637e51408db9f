"""A fake Databricks Jobs API 2.1 on a loopback HTTPS server, for the Databricks connector's tests.

    with FakeDatabricks(token="dapi-test") as fake:   # serves https://127.0.0.1:<port>
        fake.instance                                  # "127.0.0.1:<port>", the task's databricksInstance
        fake.cafile                                    # its self-signed certificate: SSL_CERT_FILE
        fake.script(run_id, [("PENDING", None), ("RUNNING", None), ("TERMINATED", "SUCCESS")])
        fake.requests                                  # every request: method, path, query, headers, body

It answers as Databricks does: ``runs/submit`` starts a run (the same run again for an
``idempotency_token`` it has seen), ``runs/get`` steps through the run's scripted states (one
step a call, the last one kept), ``runs/cancel`` of an active run terminates it CANCELED and is a
no-op for an ended one; an unknown run is 400 INVALID_PARAMETER_VALUE "Run N does not exist.", a
wrong bearer token 401. ``fake.fail(path, status, body)`` answers the next call to ``path`` with
an error.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/2.1/jobs"
ENDED = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
DEFAULT_SCRIPT = [("PENDING", None), ("RUNNING", None), ("TERMINATED", "SUCCESS")]


def self_signed_certificate(directory: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost, its own CA: (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-databricks.test")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_file, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_file, key_file


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON body, None when there is none

    def key(self) -> tuple[str, str, Any, Any, str | None, str | None]:
        """What a client chose to send: method, path, query, body, authorization, content type."""
        return (
            self.method,
            self.path,
            self.query,
            self.body,
            self.headers.get("authorization"),
            self.headers.get("content-type"),
        )


@dataclass
class Run:
    run_id: int
    job_id: int
    spec: dict[str, Any]
    script: list[tuple[str, str | None]]
    step: int = 0
    cancelled: bool = False
    message: str = ""

    def state(self) -> dict[str, Any]:
        life, result = self.script[min(self.step, len(self.script) - 1)]
        state: dict[str, Any] = {"life_cycle_state": life, "state_message": self.message or f"run is {life.lower()}"}
        if result:
            state["result_state"] = result
        return state

    def ended(self) -> bool:
        return self.state()["life_cycle_state"] in ENDED


@dataclass
class FakeDatabricks:
    token: str = "dapi-test-token"
    runs: dict[int, Run] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    default_script: list[tuple[str, str | None]] = field(default_factory=lambda: list(DEFAULT_SCRIPT))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}
        self._failures: dict[str, list[tuple[int, Any]]] = {}
        self._next_run = 1000

    # -- steering ---------------------------------------------------------------------------

    def script(self, run_id: int | str, states: list[tuple[str, str | None]], message: str = "") -> None:
        """The states ``runs/get`` answers for the run from now on, one a call, the last kept."""
        with self._lock:
            run = self.runs[int(run_id)]
            run.script, run.step, run.message = list(states), 0, message

    def fail(self, path: str, status: int, body: Any, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` (``runs/submit``...) with this error."""
        with self._lock:
            self._failures.setdefault(path, []).extend([(status, body)] * times)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == f"{API}/{path}"]

    # -- serving ----------------------------------------------------------------------------

    def __enter__(self) -> FakeDatabricks:
        self._dir = tempfile.TemporaryDirectory(prefix="fake-databricks-")
        self.cafile, key_file = self_signed_certificate(self._dir.name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cafile, key_file)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                recorded = Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                status, answer = fake.answer(recorded)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.instance = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-databricks", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    # -- the API ----------------------------------------------------------------------------

    def answer(self, request: Recorded) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
            if not request.path.startswith(API + "/"):
                return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {request.path}"}
            path = request.path[len(API) + 1 :]
            failures = self._failures.get(path)
            if failures:
                return failures.pop(0)
            if (request.method, path) == ("POST", "runs/submit"):
                return self._submit(request.body)
            if (request.method, path) == ("GET", "runs/get"):
                return self._get(request.query.get("run_id", [""])[0])
            if (request.method, path) == ("POST", "runs/cancel"):
                return self._cancel((request.body or {}).get("run_id") if isinstance(request.body, dict) else None)
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {request.method} {path}"}

    def _submit(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error_code": "MALFORMED_REQUEST", "message": "Invalid JSON given in the body of the request"}
        token = body.get("idempotency_token")
        if token is not None and len(str(token)) > 64:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "idempotency_token is too long"}
        if token is not None and token in self._tokens:
            return 200, {"run_id": self._tokens[token]}
        self._next_run += 1
        run = Run(run_id=self._next_run, job_id=self._next_run + 50000, spec=body, script=list(self.default_script))
        self.runs[run.run_id] = run
        if token is not None:
            self._tokens[token] = run.run_id
        return 200, {"run_id": run.run_id}

    def _run(self, run_id: Any) -> Run | None:
        try:
            return self.runs.get(int(run_id))
        except (TypeError, ValueError):
            return None

    def _get(self, run_id: str) -> tuple[int, Any]:
        run = self._run(run_id)
        if run is None:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Run {run_id} does not exist."}
        answer = {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "run_name": run.spec.get("run_name", "Untitled"),
            "state": run.state(),
            "run_page_url": f"https://fake/#job/{run.job_id}/run/{run.run_id}",
        }
        if not run.cancelled:
            run.step += 1
        return 200, answer

    def _cancel(self, run_id: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        if run is None:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Run {run_id} does not exist."}
        if not run.ended():  # a no-op for a run that has ended
            run.cancelled = True
            run.script, run.step = [("TERMINATED", "CANCELED")], 0
            run.message = "Run cancelled."
        return 200, {}
