"""AWS's bad moments, on demand: throttling at a set rate, a share of 5xx blips, slow answers.

moto answers every call at once and never refuses one; AWS throttles each API at an account-wide
rate (AWS Batch about 50 calls a second, shared with every other user of the account), answers a
share of calls with a 5xx, and sometimes answers late. This module puts those in front of moto's
server, for the job services the connectors call, so that tests, ``make serve`` and
``benchmarks/faults.py`` meet them:

- **throttling**: each (service, operation) has a token bucket of ``throttle_per_second`` calls a
  second (burst: one second's worth); a call beyond it answers the service's own throttling error
  (``ThrottlingException`` or the name its botocore model gives, e.g. Athena's
  ``TooManyRequestsException``), HTTP 400 for JSON services and 429 for REST ones, before the
  call reaches moto, as AWS refuses a throttled call before acting on it;
- **5xx blips**: ``error_share`` of the calls answer HTTP 500 with the service's modelled server
  error (e.g. Batch's ``ServerException``, Glue's ``InternalServiceException``) or ``InternalFailure``;
  ``error_after_share`` of those happen *after* moto handled the call (the job started, the answer
  was lost), the case an idempotency token is for;
- **slow answers**: ``slow_share`` of the calls wait ``slow_seconds`` before they are handled;
- ``operations`` limits the faults to those operations (``["UpdateItem"]``), and ``error_code``
  makes the failing calls answer that error (HTTP 400, e.g. ``AccessDeniedException``) instead
  of the service's 5xx: a refusal that is not AWS's bad moment.

Configuration: the environment variable ``FAKE_AWS_FAULTS`` (JSON, read when the server starts:
``make serve FAKE_AWS_FAULTS='{"throttle_per_second": 5, "error_share": 0.01}'``), or at run time
``POST /moto-api/fake-aws/faults`` with the same JSON (fields left out keep their value;
``"reset": true`` first restores the defaults, no faults; ``"reset_counts": true`` zeroes the
counts). ``GET /moto-api/fake-aws/faults`` answers the configuration and, per
``service:Operation``, the calls seen, throttled, failed and slowed.
``services`` names the signing names faults apply to (default: the seven job services the AWS
connectors start jobs with); the store's DynamoDB (``dynamodb``), Secrets Manager
(``secretsmanager``), SSM (``ssm``) and CloudWatch Logs (``logs``) are faulted only when named, and
a name the fake cannot fault (S3, STS, a typo) is refused. ``seed`` makes a run repeatable. A
configuration with a bad field is refused whole: nothing of it is applied.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import botocore.session
from moto.moto_api._internal import urls
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from ._support import wraps_method

# signing name -> botocore service name, for the services the AWS connectors call
MODEL_NAMES = {
    "athena": "athena",
    "batch": "batch",
    "emr-serverless": "emr-serverless",
    "glue": "glue",
    "logs": "logs",
    "redshift-data": "redshift-data",
    "sagemaker": "sagemaker",
    "states": "stepfunctions",
    # Not job services, faulted only when named: the task table and where connector secrets live.
    "dynamodb": "dynamodb",
    "secretsmanager": "secretsmanager",
    "ssm": "ssm",
}
JOB_SERVICES = ("athena", "batch", "emr-serverless", "glue", "redshift-data", "sagemaker", "states")
_THROTTLE_NAMES = ("ThrottlingException", "TooManyRequestsException", "ThrottledException")
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


@dataclass
class FaultSettings:
    throttle_per_second: float = 0.0  # 0: no throttling
    error_share: float = 0.0
    error_after_share: float = 0.5
    slow_share: float = 0.0
    slow_seconds: float = 10.0
    services: list[str] = field(default_factory=lambda: list(JOB_SERVICES))
    operations: list[str] = field(default_factory=list)  # empty: every operation of those services
    error_code: str = ""  # a 4xx error code the failing calls answer instead of the service's 5xx
    seed: int | None = None

    def update(self, given: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(given) - known - {"reset_counts", "reset"}
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {sorted(known)}")
        for name, value in given.items():
            if name in ("operations", "error_code"):
                if name == "error_code" and not isinstance(value, str):
                    raise ValueError("error_code: an AWS error code, e.g. 'AccessDeniedException'")
                if name == "operations" and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                    raise ValueError("operations: a list of operation names, e.g. ['UpdateItem']")
                setattr(self, name, value)
            elif name == "services":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("services: a list of signing names, e.g. ['batch', 'athena']")
                unknown_services = sorted(set(value) - set(MODEL_NAMES))
                if unknown_services:
                    raise ValueError(f"services: {unknown_services} cannot be faulted; known: {sorted(MODEL_NAMES)}")
                self.services = value
            elif name == "seed":
                if value is not None and (isinstance(value, bool) or not float(value).is_integer()):
                    raise ValueError(f"seed: {value!r} is not a whole number")
                self.seed = None if value is None else int(value)
            elif name not in ("reset_counts", "reset"):
                number = float(value)
                if not 0 <= number < float("inf") or (name.endswith("_share") and number > 1):
                    raise ValueError(f"{name}: {value!r} is out of range")
                setattr(self, name, number)


@dataclass
class _ServiceModel:
    protocol: str
    throttle_code: str
    server_code: str
    routes: list[tuple[str, re.Pattern[str], str]]  # (method, path pattern, operation), REST only


class Faults:
    """The faults in force and what they did; one per server process (:data:`FAULTS`)."""

    def __init__(self) -> None:
        self.settings = FaultSettings()
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - fault injection, not security
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self.counts: dict[str, Counter[str]] = {}
        self._models: dict[str, _ServiceModel] = {}

    def configure(self, given: dict[str, Any]) -> None:
        with self._lock:
            settings = FaultSettings() if given.get("reset") else copy.deepcopy(self.settings)
            settings.update(given)  # raises before anything is applied
            self.settings = settings
            if "seed" in given:
                self._random.seed(self.settings.seed)
            if given.get("reset_counts"):
                self.counts.clear()
            self._buckets.clear()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"settings": asdict(self.settings), "counts": {k: dict(v) for k, v in sorted(self.counts.items())}}

    def decide(self, service: str, operation: str) -> str:
        """What happens to this call: 'pass', 'throttle', 'error_before', 'error_after' or 'slow'."""
        with self._lock:
            counts = self.counts.setdefault(f"{service}:{operation}", Counter())
            counts["calls"] += 1
            chosen = self.settings
            if service not in chosen.services or (chosen.operations and operation not in chosen.operations):
                return "pass"
            if chosen.throttle_per_second > 0 and not self._take_token(service, operation):
                counts["throttled"] += 1
                return "throttle"
            draw = self._random.random()
            if draw < chosen.error_share:
                after = self._random.random() < chosen.error_after_share
                counts["failed_after" if after else "failed_before"] += 1
                return "error_after" if after else "error_before"
            if draw < chosen.error_share + chosen.slow_share:
                counts["slowed"] += 1
                return "slow"
            return "pass"

    def _take_token(self, service: str, operation: str) -> bool:
        rate = self.settings.throttle_per_second
        burst = max(1.0, rate)
        now = time.monotonic()
        tokens, at = self._buckets.get((service, operation), (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[(service, operation)] = (tokens, now)
            return False
        self._buckets[(service, operation)] = (tokens - 1, now)
        return True

    def model(self, service: str) -> _ServiceModel:
        with self._lock:
            known = self._models.get(service)
        if known is None:
            known = _load_model(service)
            with self._lock:
                self._models[service] = known
        return known


def _load_model(service: str) -> _ServiceModel:
    model = botocore.session.get_session().get_service_model(MODEL_NAMES[service])
    names = set(model.shape_names)
    throttle = next((name for name in _THROTTLE_NAMES if name in names), "ThrottlingException")
    server = "InternalFailure"
    for name in sorted(names):
        shape = model.shape_for(name)
        if shape.metadata.get("exception") and int(shape.metadata.get("error", {}).get("httpStatusCode", 0)) >= 500:
            server = shape.metadata.get("error", {}).get("code", name)
            break
    routes = []
    if model.protocol in ("rest-json", "rest-xml"):
        for operation in model.operation_names:
            http = model.operation_model(operation).http
            uri = http["requestUri"].split("?")[0]
            pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.sub(r"\\\{[^}+]+\\\}", "[^/]+", re.escape(uri)))
            routes.append((http["method"], re.compile(f"^{pattern}/?$"), operation))
    return _ServiceModel(model.protocol, throttle, server, routes)


def _call_of(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(signing name, operation) of an AWS API call, or None (moto's own API, an unsigned call)."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None or found.group(1) not in MODEL_NAMES:
        return None
    service = found.group(1)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    for route_method, pattern, operation in FAULTS.model(service).routes:
        if route_method == method and pattern.match(path):
            return service, operation
    return service, f"{method} {path}"


def _error(start_response: Any, service: str, throttled: bool) -> list[bytes]:
    model = FAULTS.model(service)
    refused = FAULTS.settings.error_code if not throttled else ""
    code = model.throttle_code if throttled else refused or model.server_code
    message = "Rate exceeded" if throttled else "We encountered an internal error. Please try again."
    if refused:
        message = f"{refused} (fake AWS fault)"
    if model.protocol == "json":
        status = "400 Bad Request" if throttled or refused else "500 Internal Server Error"
        headers, body = [], {"__type": code, "message": message}
    else:
        status = "429 Too Many Requests" if throttled else "400 Bad Request" if refused else "500 Internal Server Error"
        headers, body = [("x-amzn-ErrorType", code)], {"message": message}
    data = json.dumps(body).encode("utf-8")
    content_type = "application/x-amz-json-1.1" if model.protocol == "json" else "application/json"
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers])
    return [data]


@wraps_method(DomainDispatcherApplication, "__call__")
def _dispatch(original: Any, self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    call = _call_of(environ)
    if call is None:
        return original(self, environ, start_response)
    service, operation = call
    fate = FAULTS.decide(service, operation)
    if fate == "throttle" or fate == "error_before":
        return _error(start_response, service, throttled=fate == "throttle")
    if fate == "slow":
        time.sleep(FAULTS.settings.slow_seconds)
    if fate == "error_after":  # moto acts on the call; its answer is lost
        answer = original(self, environ, lambda *args, **kwargs: None)
        for _ in answer:
            pass
        if hasattr(answer, "close"):
            answer.close()
        return _error(start_response, service, throttled=False)
    return original(self, environ, start_response)


def _endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    out = {"Content-Type": "application/json"}
    if request.method == "POST":
        try:
            size = int(headers.get("Content-Length") or 0)
            given = json.loads(request.environ["wsgi.input"].read(size).decode("utf-8") or "{}")
            if not isinstance(given, dict):
                raise ValueError("a JSON object of fault settings")
            FAULTS.configure(given)
        except (ValueError, TypeError) as error:
            return 400, out, json.dumps({"message": str(error)}).encode("utf-8")
    return 200, out, json.dumps(FAULTS.report()).encode("utf-8")


FAULTS = Faults()
if os.environ.get("FAKE_AWS_FAULTS"):
    FAULTS.configure(json.loads(os.environ["FAKE_AWS_FAULTS"]))
urls.url_paths["{0}/moto-api/fake-aws/faults"] = _endpoint
