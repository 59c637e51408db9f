"""Jobs' state changes as the real services' EventBridge events, on moto's default event bus.

AWS puts a "... State Change" event on the account's default bus whenever one of its jobs
changes status (each service's event and detail: ``_event_sources.py``). moto's services do not,
and their jobs mostly move only when described. When asked, this module does both, in a
background thread: every ``interval_seconds`` (0.5) it looks at every job of Batch, Athena,
Step Functions, SageMaker (training and processing), EMR Serverless, Glue and Redshift Data in
moto's backends, moves it on as a describe of it would (so jobs progress with time, as on AWS,
with nobody polling), and when its status differs from the last one published puts the service's
event on that account's and region's default bus. moto's EventBridge then delivers it to every
rule that matches (an SQS queue target: ``connectors serve``'s consumer, connectors/dev/status_events.py).

- Off unless asked: ``FAKE_AWS_EVENTS=1`` when the server starts, or
  ``POST /moto-api/fake-aws/events {"enabled": true}`` (``"interval_seconds"`` sets the tick);
  ``GET`` answers the switch and what was published, per detail-type. Jobs that exist when it is
  turned on publish only their changes from then on.
- A job whose model a test holds (``world.hold``: a ``manual`` transition set through
  ``/moto-api/state-manager/set-transition``) is looked at but never moved on: it moves only as
  its describes say, and its events follow. Other transitions set there (``time``) apply as set.
- A job is left alone once an ending state of it was seen (AWS never changes an ended job).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from moto.events.models import events_backends
from moto.moto_api import state_manager
from moto.moto_api._internal import urls

from ._event_source import Source
from ._event_sources import SOURCES

logger = logging.getLogger(__name__)
DEFAULT_INTERVAL = 0.5


@dataclass
class _Seen:
    state: str
    sequence: int = 0  # events published for the job (Athena's sequenceNumber)


def held(model: str | None) -> bool:
    """Whether someone set ``model`` to manual progression (world.hold): moto's defaults are not
    set ones, so Batch's own one-step-per-describe default is not a hold."""
    chosen = state_manager._transitions.get(model) if model else None  # set-transition's only
    return chosen is not None and chosen.get("progression") == "manual"


class Publisher:
    """The switch, the thread and what was published; one per server process (:data:`PUBLISHER`)."""

    def __init__(self, sources: tuple[Source, ...] = SOURCES) -> None:
        self.sources = sources
        self.enabled = False
        self.interval = DEFAULT_INTERVAL
        self.published: Counter[str] = Counter()
        self.errors = 0
        self.last_error = ""
        self._seen: dict[tuple[str, str, str, str], _Seen] = {}
        self._lock = threading.Lock()  # the settings and counts
        self._looking = threading.Lock()  # one look at a time
        self._thread: threading.Thread | None = None

    def configure(self, given: dict[str, Any]) -> None:
        unknown = set(given) - {"enabled", "interval_seconds"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: enabled, interval_seconds")
        interval = float(given.get("interval_seconds", self.interval))
        if not 0.05 <= interval <= 60:
            raise ValueError("interval_seconds: between 0.05 and 60")
        enabled = self.enabled
        if "enabled" in given:
            enabled = given["enabled"] is True or str(given["enabled"]).lower() in ("1", "true")
        if enabled and not self.enabled:
            self.look(baseline=True)  # what exists now publishes its changes from now on
        with self._lock:
            self.interval, self.enabled = interval, enabled
            if self.enabled and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="fake-aws-state-events", daemon=True)
                self._thread.start()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.enabled,
                "interval_seconds": self.interval,
                "published": dict(sorted(self.published.items())),
                "errors": self.errors,
                "last_error": self.last_error,
            }

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            if self.enabled:
                self.look()

    def look(self, baseline: bool = False) -> int:
        """Look at every job once: move it on, publish its change; the events published. A
        ``baseline`` look only records each job's state: no job moves, nothing is published."""
        published = 0
        with self._looking:
            for source in self.sources:
                try:
                    jobs = list(source.jobs())
                except Exception as error:  # a backend changing under us: next time
                    self._failed(source, error)
                    continue
                for account, region, job in jobs:
                    try:
                        published += self._look_at(source, account, region, job, baseline)
                    except Exception as error:  # one job must not stop the others
                        self._failed(source, error)
        return published

    def _look_at(self, source: Source, account: str, region: str, job: Any, baseline: bool) -> int:
        key = (source.detail_type, account, region, source.key(job))
        seen = self._seen.get(key)
        if seen is not None and seen.state in source.ended:
            return 0
        source.drive(job, not baseline and not held(source.model))
        state = source.state(job)
        if seen is not None and seen.state == state:
            return 0
        previous = seen.state if seen is not None else None
        seen = self._seen[key] = _Seen(state, seen.sequence if seen is not None else 0)
        if baseline or not source.publishes(job, state):
            return 0
        seen.sequence += 1
        entry = {
            "Source": source.source,
            "DetailType": source.detail_type,
            "Detail": json.dumps(source.detail(job, previous, seen.sequence, (account, region)), default=str),
            "Resources": source.resources(job, (account, region)),
        }
        answer = events_backends[account][region].put_events([entry])
        if answer and answer[0].get("ErrorCode"):
            raise RuntimeError(f"PutEvents: {answer[0]['ErrorCode']}: {answer[0].get('ErrorMessage')}")
        with self._lock:
            self.published[source.detail_type] += 1
        return 1

    def _failed(self, source: Source, error: Exception) -> None:
        logger.warning("state events of %s: %s: %s", source.detail_type, type(error).__name__, error)
        with self._lock:
            self.errors += 1
            self.last_error = f"{source.detail_type}: {type(error).__name__}: {error}"


def _endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    out = {"Content-Type": "application/json"}
    if request.method == "POST":
        size = int(headers.get("Content-Length") or 0)
        try:
            given = json.loads(request.environ["wsgi.input"].read(size).decode("utf-8") or "{}")
            if not isinstance(given, dict):
                raise ValueError('a JSON object: {"enabled": true}')
            PUBLISHER.configure(given)
        except (ValueError, TypeError) as error:
            return 400, out, json.dumps({"message": str(error)}).encode("utf-8")
    return 200, out, json.dumps(PUBLISHER.report()).encode("utf-8")


def start_from_environment() -> None:
    """``FAKE_AWS_EVENTS`` (1/true, or the JSON settings) turns publishing on as the server starts."""
    given = os.environ.get("FAKE_AWS_EVENTS", "").strip()
    if not given or given.lower() in ("0", "false", "no"):
        return
    PUBLISHER.configure({"enabled": True, **(json.loads(given) if given.startswith("{") else {})})


PUBLISHER = Publisher()
urls.url_paths["{0}/moto-api/fake-aws/events"] = _endpoint
