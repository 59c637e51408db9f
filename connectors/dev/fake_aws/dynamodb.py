"""DynamoDB: each request on a table's items applied atomically, as DynamoDB applies each write.

moto's handlers read an item, evaluate a write's condition and store the new item with no lock,
while its server runs a thread per request: two concurrent ``attribute_not_exists`` puts of one
key can both succeed (tests/functional/test_fake_dynamodb_atomicity.py: 2 bursts in 100 of 20
concurrent claims had two winners on an idle machine; under load the failing
``test_twenty_concurrent_creates_start_one_job`` showed it). DynamoDB applies every write
atomically on the item's latest version ("Condition expressions", DynamoDB developer guide), and
the task store's claim relies on it. One lock serialises the handler calls that read or write
items; each holds it a few milliseconds.

A Query on a table (not an index) reads its candidates from the partition it names. moto 5.2.6's
``Table.query`` sorted every item of the table (``Table.all_items``) and then kept the partition's:
under the lock above, each Query cost time in proportion to the table, and a CreateTask makes two
(benchmarks/load.py: 21 calls/s at 10,000 calls, docs/measured.md). The partition's items, sorted
the same way, are exactly what moto kept, so its answer (order, ``Limit``, ``LastEvaluatedKey``,
filters, projections: tests/functional/aws/test_fake_aws_dynamodb_query.py) is unchanged.

An UpdateItem that leaves a key attribute of the table or of one of its indexes over DynamoDB's
key limits (2,048 bytes for a partition key value, 1,024 for a sort key: "Service, account, and
table quotas") is refused with a ValidationException and changes nothing, as DynamoDB refuses it.
moto 5.2.6 checks the sizes on PutItem only, so an update wrote an item DynamoDB would not hold
(tests/functional/test_long_job_keys.py).
"""

from __future__ import annotations

import copy
import inspect
import threading
from typing import Any

from moto.dynamodb.exceptions import HashKeyTooLong, MockValidationException
from moto.dynamodb.limits import HASH_KEY_MAX_LENGTH, RANGE_KEY_MAX_LENGTH
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from ._support import wraps_method

_lock = threading.RLock()
_querying = threading.local()  # .partition: (table, hash key) of the table Query this thread runs

ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def _one_at_a_time(original: Any, self: DynamoHandler, *args: Any, **kwargs: Any) -> Any:
    with _lock:
        return original(self, *args, **kwargs)


for _name in ITEM_OPERATIONS:
    if hasattr(DynamoHandler, _name):
        wraps_method(DynamoHandler, _name)(_one_at_a_time)


_QUERY_PARAMETERS = inspect.signature(Table.query)


def _partition_query(original: Any, self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = _QUERY_PARAMETERS.bind(self, hash_key, *args, **kwargs).arguments.get("index_name")
    if index_name or hash_key is None:
        return original(self, hash_key, *args, **kwargs)
    _querying.partition = (self, hash_key)
    try:
        return original(self, hash_key, *args, **kwargs)
    finally:
        _querying.partition = None


def _partition_items(original: Any, self: Table) -> Any:
    """During a table Query, only its partition's items, in moto's order (hash key, range key)."""
    partition = getattr(_querying, "partition", None)
    if partition is None or partition[0] is not self:
        return original(self)
    found = self.items.get(partition[1])  # .get: asking for a partition must not create it
    if found is None:
        return []
    items = list(found.values()) if self.range_key_attr else [found]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


wraps_method(Table, "query")(_partition_query)
wraps_method(Table, "all_items")(_partition_items)


def _key_sizes_after_update(
    original: Any, self: DynamoDBBackend, table_name: str, key: Any, *args: Any, **kwargs: Any
) -> Any:
    """UpdateItem, refused (the item left as it was) when a table or index key ends up too long.
    moto makes a new item before it applies the update; a refused update of one leaves none."""
    table = self.get_table(table_name)
    hash_value, range_value = self.get_keys_value(table, key)
    before = _snapshot(table.get_item(hash_value, range_value))
    try:
        item = original(self, table_name, key, *args, **kwargs)
        _check_index_key_sizes(table, item.attrs)
    except Exception:
        made = table.get_item(hash_value, range_value)
        if made is not None and before is None:
            table.delete_item(hash_value, range_value)
        elif made is not None and before is not None:
            made.attrs = LimitedSizeDict(before)
        raise
    return item


def _snapshot(item: Any) -> Any:
    """The item's attributes as they are, to put back: a plain dict, with its own copy of each
    value an update can change in place (a map, a list, a set); moto's other values are replaced,
    not changed. (A deep copy of the item, or a copy of moto's ``LimitedSizeDict``, which sums the
    item's size at every key set, added a fifth to UpdateItem's time under the item lock.)"""
    if item is None:
        return None
    return {
        name: value if value.type in _REPLACED_TYPES else copy.deepcopy(value) for name, value in item.attrs.items()
    }


_REPLACED_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})


def _check_index_key_sizes(table: Table, attrs: dict[str, Any]) -> None:
    """As DynamoDB words it. (An update cannot change the table's own keys, and moto checks a new
    item's when it makes it.)"""
    for index in table.global_indexes + table.indexes:
        for part in index.schema:
            name, limit = (
                part["AttributeName"],
                HASH_KEY_MAX_LENGTH if part["KeyType"] == "HASH" else RANGE_KEY_MAX_LENGTH,
            )
            value = attrs.get(name)
            if value is not None and value.size() > limit:
                raise MockValidationException(
                    "One or more parameter values were invalid: Size limit exceeded for Index Key "
                    f"{name} Actual Size: {value.size()} bytes Max Size: {limit} bytes IndexName: {index.name}"
                )


_BACKEND_QUERY = inspect.signature(DynamoDBBackend.query)


def _query_key_size(original: Any, self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
    """Query, refused as DynamoDB refuses it when its partition key value is over the limit."""
    hash_key = _BACKEND_QUERY.bind(self, *args, **kwargs).arguments.get("hash_key_dict")
    if hash_key and DynamoType(hash_key).size() > HASH_KEY_MAX_LENGTH:
        raise HashKeyTooLong
    return original(self, *args, **kwargs)


wraps_method(DynamoDBBackend, "update_item")(_key_sizes_after_update)
wraps_method(DynamoDBBackend, "query")(_query_key_size)
