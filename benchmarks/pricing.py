"""AWS list prices, and what measured DynamoDB calls and Lambda invocations cost at them
(benchmarks/cost.py and benchmarks/status_events.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from capacity_units import read_units, write_units
from dynamodb_meter import DdbCall, Usage

# AWS list prices, US East (N. Virginia), in force since 1 November 2024 (DynamoDB's on-demand
# price cut, which halved them from $1.25 and $0.25 per million), as the pricing pages list them;
# not fetched at run time, so check these pages before quoting the figures:
#   DynamoDB on-demand  https://aws.amazon.com/dynamodb/pricing/on-demand/
#   API Gateway         https://aws.amazon.com/api-gateway/pricing/  (HTTP APIs, first 300 million a month)
#   Lambda              https://aws.amazon.com/lambda/pricing/        (Arm, first 6 billion GB-seconds a month)
#   SQS                 https://aws.amazon.com/sqs/pricing/           (standard queues, after the free million)
# Free tiers are left out. A write to a global secondary index is billed as a table write.
PRICES = {
    "ddb_write_request_unit": 0.625 / 1e6,  # $ per WRU: a write of up to 1 KB, to the table or an index
    "ddb_read_request_unit": 0.125 / 1e6,  # $ per RRU: a strongly consistent read of up to 4 KB
    "apigw_http_request": 1.00 / 1e6,  # $ per HTTP API request (each 512 KB of it)
    "lambda_request": 0.20 / 1e6,  # $ per invocation
    "lambda_arm_gb_second": 0.0000133334,  # $ per GB-second, arm64, billed per 1 ms
    "sqs_request": 0.40 / 1e6,  # $ per standard-queue request
}


@dataclass(frozen=True)
class Units:
    """Request units of some DynamoDB calls."""

    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(self.read + other.read, self.write + other.write)

    def __mul__(self, factor: float) -> Units:
        return Units(self.read * factor, self.write * factor)

    __rmul__ = __mul__

    @property
    def dollars(self) -> float:
        return self.read * PRICES["ddb_read_request_unit"] + self.write * PRICES["ddb_write_request_unit"]


def measured_units(
    usage: Usage, item_bytes: int | None = None, whole_item_indexes: frozenset[str] = frozenset()
) -> Units:
    """The units of the measured calls; with ``item_bytes``, as if the table item were that size
    (index entries keep their measured size, but for indexes that project the whole item)."""
    total = Units()
    for call in usage.calls:
        total += call_units(call, item_bytes, whole_item_indexes)
    return total


def call_units(call: DdbCall, item_bytes: int | None, whole_item_indexes: frozenset[str]) -> Units:
    if item_bytes is None:
        return Units(read=call.read_units, write=call.write_units)
    if call.api == "GetItem":
        return Units(read=read_units(item_bytes, call.consistent) if call.error is None else 0.0)
    if not call.is_write or call.table_write_units == 0:
        return Units(read=call.read_units)
    index = sum(
        write_units(item_bytes if name in whole_item_indexes else entry_bytes)
        for name, _, entry_bytes in call.index_writes
    )
    return Units(write=write_units(item_bytes) + index)


def before_poll(item_bytes: int) -> Units:
    """The replaced design's poll: a strongly consistent read, then the table write and the
    ALL-projection index's delete and put (polled_at, its sort key, changed), each the whole item."""
    return Units(read=read_units(item_bytes, True), write=3 * write_units(item_bytes))


def lambda_dollars(calls: float, milliseconds: float, memory_mb: int) -> tuple[float, float]:
    """(requests, duration) for ``calls`` invocations of ``milliseconds`` each (billed per 1 ms)."""
    gb_seconds = math.ceil(milliseconds) / 1000 * memory_mb / 1024
    return calls * PRICES["lambda_request"], calls * gb_seconds * PRICES["lambda_arm_gb_second"]


def money(dollars: float) -> str:
    """Cents from $1 up, else three significant digits, never in exponent form: $0.000002, $0.188."""
    if dollars == 0:
        return "$0"
    if dollars >= 1:
        return f"${dollars:,.2f}"
    return "$" + format(Decimal(f"{dollars:.3g}"), "f")


def count(units: float) -> str:
    return f"{units:,.0f}" if units >= 1000 else f"{units:g}"


__all__ = ["PRICES", "Units", "before_poll", "count", "lambda_dollars", "measured_units", "money"]
