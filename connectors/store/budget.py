"""The item-size budget: a record that is accepted can take every later write of its life.

DynamoDB refuses an item over 400 KB, and a refused write in the middle of a task's life would
leave a record that cannot move (answered ``internal`` on every poll). So a record is measured
before its first write (the claim) and again before connector metadata joins it (the finish),
with room kept for the most that later writes can add: a message, the notes, the log links a
read reported, and the small attributes the transitions set (lease, heartbeat, shard,
timestamps, a longer state name). Messages and notes are cut to their sizes when stored, and
links past theirs are dropped (store/log_links.py; answers keep them whole).
"""

from __future__ import annotations

from typing import Any

from ..errors import resource_exhausted

# DynamoDB's limit is "400 KB" (409,600 bytes); 400,000 is the reading no implementation refuses
# (moto's server stops at 405,000 and counts a binary value by its base64 length).
MAX_ITEM_BYTES = 400_000
MESSAGE_BYTES = 16 * 1024
NOTE_BYTES = 1024
MAX_NOTES = 20
# The log links a record keeps (serialized TaskLogs): a console link and a log stream's are a few
# hundred bytes each. moto's server counts a binary value by its base64 length (4/3 of this).
LOG_LINKS_BYTES = 4 * 1024
# DynamoDB stores a number in at most 21 bytes; an attribute costs its name's length too.
NUMBER_BYTES = 21
# What transitions add besides the message and notes (names and values): state, lease_owner
# (16 bytes), lease_expires_at, heartbeat_at, active_shard, updated_at, version, expires_at,
# phase, withdrawn. Counted generously: each transition's attributes together stay well under this.
TRANSITION_ATTRIBUTES_BYTES = 512
_NOTES_BYTES = len("notes") + 3 + MAX_NOTES * (1 + NOTE_BYTES)
# moto's server, while it replaces an attribute, counts its old value beside the new one (the
# notes list is the largest attribute replaced): that room is kept too, so that the boundary
# shown against it holds on DynamoDB with 21 KB to spare.
_REPLACEMENT_BYTES = _NOTES_BYTES
_LOG_LINKS_ROOM = len("log_links") + LOG_LINKS_BYTES
LATER_GROWTH_BYTES = (
    len("message") + MESSAGE_BYTES + _NOTES_BYTES + _LOG_LINKS_ROOM + TRANSITION_ATTRIBUTES_BYTES + _REPLACEMENT_BYTES
)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, marked with an ellipsis when cut."""
    data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
    if len(data) <= limit:
        return data.decode("utf-8")
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def item_bytes(item: dict[str, Any]) -> int:
    """An upper bound of an item's size as DynamoDB counts it: names and values."""
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(inner)
    if kind == "N":
        return NUMBER_BYTES
    if kind == "M":
        return 3 + len(inner) + item_bytes(inner)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(item) for item in inner)
    return 1


def check_fits(item: dict[str, Any], extra: dict[str, bytes] | None = None) -> int:
    """The item's size with ``extra`` binary attributes and later growth; ``resource_exhausted``
    (naming what takes the room) when that is over DynamoDB's limit."""
    extra = extra or {}
    size = item_bytes(item) + sum(len(name) + len(value) for name, value in extra.items()) + LATER_GROWTH_BYTES
    if size > MAX_ITEM_BYTES:
        parts = {name: _value_bytes(value) for name, value in item.items()}
        parts.update({name: len(value) for name, value in extra.items()})
        largest = ", ".join(f"{name} {n} bytes" for name, n in sorted(parts.items(), key=lambda p: -p[1])[:3])
        raise resource_exhausted(
            f"this task's record would need {size} bytes ({largest}, and {LATER_GROWTH_BYTES} kept for later "
            f"messages, notes and log links); the task store holds {MAX_ITEM_BYTES} bytes per task"
        )
    return size


__all__ = [
    "LATER_GROWTH_BYTES",
    "LOG_LINKS_BYTES",
    "MAX_ITEM_BYTES",
    "MAX_NOTES",
    "MESSAGE_BYTES",
    "NOTE_BYTES",
    "check_fits",
    "clip",
    "item_bytes",
]
