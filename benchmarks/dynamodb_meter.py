"""The DynamoDB call meter: every call of one boto3 client (:class:`DynamoMeter`), each as a
:class:`DdbCall` with its time and the request units it consumes, computed from the items as
DynamoDB charges them (benchmarks/capacity_units.py); the calls of an operation as a
:class:`Usage`, and how the benchmarks print it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from capacity_units import SINGLE_ITEM_CALLS, WRITES, IndexSchema, item_bytes, read_units, write_units


@dataclass
class DdbCall:
    """One DynamoDB API call and the capacity it consumes."""

    api: str
    seconds: float = 0.0
    error: str | None = None
    consistent: bool = False
    read_units: float = 0.0
    table_write_units: int = 0
    index_writes: list[tuple[str, str, int]] = field(default_factory=list)  # (index, what, entry bytes)
    item_bytes: int = 0  # the table item the units are counted on (a write: the larger of before/after)
    reported: float | None = None  # ConsumedCapacity.CapacityUnits as the server answered it
    exact: bool = True  # False: the item before this write was not seen (its units are a guess)

    @property
    def is_write(self) -> bool:
        return self.api in WRITES

    @property
    def index_write_units(self) -> int:
        return sum(write_units(size) for _, _, size in self.index_writes)

    @property
    def write_units(self) -> int:
        return self.table_write_units + self.index_write_units


@dataclass
class Usage:
    """The calls of one operation (or of several, summed)."""

    calls: list[DdbCall]

    @property
    def by_api(self) -> Counter[str]:
        return Counter(call.api for call in self.calls)

    @property
    def writes(self) -> int:
        return sum(call.is_write for call in self.calls)

    @property
    def read_units(self) -> float:
        return sum(call.read_units for call in self.calls)

    @property
    def table_write_units(self) -> int:
        return sum(call.table_write_units for call in self.calls)

    @property
    def index_write_units(self) -> int:
        return sum(call.index_write_units for call in self.calls)

    @property
    def write_units(self) -> int:
        return self.table_write_units + self.index_write_units

    @property
    def seconds(self) -> float:
        return sum(call.seconds for call in self.calls)

    @property
    def exact(self) -> bool:
        return all(call.exact for call in self.calls)

    def describe(self, per: int = 1) -> str:
        """``GetItem 1 + UpdateItem 1`` (per operation when ``per`` operations are summed)."""
        if not self.calls:
            return "none"
        return " + ".join(f"{api} {count / per:g}" for api, count in sorted(self.by_api.items(), key=_api_order))

    def index_detail(self) -> str:
        """``put, delete+put``: the index writes of each write call, in order."""
        parts = ["+".join(what for _, what, _ in call.index_writes) for call in self.calls if call.is_write]
        return ", ".join(part or "-" for part in parts) or "-"


def _api_order(entry: tuple[str, int]) -> tuple[int, str]:
    order = ("GetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem")
    return (order.index(entry[0]) if entry[0] in order else len(order), entry[0])


class DynamoMeter:
    """Counts the DynamoDB calls of one boto3 client and the capacity units each consumes.

    Hooks the client's events: ``before-parameter-build`` asks for ``ReturnConsumedCapacity``
    (kept as ``reported``), ``before-call``/``after-call`` time each call, and ``after-call``
    computes its units from the items: the item a write replaces is the last one this client saw
    under that key (every call on the table goes through it here), or the one a failed
    conditional write answers (``ReturnValuesOnConditionCheckFailure``)."""

    def __init__(self, client: Any, table_name: str, describe_client: Any | None = None) -> None:
        table = (describe_client or client).describe_table(TableName=table_name)["Table"]
        self.table_name = table_name
        self.table_keys = tuple(key["AttributeName"] for key in table["KeySchema"])
        self.indexes = [
            IndexSchema(
                index["IndexName"],
                tuple(key["AttributeName"] for key in index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in table.get("GlobalSecondaryIndexes", [])
        ]
        self.calls: list[DdbCall] = []
        self._items: dict[str, dict[str, Any] | None] = {}  # key -> last item seen (None: known absent)
        self._lock = threading.Lock()
        events = client.meta.events
        for api in (*SINGLE_ITEM_CALLS, "Query", "Scan"):
            events.register(f"before-parameter-build.dynamodb.{api}", self._ask_capacity)
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        events.register("after-call-error.dynamodb.*", self._after_error)

    # -- reading ---------------------------------------------------------------------------

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def since(self, mark: int) -> Usage:
        with self._lock:
            return Usage(self.calls[mark:])

    @contextlib.contextmanager
    def measure(self) -> Iterator[Usage]:
        """``with meter.measure() as usage:`` the calls made inside the block."""
        usage = Usage([])
        mark = self.mark()
        try:
            yield usage
        finally:
            usage.calls = self.since(mark).calls

    def server_reports(self) -> str:
        """What the server answered for ReturnConsumedCapacity, per API."""
        seen: dict[str, set[str]] = {}
        with self._lock:
            for call in self.calls:
                seen.setdefault(call.api, set()).add("none" if call.reported is None else f"{call.reported:g}")
        return ", ".join(f"{api} {'/'.join(sorted(values))}" for api, values in sorted(seen.items()))

    # -- hooks -----------------------------------------------------------------------------

    @staticmethod
    def _ask_capacity(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "INDEXES")
        context["meter_params"] = params

    @staticmethod
    def _before_call(context: dict[str, Any], **_: Any) -> None:
        context["meter_started"] = time.perf_counter()

    def _after_error(self, context: dict[str, Any], exception: Exception, **kwargs: Any) -> None:
        api = kwargs.get("event_name", "").rsplit(".", 1)[-1] or "unknown"
        elapsed = time.perf_counter() - context.pop("meter_started", time.perf_counter())
        with self._lock:
            self.calls.append(DdbCall(api, elapsed, error=type(exception).__name__))

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        elapsed = time.perf_counter() - context.pop("meter_started", time.perf_counter())
        params = context.pop("meter_params", {})
        call = DdbCall(model.name, elapsed)
        if http_response.status_code >= 300:
            call.error = parsed.get("Error", {}).get("Code", str(http_response.status_code))
        consumed = parsed.get("ConsumedCapacity")
        if isinstance(consumed, dict) and "CapacityUnits" in consumed:
            call.reported = float(consumed["CapacityUnits"])
        with self._lock:
            if params.get("TableName") == self.table_name:
                self._count(call, params, parsed)
            self.calls.append(call)

    def _key(self, attributes: dict[str, Any]) -> str:
        return json.dumps({name: attributes[name] for name in self.table_keys}, sort_keys=True, default=str)

    def _count(self, call: DdbCall, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        api = call.api
        if api == "GetItem":
            item = parsed.get("Item")
            call.consistent = bool(params.get("ConsistentRead"))
            call.item_bytes = item_bytes(item)
            call.read_units = read_units(call.item_bytes, call.consistent) if call.error is None else 0.0
            if call.error is None:
                self._items[self._key(params["Key"])] = item
        elif api in ("Query", "Scan"):
            items = parsed.get("Items", [])
            call.consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            call.item_bytes = sum(item_bytes(item) for item in items)  # summed, then rounded up once
            call.read_units = read_units(call.item_bytes, call.consistent) if call.error is None else 0.0
            if call.error is None and "IndexName" not in params and "ProjectionExpression" not in params:
                for item in items:
                    self._items[self._key(item)] = item
        elif api in WRITES:
            key = self._key(params.get("Key") or params.get("Item") or {})
            call.exact = key in self._items or (
                api == "PutItem" and "attribute_not_exists" in params.get("ConditionExpression", "")
            )
            before = self._items.get(key)
            if call.error == "ConditionalCheckFailedException":
                found = parsed.get("Item", before)  # what ReturnValuesOnConditionCheckFailure answered
                self._items[key] = found
                call.exact = call.exact or "Item" in parsed
                call.item_bytes = item_bytes(found)
                call.table_write_units = write_units(call.item_bytes)  # no index write
                return
            if call.error is not None:  # throttled or refused: not charged
                return
            if api == "PutItem":
                after = params["Item"]
            elif api == "DeleteItem":
                after = None
            elif params.get("ReturnValues") == "ALL_NEW":
                after = parsed.get("Attributes")
            else:  # the new image is unknown: count on the old one
                after, call.exact = before, False
            call.item_bytes = max(item_bytes(before), item_bytes(after))
            call.table_write_units = write_units(call.item_bytes)
            for index in self.indexes:
                call.index_writes += [
                    (index.name, what, size) for what, size in index.writes(before, after, self.table_keys)
                ]
            self._items[key] = after


def units_text(usage: Usage, per: int = 1) -> tuple[str, str]:
    """(RRU, WRU as ``total (table+index)``) per operation."""
    wru = usage.write_units / per
    detail = f" ({usage.table_write_units / per:g}+{usage.index_write_units / per:g})" if wru else ""
    return f"{usage.read_units / per:g}", f"{wru:g}{detail}"


def print_units_note(meter: DynamoMeter) -> None:
    indexes = ", ".join(f"{index.name} ({index.projection}: {', '.join(index.keys)})" for index in meter.indexes)
    exact = all(call.exact for call in meter.calls)
    print(
        f"RRU/WRU: read/write request units computed from the items as DynamoDB charges them (index {indexes}); "
        f"the server's own ConsumedCapacity answers were {meter.server_reports()} (moto answers constants, "
        f"not the units)" + ("" if exact else "; some writes replaced an item not seen first: their units are guesses")
    )
