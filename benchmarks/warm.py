"""Warm latency and DynamoDB usage: p50/p99, calls and capacity units of each Lambda handler.

Starts moto's server on loopback (``connectors.dev.local_dynamodb``), points the handlers at it,
imports them (a cold start, not measured), and calls each ``handler(event, context)`` with API
Gateway HTTP API events built as ``connectors.dev.events`` builds them (binary proto bodies,
base64): a warm-up, then ``--calls`` timed calls per operation. Each call must answer 200.

- CreateTask: a new echo task each call (its own task execution id): claim, connector, finish.
- CreateTask (repeat): the same task execution id again: answered from the record.
- GetTask: a running echo task, polled back to back: each answers the record within
  StatusReadIntervalSeconds of the last read (no connector.get, no write), as a second poller's
  polls do; the executor's, 30 s apart, read the job and take the turn (benchmarks/cost.py).
- DeleteTask: a distinct running task each call: the mark, connector.delete and the ABORTED write.
- GetTaskMetrics, GetTaskLogs (a Connect server stream), ListConnectors.

Per operation it prints the DynamoDB calls by API name and the read and write request units
they consume. Every data call asks DynamoDB for ``ReturnConsumedCapacity=INDEXES`` (a botocore
``before-parameter-build`` hook on the handlers' client) and keeps what it answers; moto's
server answers constants whatever the item and the read's consistency (GetItem and UpdateItem
0.5, PutItem and Query 1.0, nothing for a failed conditional write), so the units printed are
computed from the items as DynamoDB charges them (:class:`DynamoMeter`): a write 1 WRU per KB
of the larger of the item before and after, plus each index write (an index entry put, deleted,
or both when its key changes; its size is what the index projects); a read 1 RRU per 4 KB
(strongly consistent; half eventually consistent); a failed conditional write the size of the
item it found.

Then "20 unchanged polls": one running task polled 20 times in a row (its heartbeat recent; then
its heartbeat due, the store's clock a quarter of ABANDONED_AFTER_MINUTES ahead; then an ended
task): the wanted figure is 20 GetItem and at most one write (none on the ended task). Exit
status 1 when it is not met.

The baseline, measured in the same run, is a bare FastAPI+Mangum app answering a trivial (async)
route, and the same app doing one DynamoDB GetItem on the same local server from a sync route
(FastAPI runs it in a worker thread, as the service runs its store calls): what any
FastAPI-on-Lambda function that reads DynamoDB pays.

    .venv/bin/python benchmarks/warm.py [--calls 300] [--warmup 30]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)  # Mangum asks for an event loop on 3.12

from harness import local_aws, percentile  # noqa: E402

from connectors.connect_envelope import encode  # noqa: E402

ASYNC = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"


# -- DynamoDB capacity units, as DynamoDB charges them ----------------------------------------
# The DynamoDB Developer Guide (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/):
# read-write-operations.html (read and write units; a write counts the larger of the item before
# and after), CapacityUnitCalculations.html (item sizes), GSI.html (which table writes write an
# index, and how often), WorkingWithItems.html (a failed conditional write still consumes units:
# the size of the item it found, at least one).

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


@contextlib.contextmanager
def clock_ahead(store: Any, seconds: float) -> Iterator[None]:
    """The task store's clock ``seconds`` ahead: its next writes happen that much later."""
    had_own = "clock" in vars(store)
    original = store.clock
    store.clock = lambda: original() + seconds
    try:
        yield
    finally:
        if had_own:
            store.clock = original
        else:
            del store.clock


def units_text(usage: Usage, per: int = 1) -> tuple[str, str]:
    """(RRU, WRU as ``total (table+index)``) per operation."""
    wru = usage.write_units / per
    detail = f" ({usage.table_write_units / per:g}+{usage.index_write_units / per:g})" if wru else ""
    return f"{usage.read_units / per:g}", f"{wru:g}{detail}"


# -- the benchmark ------------------------------------------------------------------------------


class Context:
    function_name = "warm-benchmark"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 512

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per operation first")
    args = parser.parse_args(argv)

    return with_local_table("warm-benchmark", lambda: run(args))


def with_local_table(prefix: str, body: Callable[[], int], environment: dict[str, str] | None = None) -> int:
    """Run ``body`` with the handlers' environment pointing at a new table on a local moto server
    (and ``environment`` besides: CONNECTOR_MODULES, the functions' settings)."""
    with local_aws(log_level=None) as server:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint_url,
                "TASKS_TABLE": f"{prefix}-{uuid.uuid4().hex[:6]}",
                "LOG_LEVEL": "WARNING",
                "CONNECTOR_MODULES": "",
                **(environment or {}),
            }
        )
        return body()


class Bench:
    """The handlers, the service they share, and the meter on its DynamoDB client."""

    def __init__(self) -> None:
        import boto3
        from flyteidl2.connector import connector_pb2 as pb

        from connectors.runtime import default_service

        self.pb = pb
        self.service = default_service()
        self.service.store.create_table()
        self.handlers = {
            module: __import__(f"handlers.{module}", fromlist=["handler"]).handler
            for module in (
                "create_task",
                "get_task",
                "delete_task",
                "get_task_metrics",
                "get_task_logs",
                "connector_metadata",
            )
        }
        self.meter = DynamoMeter(
            self.service.store._client, self.service.store.table_name, describe_client=boto3.client("dynamodb")
        )

    @property
    def heartbeat_seconds(self) -> float:
        return self.service.settings.abandoned_after_minutes * 60 / 4

    def call(self, handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
        response = handler(event, Context())
        if response["statusCode"] != 200:
            body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response.get("body")
            raise RuntimeError(f"{event['rawPath']} answered {response['statusCode']}: {body!r}")
        return response

    def create_event(
        self, custom: dict[str, Any] | None = None, run: str | None = None, task_type: str = "echo"
    ) -> dict[str, Any]:
        from connectors.dev.events import http_api_event
        from tests.flyte_requests import echo_request

        custom = {"delay_seconds": 3600} if custom is None else custom
        request = echo_request(custom=custom, run=run, task_type=task_type)
        return http_api_event("POST", f"{ASYNC}/CreateTask", request.SerializeToString())

    def create(self, custom: dict[str, Any] | None = None, run: str | None = None, task_type: str = "echo") -> bytes:
        response = self.call(self.handlers["create_task"], self.create_event(custom, run, task_type))
        return self.pb.CreateTaskResponse.FromString(base64.b64decode(response["body"])).resource_meta

    def get_event(self, resource_meta: bytes, task_type: str = "echo") -> dict[str, Any]:
        from connectors.dev.events import http_api_event

        category = self.pb.TaskCategory(name=task_type, version=0)
        request = self.pb.GetTaskRequest(resource_meta=resource_meta, task_category=category)
        return http_api_event("POST", f"{ASYNC}/GetTask", request.SerializeToString())

    def get(self, resource_meta: bytes, task_type: str = "echo") -> int:
        """GetTask; the phase answered."""
        response = self.call(self.handlers["get_task"], self.get_event(resource_meta, task_type))
        return self.pb.GetTaskResponse.FromString(base64.b64decode(response["body"])).resource.phase

    def delete_event(self, resource_meta: bytes, task_type: str = "echo") -> dict[str, Any]:
        from connectors.dev.events import http_api_event

        category = self.pb.TaskCategory(name=task_type, version=0)
        request = self.pb.DeleteTaskRequest(resource_meta=resource_meta, task_category=category)
        return http_api_event("POST", f"{ASYNC}/DeleteTask", request.SerializeToString())

    def delete(self, resource_meta: bytes, task_type: str = "echo") -> None:
        self.call(self.handlers["delete_task"], self.delete_event(resource_meta, task_type))

    def polls(self, resource_meta: bytes, count: int) -> Usage:
        with self.meter.measure() as usage:
            for _ in range(count):
                self.get(resource_meta)
        return usage


def run(args: argparse.Namespace) -> int:
    import boto3
    from fastapi import FastAPI
    from mangum import Mangum

    from connectors.dev.events import http_api_event
    from tests.flyte_requests import ECHO

    bench = Bench()
    pb, handlers, meter, service = bench.pb, bench.handlers, bench.meter, bench.service
    call, create = bench.call, bench.create

    total = args.warmup + args.calls
    print(
        f"warm latency: {args.calls} timed calls per operation after {args.warmup} warm-up calls, "
        f"in-process handlers, moto DynamoDB on loopback, Python {sys.version.split()[0]}"
    )
    started = time.perf_counter()
    running = create()
    repeat_run = f"repeat-{uuid.uuid4().hex[:8]}"
    create(run=repeat_run)
    to_delete = [create() for _ in range(total)]
    print(f"(setup: {total + 2} tasks created in {time.perf_counter() - started:.1f} s)")

    def connect(path: str, message: Any) -> dict[str, Any]:
        return http_api_event("POST", path, message.SerializeToString())

    deletes = iter(to_delete)
    operations: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[], dict[str, Any]]]] = {
        "CreateTask": (handlers["create_task"], lambda: bench.create_event()),
        "CreateTask (repeat)": (handlers["create_task"], lambda: bench.create_event(run=repeat_run)),
        "GetTask (unchanged)": (handlers["get_task"], lambda: bench.get_event(running)),
        "DeleteTask": (handlers["delete_task"], lambda: bench.delete_event(next(deletes))),
        "GetTaskMetrics": (
            handlers["get_task_metrics"],
            lambda: connect(
                f"{ASYNC}/GetTaskMetrics", pb.GetTaskMetricsRequest(resource_meta=running, task_category=ECHO)
            ),
        ),
        "GetTaskLogs": (
            handlers["get_task_logs"],
            lambda: http_api_event(
                "POST",
                f"{ASYNC}/GetTaskLogs",
                encode(pb.GetTaskLogsRequest(resource_meta=running, task_category=ECHO).SerializeToString()),
                content_type="application/connect+proto",
            ),
        ),
        "ListConnectors": (
            handlers["connector_metadata"],
            lambda: connect(f"{METADATA}/ListConnectors", pb.ListConnectorsRequest()),
        ),
    }

    # The baseline: a bare FastAPI+Mangum app on the same DynamoDB, its own client built the same way.
    bare = FastAPI()
    bare_client = boto3.client("dynamodb")  # AWS_ENDPOINT_URL_DYNAMODB: the same local server
    table = service.store.table_name
    key = {"action_id": {"S": "0" * 32}, "attempt": {"N": "0"}}

    @bare.get("/trivial")
    async def trivial() -> dict[str, str]:
        return {"status": "ok"}

    @bare.get("/getitem")
    def getitem() -> dict[str, bool]:  # sync: FastAPI runs it in a thread, as the store's calls run
        return {"found": "Item" in bare_client.get_item(TableName=table, Key=key)}

    bare_handler = Mangum(bare, lifespan="off")
    baselines = {
        "baseline: trivial route": (bare_handler, lambda: http_api_event("GET", "/trivial")),
        "baseline: route + GetItem": (bare_handler, lambda: http_api_event("GET", "/getitem")),
    }

    results: dict[str, tuple[list[float], Usage]] = {}
    for name, (handler, make_event) in {**baselines, **operations}.items():
        events = [make_event() for _ in range(total)]  # built before timing
        samples = []
        mark = meter.mark()
        for index, event in enumerate(events):
            if index == args.warmup:
                mark = meter.mark()
            begin = time.perf_counter()
            call(handler, event)
            elapsed = time.perf_counter() - begin
            if index >= args.warmup:
                samples.append(elapsed)
        results[name] = (samples, meter.since(mark))

    base = statistics.median(results["baseline: route + GetItem"][0])
    rows = []
    for name, (samples, usage) in results.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        if name.startswith("baseline"):  # its own client, not metered
            calls, rru, wru, in_ddb = ("GetItem 1", "1", "0", "") if "GetItem" in name else ("none", "", "", "")
        else:
            calls = usage.describe(args.calls)
            rru, wru = units_text(usage, args.calls)
            in_ddb = f"{usage.seconds / args.calls * 1000:.2f}"
        rows.append(
            (
                name,
                f"{p50 * 1000:.2f}",
                f"{p99 * 1000:.2f}",
                f"{statistics.fmean(samples) * 1000:.2f}",
                calls,
                rru,
                wru,
                in_ddb,
                f"{p50 / base:.2f}",
            )
        )
    print_table(
        (
            "operation",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "DynamoDB calls per op",
            "RRU",
            "WRU (table+index)",
            "in ddb ms",
            "p50 / baseline+GetItem",
        ),
        rows,
    )
    print(
        "in ddb ms: mean time per operation inside its DynamoDB calls (botocore before/after-call), moto on "
        "loopback; AWS answers single-item calls in a few ms from Lambda"
    )
    print_units_note(meter)

    return unchanged_polls(bench)


def unchanged_polls(bench: Bench, count: int = 20) -> int:
    """One running task polled ``count`` times: ``count`` GetItem, at most one write."""
    task = bench.create()
    bench.get(task)  # QUEUED -> RUNNING: the phase change is written here
    scenarios: list[tuple[str, Usage, int]] = []
    scenarios.append(("heartbeat recent", bench.polls(task, count), 0))
    minutes = bench.heartbeat_seconds / 60
    with clock_ahead(bench.service.store, bench.heartbeat_seconds + 1):
        scenarios.append((f"heartbeat due (clock {minutes:g} min ahead)", bench.polls(task, count), 1))
    ended = bench.create(custom={"delay_seconds": 0})
    bench.get(ended)  # SUCCEEDED: the record ends here
    with clock_ahead(bench.service.store, bench.heartbeat_seconds + 1):
        scenarios.append((f"ended task, clock {minutes:g} min ahead", bench.polls(ended, count), 0))

    print()
    print(
        f"{count} unchanged polls in a row (GetTask of one task whose phase and message do not change; "
        f"a heartbeat is due every {minutes:g} min = ABANDONED_AFTER_MINUTES / 4):"
    )
    rows, failed = [], []
    for name, usage, allowed in scenarios:
        reads = usage.by_api["GetItem"]
        ok = reads == count and usage.writes <= allowed and len(usage.calls) == reads + usage.writes
        if not ok:
            failed.append(name)
        rru, wru = units_text(usage)
        rows.append(
            (
                name,
                usage.describe(),
                str(usage.writes),
                rru,
                wru,
                usage.index_detail(),
                f"{count} GetItem, <= {allowed} write: " + ("ok" if ok else "NOT MET"),
            )
        )
    print_table(("polls", "DynamoDB calls", "writes", "RRU", "WRU (table+index)", "index writes", "wanted"), rows)
    if failed:
        print(f"NOT MET: {', '.join(failed)}")
        return 1
    return 0


def print_units_note(meter: DynamoMeter) -> None:
    indexes = ", ".join(f"{index.name} ({index.projection}: {', '.join(index.keys)})" for index in meter.indexes)
    exact = all(call.exact for call in meter.calls)
    print(
        f"RRU/WRU: read/write request units computed from the items as DynamoDB charges them (index {indexes}); "
        f"the server's own ConsumedCapacity answers were {meter.server_reports()} (moto answers constants, "
        f"not the units)" + ("" if exact else "; some writes replaced an item not seen first: their units are guesses")
    )


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) if i == 0 or not _numeric(str(cell)) else str(cell).rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=False))
            ).rstrip()
        )


def _numeric(text: str) -> bool:
    return bool(text) and text.removesuffix("x").replace(".", "", 1).replace("$", "").replace(",", "").isdigit()


if __name__ == "__main__":
    sys.exit(main())
