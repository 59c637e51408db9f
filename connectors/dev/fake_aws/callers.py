"""Who made each call: the access key id of every signed request, and what each AssumeRole asked.

moto accepts any signature and keeps no record of who signed what; AWS names the caller of every
call in CloudTrail. This module notes, for each signed request to the fake AWS, the access key id
of its SigV4 ``Credential`` (the service's own key, or the key of a role session the service
assumed), the signing name and the operation; and for each STS AssumeRole the parameters sent
(RoleArn, RoleSessionName, SourceIdentity, the session tags) and the access key id of the session
it answered (moto ignores the tags and the source identity, so they are read from the request).

``GET /moto-api/fake-aws/callers`` answers ``{"calls": [...]}``, oldest first (the last 20,000);
``POST`` with ``{"reset": true}`` forgets them. It only watches: nothing a call does or answers
changes (faults.py's throttles and blips still apply, and are noted like any call).
"""

from __future__ import annotations

import collections
import io
import json
import re
import threading
import urllib.parse
from typing import Any

from moto.moto_api._internal import urls
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from ._support import wraps_method
from .faults import MODEL_NAMES, _call_of

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")
_ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
LIMIT = 20_000

_calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=LIMIT)
_lock = threading.Lock()


def _form(body: bytes) -> dict[str, str]:
    return {key: values[-1] for key, values in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}


def _assume_role_request(form: dict[str, str]) -> dict[str, Any]:
    tags = {}
    for name, value in form.items():
        found = re.fullmatch(r"Tags\.member\.(\d+)\.Key", name)
        if found:
            tags[value] = form.get(f"Tags.member.{found.group(1)}.Value", "")
    return {
        "role_arn": form.get("RoleArn", ""),
        "role_session_name": form.get("RoleSessionName", ""),
        "source_identity": form.get("SourceIdentity", ""),
        "duration_seconds": form.get("DurationSeconds", ""),
        "tags": tags,
    }


@wraps_method(DomainDispatcherApplication, "__call__")
def _note(original: Any, self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:  # moto's own API, an unsigned call
        return original(self, environ, start_response)
    access_key, service = found.groups()
    call: dict[str, Any] = {"access_key": access_key, "service": service, "operation": ""}
    if service in MODEL_NAMES:
        named = _call_of(environ)
        call["operation"] = named[1] if named else ""
    elif environ.get("HTTP_X_AMZ_TARGET"):
        call["operation"] = environ["HTTP_X_AMZ_TARGET"].rsplit(".", 1)[-1]
    if service == "sts":  # a query-protocol form: read it, and hand moto the same bytes
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = _form(body)
        call["operation"] = form.get("Action", "")
        if call["operation"] == "AssumeRole":
            call["assume_role"] = _assume_role_request(form)
            answer = b"".join(original(self, environ, _keep_status(start_response, call)))
            key = _ACCESS_KEY.search(answer)
            call["assume_role"]["answered_access_key"] = key.group(1).decode() if key else ""
            with _lock:
                _calls.append(call)
            return [answer]
    with _lock:
        _calls.append(call)
    return original(self, environ, start_response)


def _keep_status(start_response: Any, call: dict[str, Any]) -> Any:
    def start(status: str, headers: Any, *args: Any) -> Any:
        call["status"] = int(status.split()[0])
        return start_response(status, headers, *args)

    return start


def _endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    out = {"Content-Type": "application/json"}
    if request.method == "POST":
        size = int(headers.get("Content-Length") or 0)
        given = json.loads(request.environ["wsgi.input"].read(size).decode("utf-8") or "{}")
        if isinstance(given, dict) and given.get("reset"):
            with _lock:
                _calls.clear()
    with _lock:
        listed = list(_calls)
    return 200, out, json.dumps({"calls": listed}).encode("utf-8")


urls.url_paths["{0}/moto-api/fake-aws/callers"] = _endpoint
