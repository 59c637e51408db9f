"""The log links a task's record keeps: those the last status read reported (a state-change event
updates them too), so that a GetTask answered from the record carries them as a read's answer
does (connectors/answers.py).

Stored as ``log_links``, a Resource holding only its repeated TaskLog, serialized (every field a
connector set: name, uri, link type, readiness...), as the answer carried it: already without the
request's secrets. At most ``LOG_LINKS_BYTES``: the links past it are dropped, the first kept in
order, so links never make a write the item-size budget refuses. A poll writes them with its
phase and message, and only when they changed (store/lifecycle.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskLog
from google.protobuf.message import DecodeError

from .budget import LOG_LINKS_BYTES

logger = logging.getLogger(__name__)


def encode_links(links: Iterable[TaskLog]) -> bytes | None:
    """What the record keeps of ``links``: the first that fit in ``LOG_LINKS_BYTES``; None for none."""
    kept = pb.Resource()
    given = list(links)
    for link in given:
        kept.log_links.add().CopyFrom(link)
        if kept.ByteSize() > LOG_LINKS_BYTES:
            del kept.log_links[-1]
            logger.warning(
                "%d of %d log links kept in the task's record (at most %d bytes)",
                len(kept.log_links),
                len(given),
                LOG_LINKS_BYTES,
            )
            break
    return kept.SerializeToString() or None


def decode_links(stored: bytes | None) -> list[TaskLog]:
    """The links a record keeps (none when it keeps none, or what it keeps cannot be read)."""
    if not stored:
        return []
    try:
        return list(pb.Resource.FromString(stored).log_links)
    except DecodeError:  # not written by encode_links: an answer without links, not a failed GetTask
        logger.warning("a task record's log links cannot be read; answered without them")
        return []


def merge_links(stored: bytes | None, reported: Iterable[TaskLog]) -> bytes | None:
    """What the record keeps after a state-change event: its links, each the event reports (by
    name) in place of the stored one, and the event's others after them. An event may know less
    than a read (Glue's does not name the run's log group): a link it does not report stays."""
    links = decode_links(stored)
    where = {link.name: n for n, link in enumerate(links)}
    for link in reported:
        if link.name in where:
            links[where[link.name]] = link
        else:
            where[link.name] = len(links)
            links.append(link)
    return encode_links(links)


def links_set(stored: bytes | None, links: bytes | None) -> str:
    """The SET part of an update that leaves ``links`` where ``stored`` is (the record read, at the
    version the write is conditional on): ``, log_links = :links`` (:func:`links_values`), or ""
    when they are the same or there are none to set."""
    return "" if links == stored or links is None else ", log_links = :links"


def links_removed(stored: bytes | None, links: bytes | None) -> str:
    """The attribute an update removes when ``links`` is none and ``stored`` is some; else ""."""
    return "log_links" if links is None and stored is not None else ""


def links_values(stored: bytes | None, links: bytes | None) -> dict[str, dict[str, bytes]]:
    return {":links": {"B": links}} if links is not None and links != stored else {}


__all__ = ["decode_links", "encode_links", "links_removed", "links_set", "links_values", "merge_links"]
