"""What a connector's remote publishes about its jobs: EventBridge state-change events.

All eight AWS services the built-in connectors start jobs on put a "... State Change" event on
the account's default event bus whenever a job's status changes, for free. A connector that
declares :class:`JobEvents` (``job_events`` on the class) lets the service keep its tasks'
records current from those events (connectors/event_receiver.py) instead of reading each job's
status on every poll: a poll then reads the remote only when the record's status is older than
``StatusSafetyReadMinutes`` (events can be lost), and once for a SUCCEEDED job's outputs.

A connector with events implements, beside ``job_events``:

- ``job_key(resource_meta)``: the key of the job a create started, as ``job_events.key`` reads
  it from an event's detail (a job id, an ARN); stored with the task's record and indexed, so an
  event leads to its task with one query;
- ``resource_from_event(detail, resource_meta)``: the job's phase and message from an event's
  detail, as ``get`` would report them; None when the event does not tell (the next poll reads).
  The built-in AWS connectors map the detail through the very function ``get`` maps the describe
  answer with (the detail as it is where AWS documents it as the describe shape, translated into
  that shape where not), and answer None where the detail lacks what that mapping decides a
  phase by (:func:`detail_status`): a phase is never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# DynamoDB's limit on a partition key value, an index's as the table's ("Service, account, and
# table quotas"): a write whose ``job_key`` is longer is refused whole.
INDEX_KEY_BYTES = 2048


@dataclass(frozen=True)
class JobEvents:
    """The EventBridge events a remote publishes when one of its jobs changes status."""

    source: str  # the event's "source": "aws.batch"
    detail_type: str  # its "detail-type": "Batch Job State Change"
    key: Callable[[Mapping[str, Any]], str | None]  # the job's key from the event's "detail"

    def pattern(self) -> dict[str, Any]:
        """The EventBridge rule pattern that matches these events (template.yaml and make serve)."""
        return {"source": [self.source], "detail-type": [self.detail_type]}


def detail_field(*names: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A ``key`` reading the first of ``names`` present in the detail as a string; joined with
    '/' when several are named with ``+`` (``"applicationId+jobRunId"``)."""

    def key(detail: Mapping[str, Any]) -> str | None:
        for name in names:
            parts = [detail.get(part) for part in name.split("+")]
            if all(isinstance(part, str) and part for part in parts):
                return "/".join(parts)  # type: ignore[arg-type]
        return None

    return key


def detail_status(
    detail: Mapping[str, Any], field: str, known: Collection[str], needs: Mapping[str, str | None] | None = None
) -> str | None:
    """The status word at ``field`` of an event's detail, when it is one of ``known`` and the
    detail holds what the connector's mapping decides that word's phase by: ``needs`` maps a word
    to the field read for it (None: a field its events never carry). Else None: the poll reads
    the job (a word the remote added since is read there too, and reported as a poll reports it)."""
    word = detail.get(field)
    if not isinstance(word, str) or word not in known:
        return None
    needs = needs or {}
    if word in needs and (needs[word] is None or not detail.get(needs[word] or "")):
        return None
    return word


def job_key_of(connector: Any, resource_meta: Any) -> str | None:
    """The indexed key of the job ``create`` started: the task type, then the connector's key
    (two connectors on one event source, SageMaker's training and processing jobs, never meet).
    None, with a warning, for a key DynamoDB cannot index: the job is started by now, and its task
    is kept without the key (its polls read the job, as a connector's without events do) rather
    than lost to a refused write. Raises what the connector's ``job_key`` raises."""
    if connector.job_events is None:
        return None
    key = connector.job_key(resource_meta)
    indexed = _indexed(connector, key)
    if key and indexed is None:
        logger.warning(
            "%s: a job key of %d characters is no DynamoDB index key (over %d bytes, or not UTF-8); "
            "the task is kept, not indexed for events (its polls read the job)",
            connector.name,
            len(str(key)),
            INDEX_KEY_BYTES,
        )
    return indexed


def event_job_key(connector: Any, detail: Mapping[str, Any]) -> str | None:
    """The indexed key an event's detail names for ``connector``'s jobs, as :func:`job_key_of`
    (None for a key no task can be indexed by: no query is made for it). Raises what the
    connector's ``job_events.key`` raises."""
    key = connector.job_events.key(detail) if connector.job_events is not None else None
    return _indexed(connector, key)


def _indexed(connector: Any, key: Any) -> str | None:
    if not key:
        return None
    indexed = f"{connector.task_type_name}#{key}"
    try:
        size = len(indexed.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 string DynamoDB would hold
        return None
    return indexed if size <= INDEX_KEY_BYTES else None


__all__ = ["JobEvents", "detail_field", "detail_status", "event_job_key", "job_key_of"]
