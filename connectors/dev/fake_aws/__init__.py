"""moto's server, with what the AWS connectors rely on and moto does not do (yet).

``python -m connectors.dev.fake_aws -H 127.0.0.1 -p PORT`` runs moto's server after applying,
from each module of this package, the AWS behaviours moto lacks: idempotency tokens honoured
(Athena's ClientRequestToken, Redshift Data's ClientToken, EMR Serverless's clientToken), a
name that exists refused (SageMaker), the stop calls moto has not implemented. Each patch is a
documented AWS behaviour, named where it is applied; none changes what moto already does.

It also adds ``POST /moto-api/fake-aws/fate`` so that tests and demos can decide how a job ends:
``{"service": "athena", "job": "<id or name>", "status": "FAILED", "reason": "..."}``. A job with
no fate runs as moto runs it (to success). ``GET /moto-api/fake-aws/fate`` lists the fates set.

``faults.py`` adds AWS's bad moments on demand (throttling at a set rate, 5xx blips, slow
answers): ``POST /moto-api/fake-aws/faults`` or ``FAKE_AWS_FAULTS`` at start.

``GET /moto-api/fake-aws/calls`` lists how often each start call reached the fake, by the key it
carried (``[{"service": "athena", "operation": "StartQueryExecution", "key": "<token>", "count": 2}]``):
a create replayed with the attempt's token is one more call even where it starts no second job.

``callers.py`` notes who signed each call (the access key id of its SigV4 credential) and what
each STS AssumeRole asked (tags, source identity): ``GET /moto-api/fake-aws/callers``.

``state_events.py`` publishes each job's status changes as its service's EventBridge event, the
jobs moving on with time as on AWS, when asked: ``POST /moto-api/fake-aws/events`` or
``FAKE_AWS_EVENTS=1`` at start (``connectors serve`` asks).

Not shipped to Lambda (connectors/dev/ is left out of the build).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

# service -> function(job id or name, status, reason) that sets a job's outcome in moto's backend
_FATE_SETTERS: dict[str, Callable[[str, str, str], None]] = {}
# (service, job) -> {"status", "reason"}: applied by each module's patch when moto reports the job
FATES: dict[tuple[str, str], dict[str, str]] = {}
# (service, operation, key) -> how many calls reached the fake (count_call)
CALLS: Counter[tuple[str, str, str]] = Counter()
_lock = threading.Lock()


def fate_setter(service: str) -> Callable[[Callable[[str, str, str], None]], Callable[[str, str, str], None]]:
    """Register how ``service``'s jobs get a fate applied when one is set (optional: a module
    may instead read :func:`fate_of` when moto describes the job)."""

    def register(fn: Callable[[str, str, str], None]) -> Callable[[str, str, str], None]:
        _FATE_SETTERS[service] = fn
        return fn

    return register


def fate_of(service: str, job: str) -> dict[str, str] | None:
    """The fate a test set for ``service``'s ``job`` (an id or a name), or None."""
    with _lock:
        return FATES.get((service, job))


def count_call(service: str, operation: str, key: str = "") -> None:
    """Count a call that reached the fake, by the idempotency key (token, name) it carried."""
    with _lock:
        CALLS[(service, operation, key)] += 1


def _calls_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    with _lock:
        listed = [{"service": s, "operation": o, "key": k, "count": n} for (s, o, k), n in CALLS.items()]
    return 200, {"Content-Type": "application/json"}, json.dumps(listed).encode("utf-8")


def _fate_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    out = {"Content-Type": "application/json"}
    if request.method == "POST":
        try:
            size = int(headers.get("Content-Length") or 0)
            body = json.loads(request.environ["wsgi.input"].read(size).decode("utf-8") or "{}")
            if not isinstance(body, dict) or not all(
                isinstance(body.get(name), str) and body[name] for name in ("service", "job", "status")
            ):
                raise ValueError('a JSON object with the strings "service", "job" and "status" (and "reason")')
        except ValueError as error:  # a fate stored half would break every describe of its job
            return 400, out, json.dumps({"message": f"fate: {error}"}).encode("utf-8")
        key = (body["service"], body["job"])
        fate = {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in body.items()
            if name not in ("service", "job")
        }
        fate.setdefault("reason", "")
        with _lock:
            FATES[key] = fate
        setter = _FATE_SETTERS.get(key[0])
        if setter is not None:
            setter(key[1], fate["status"], fate["reason"])
    with _lock:
        listed = [{"service": s, "job": j, **f} for (s, j), f in FATES.items()]
    return 200, out, json.dumps(listed).encode("utf-8")


def apply_patches() -> list[str]:
    """Import every module of this package (each applies its patches on import); their names."""
    from moto.moto_api._internal import urls

    urls.url_paths["{0}/moto-api/fake-aws/fate"] = _fate_endpoint
    urls.url_paths["{0}/moto-api/fake-aws/calls"] = _calls_endpoint
    applied = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
            applied.append(module.name)
    return applied
