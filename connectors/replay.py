"""How long a create whose answer was lost may be replayed to find its job (issue 17).

A create whose answer was lost (its deadline, a killed Lambda, DynamoDB cut before the record was
finished) leaves a claim with no job id. The same attempt's next CreateTask, a newer attempt and
the reaper find that job by calling ``create`` again with the attempt's idempotency token, which
the remote answers with the job it already started: for as long as it honours the key. Past that,
a replay may start a second job (which the canceller would then stop, while the first runs on
unobserved).

Each connector declares that window (``AsyncConnector.replay_window``, what its remote documents
for the key); a connector whose remote documents none is bounded by the deployment's
``REPLAY_WINDOW_MINUTES``. The window counts from the attempt's first claim (``created_at``, taken
just before its first create and kept when a retry takes the claim over). A create whose outcome
is unknown and whose window has passed is not replayed: its record ends with a message saying
where the job, if it started, may be found, with a WARNING line and
``flyte_connector_suspected_orphans_total``. Inside the window nothing changes.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from flyteidl2.connector import connector_pb2 as pb

from .connector import AsyncConnector
from .observability import metrics
from .settings import Settings
from .store import TaskRecord

logger = logging.getLogger(__name__)


def replay_window(connector: AsyncConnector[Any], settings: Settings) -> tuple[float, bool]:
    """The connector's replay window in seconds, and whether its remote documents it (else it is
    the deployment's bound)."""
    declared = getattr(connector, "replay_window", None)
    if declared is None:
        return max(0.0, settings.replay_window_minutes * 60), False
    seconds = declared.total_seconds() if isinstance(declared, datetime.timedelta) else float(declared)
    return max(0.0, seconds), True


def past_replay_window(connector: AsyncConnector[Any], record: TaskRecord, settings: Settings, now: float) -> bool:
    """Whether a replay of ``record``'s create now comes later after its first try than the
    connector's window: it could start a second job instead of finding the first."""
    window, _ = replay_window(connector, settings)
    return now - record.created_at > window


def unreplayed_message(
    connector: AsyncConnector[Any],
    record: TaskRecord,
    request: pb.CreateTaskRequest | None,
    token: str,
    settings: Settings,
    now: float,
) -> str:
    """What the record of a create not replayed past its window says: why, and where to look."""
    window, documented = replay_window(connector, settings)
    why = (
        "how long its remote honours the key"
        if documented
        else "the deployment's REPLAY_WINDOW_MINUTES: its remote documents no window for the key"
    )
    first = datetime.datetime.fromtimestamp(record.created_at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"its job, if it started, could not be found safely: the create first tried {first} may have "
        f"started one and lost its answer, and a replay now ({_span(now - record.created_at)} later) is past "
        f"{record.task_type}'s replay window ({_span(window)}, {why}), where it could start a second job "
        f"instead of finding the first. It was not replayed: if a job started, it runs unobserved; look for "
        f"{_hint(connector, request, token)}."
    )


def report_unreplayed(record: TaskRecord, message: str) -> None:
    """The WARNING line and the metric of a create not replayed past its window."""
    logger.warning("create of %s not replayed: %s", record.name, message)
    metrics.suspected_orphan(record.task_type)


def _hint(connector: AsyncConnector[Any], request: pb.CreateTaskRequest | None, token: str) -> str:
    generic = f"a job started with idempotency token {token}"
    if request is None:
        return generic
    try:
        return connector.replay_hint(request.template, token, request.task_execution_metadata) or generic
    except Exception:  # a template the connector cannot read: the token still names the job
        logger.debug("replay_hint of %s failed", connector.name, exc_info=True)
        return generic


def _span(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


__all__ = ["past_replay_window", "replay_window", "report_unreplayed", "unreplayed_message"]
