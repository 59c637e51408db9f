"""DynamoDB: each request on a table's items applied atomically, as DynamoDB applies each write.

moto's handlers read an item, evaluate a write's condition and store the new item with no lock,
while its server runs a thread per request: two concurrent ``attribute_not_exists`` puts of one
key can both succeed (tests/functional/test_fake_dynamodb_atomicity.py: 2 bursts in 100 of 20
concurrent claims had two winners on an idle machine; under load the failing
``test_twenty_concurrent_creates_start_one_job`` showed it). DynamoDB applies every write
atomically on the item's latest version ("Condition expressions", DynamoDB developer guide), and
the task store's claim relies on it. One lock serialises the handler calls that read or write
items; each holds it a few milliseconds.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

from ._support import wraps_method

_lock = threading.RLock()

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
