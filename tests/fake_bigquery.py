"""A small BigQuery on loopback: the REST calls google-cloud-bigquery makes for a query job
(jobs.insert, jobs.get, jobs.cancel) and the OAuth token endpoint a service account key names.

The client reaches it through ``BIGQUERY_EMULATOR_HOST`` (both the original flyte-sdk connector
and the port read it) and a service account key whose ``token_uri`` is this server's
(:meth:`FakeBigQuery.service_account_json`, an RSA key made for the session). The token endpoint
checks the key's signed grant; every API call must carry a token it issued. Every request is
recorded (method, path, query, headers, JSON body) for tests to compare.

Steering: :meth:`plan` sets the states the next job walks through (one step per jobs.get) and how
it ends (a destination table, or errors); :meth:`fail` answers the next matching call(s) with a
Google-shaped error.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Plan:
    states: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "DONE"])
    errors: list[dict[str, Any]] | None = None  # status.errors once DONE (errorResult = the first)
    destination: bool = True  # a DONE job without errors has a destination table


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    message: str
    reason: str
    times: int


class FakeBigQuery:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self._plans: list[Plan] = []
        self._progress: dict[str, tuple[Plan, int]] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeBigQuery:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- steering ------------------------------------------------------------------------------

    def plan(
        self, states: list[str] | None = None, errors: list[dict[str, Any]] | None = None, destination: bool = True
    ) -> None:
        """How the next inserted job goes: ``states`` (the insert answers the first, each jobs.get
        moves one on), and once DONE ``errors`` or a destination table."""
        self._plans.append(Plan(states or ["PENDING", "RUNNING", "DONE"], errors, destination))

    def fail(self, method: str, path: str, status: int, message: str, reason: str = "", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` whose path matches the regex ``path`` with
        an error of HTTP ``status``."""
        self._failures.append(
            _Failure(method, re.compile(path), status, message, reason or STATUS_WORDS.get(status, ""), times)
        )

    def service_account_info(self) -> dict[str, Any]:
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": "fake-key-1",
            "private_key": _private_key_pem(),
            "client_email": "flyte@fake-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }

    def service_account_json(self) -> str:
        return json.dumps(self.service_account_info())

    def api_calls(self) -> list[Recorded]:
        """The recorded BigQuery API calls (the token requests left out)."""
        return [r for r in self.requests if r.path != "/token"]

    # -- the API -------------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Recorded(method, path, query, headers, body))
            if path == "/token":
                return self._token(body)
            if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
                return _error(401, "Request is missing required authentication credential.", "unauthorized")
            for failure in self._failures:
                if failure.times > 0 and failure.method == method and failure.path.search(path):
                    failure.times -= 1
                    return _error(failure.status, failure.message, failure.reason)
            match = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs(?:/([^/]+))?(/cancel)?", path)
            if not match:
                return _error(404, f"Not found: {method} {path}", "notFound")
            project, job_id, cancel = match.groups()
            location = (query.get("location") or [None])[0]
            if method == "POST" and job_id is None:
                return self._insert(project, body)
            job = self.jobs.get(f"{project}.{job_id}")
            if job is None or (location and job["jobReference"].get("location") not in (None, location)):
                return _error(404, f"Not found: Job {project}:{location or 'US'}.{job_id}", "notFound")
            if method == "GET" and not cancel:
                self._advance(job)
                return 200, job
            if method == "POST" and cancel:
                if job["status"]["state"] != "DONE":
                    self._finish(
                        job,
                        Plan(
                            errors=[
                                {
                                    "reason": "stopped",
                                    "message": "Job execution was cancelled: User requested cancellation",
                                }
                            ]
                        ),
                    )
                return 200, {"kind": "bigquery#jobCancelResponse", "job": job}
            return _error(405, f"{method} {path} is not served here", "notImplemented")

    def _token(self, body: Any) -> tuple[int, Any]:
        from google.auth import jwt

        form = body if isinstance(body, dict) else {}
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(
                assertion, certs={"fake-key-1": _public_key_pem()}, audience="https://oauth2.googleapis.com/token"
            )
        except Exception as error:  # a bad signature, audience, expiry...
            return 400, {"error": "invalid_grant", "error_description": f"bad assertion: {error}"}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not re.search(
            r"auth/(bigquery|cloud-platform)", claims.get("scope", "")
        ):
            return 400, {"error": "invalid_scope", "error_description": f"unexpected grant: {claims}"}
        token = f"ya29.fake-{uuid.uuid4().hex[:12]}"
        self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _insert(self, project: str, body: dict[str, Any]) -> tuple[int, Any]:
        reference = dict(body.get("jobReference") or {})
        job_id = reference.get("jobId") or uuid.uuid4().hex
        key = f"{project}.{job_id}"
        if key in self.jobs:
            where = reference.get("location") or "US"
            return _error(409, f"Already Exists: Job {project}:{where}.{job_id}", "duplicate")
        plan = self._plans.pop(0) if self._plans else Plan()
        reference.update(projectId=project, jobId=job_id)
        job = {
            "kind": "bigquery#job",
            "etag": "e",
            "id": f"{project}:{reference.get('location') or 'US'}.{job_id}",
            "selfLink": f"{self.url}/bigquery/v2/projects/{project}/jobs/{job_id}",
            "user_email": "flyte@fake-project.iam.gserviceaccount.com",
            "jobReference": reference,
            "configuration": json.loads(json.dumps(body.get("configuration") or {})),
            "status": {"state": plan.states[0]},
            "statistics": {"creationTime": str(int(time.time() * 1000))},
        }
        self.jobs[key] = job
        self._progress[key] = (plan, 0)
        if plan.states[0] == "DONE":
            self._finish(job, plan)
        return 200, job

    def _advance(self, job: dict[str, Any]) -> None:
        key = f"{job['jobReference']['projectId']}.{job['jobReference']['jobId']}"
        plan, step = self._progress[key]
        if job["status"]["state"] == "DONE":
            return
        step = min(step + 1, len(plan.states) - 1)
        self._progress[key] = (plan, step)
        job["status"]["state"] = plan.states[step]
        if plan.states[step] == "DONE":
            self._finish(job, plan)

    def _finish(self, job: dict[str, Any], plan: Plan) -> None:
        job["status"]["state"] = "DONE"
        if plan.errors:
            job["status"]["errorResult"] = plan.errors[0]
            job["status"]["errors"] = plan.errors
        elif plan.destination and "query" in job["configuration"]:
            job["configuration"]["query"]["destinationTable"] = {
                "projectId": job["jobReference"]["projectId"],
                "datasetId": "_fake_anon",
                "tableId": f"anon_{job['jobReference']['jobId']}",
            }


def _error(status: int, message: str, reason: str) -> tuple[int, Any]:
    return status, {
        "error": {
            "code": status,
            "message": message,
            "status": STATUS_WORDS.get(status, "UNKNOWN"),
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }


def _handler(fake: FakeBigQuery) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                if "x-www-form-urlencoded" in (self.headers.get("content-type") or ""):
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                else:
                    body = json.loads(raw)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = fake.answer(self.command, parts.path, parse_qs(parts.query), headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    return Handler


_KEYS: dict[str, str] = {}


def _private_key_pem() -> str:
    if "private" not in _KEYS:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEYS["private"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-bigquery")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        _KEYS["public"] = cert.public_bytes(serialization.Encoding.PEM).decode()
    return _KEYS["private"]


def _public_key_pem() -> str:
    _private_key_pem()
    return _KEYS["public"]
