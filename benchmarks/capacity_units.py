"""DynamoDB's capacity units, as DynamoDB charges them: an item's size, the read and write request
units of a size, and the index writes one table write makes (:class:`IndexSchema`).

The DynamoDB Developer Guide (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/):
read-write-operations.html (read and write units; a write counts the larger of the item before
and after), CapacityUnitCalculations.html (item sizes), GSI.html (which table writes write an
index, and how often), WorkingWithItems.html (a failed conditional write still consumes units:
the size of the item it found, at least one)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

READ_UNIT_BYTES = 4096  # one strongly consistent read of up to 4 KB (eventually consistent: half)
WRITE_UNIT_BYTES = 1024  # one write of up to 1 KB, to the table or to an index
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
READS = ("GetItem", "Query", "Scan")
SINGLE_ITEM_CALLS = (*WRITES, "GetItem")


def number_bytes(text: str) -> int:
    """A number: 1 byte per two significant digits (leading and trailing zeros dropped), plus 1."""
    digits = Decimal(text).normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1


def value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(inner)
    if kind == "N":
        return number_bytes(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode("utf-8")) for text in inner)
    if kind == "NS":
        return sum(number_bytes(text) for text in inner)
    if kind == "BS":
        return sum(len(data) for data in inner)
    if kind == "M":  # 3 bytes, and each element its name, its value and 1 byte
        return 3 + sum(len(name.encode("utf-8")) + value_bytes(element) + 1 for name, element in inner.items())
    if kind == "L":
        return 3 + sum(value_bytes(element) + 1 for element in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_bytes(item: dict[str, Any] | None) -> int:
    """An item's size as DynamoDB counts it: each attribute's name and value."""
    return sum(len(name.encode("utf-8")) + value_bytes(value) for name, value in (item or {}).items())


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


@dataclass(frozen=True)
class IndexSchema:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # KEYS_ONLY, INCLUDE or ALL
    non_key: tuple[str, ...] = ()

    def entry(self, item: dict[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The index's copy of ``item``; None when the item is not in this (sparse) index."""
        if item is None or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(table_keys) | set(self.keys) | (set(self.non_key) if self.projection == "INCLUDE" else set())
        return {name: item[name] for name in names if name in item}

    def writes(
        self, before: dict[str, Any] | None, after: dict[str, Any] | None, table_keys: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        """The index writes one table write makes: (what, entry bytes) each."""
        old, new = self.entry(before, table_keys), self.entry(after, table_keys)
        if old is None and new is None:
            return []
        if old is None:
            return [("put", item_bytes(new))]
        if new is None:
            return [("delete", item_bytes(old))]
        if any(old[key] != new[key] for key in self.keys):  # the entry moves: delete it, put the new one
            return [("delete", item_bytes(old)), ("put", item_bytes(new))]
        if old != new:  # a projected attribute changed in place
            return [("update", max(item_bytes(old), item_bytes(new)))]
        return []
