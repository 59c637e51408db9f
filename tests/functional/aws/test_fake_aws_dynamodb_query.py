"""A Query on the fake AWS's table answers as moto's did: the key's items only, in key order.

connectors/dev/fake_aws/dynamodb.py reads a table Query's candidates from the partition it names
instead of sorting the whole table (moto 5.2.6 sorted every item of the table on each Query,
so a CreateTask's two Queries cost grew with the table: benchmarks/load.py, docs/measured.md).
These calls pin what a Query answers (DynamoDB developer guide, "Query operations"): the
partition's items in sort key order, reversed by ``ScanIndexForward=False``, cut by ``Limit``
with a ``LastEvaluatedKey`` to resume from, a sort key condition, a filter, a projection; none for
a partition that does not exist (and asking for one does not create it); an index's Query still
reads the index.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_indexed_table


@pytest.fixture(scope="module")
def table(dynamodb_client: Any) -> str:
    name = make_indexed_table(dynamodb_client, "query", "colour", sort_key="sk")
    for p in range(12):
        for s in (3, 1, 2, 10):  # stored out of order
            item = {"pk": {"S": f"p{p}"}, "sk": {"N": str(s)}, "n": {"N": str(p * 100 + s)}}
            if s == 2:
                item["colour"] = {"S": f"c{p % 3}"}
            dynamodb_client.put_item(TableName=name, Item=item)
    return name


def query(client: Any, table: str, **kwargs: Any) -> dict[str, Any]:
    return client.query(TableName=table, ConsistentRead=True, **kwargs)


def keys(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["pk"]["S"], int(item["sk"]["N"])) for item in page["Items"]]


def by_pk(pk: str, **kwargs: Any) -> dict[str, Any]:
    return {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": pk}, **kwargs}}


def test_a_query_answers_its_partition_in_sort_key_order(dynamodb_client, table):
    page = query(dynamodb_client, table, **by_pk("p7"))
    assert keys(page) == [("p7", 1), ("p7", 2), ("p7", 3), ("p7", 10)]
    assert page["Count"] == page["ScannedCount"] == 4
    assert "LastEvaluatedKey" not in page
    assert page["Items"][3]["n"] == {"N": "710"}


def test_backwards_limited_and_resumed(dynamodb_client, table):
    first = query(dynamodb_client, table, ScanIndexForward=False, Limit=3, **by_pk("p4"))
    assert keys(first) == [("p4", 10), ("p4", 3), ("p4", 2)]
    assert first["LastEvaluatedKey"] == {"pk": {"S": "p4"}, "sk": {"N": "2"}}
    rest = query(
        dynamodb_client,
        table,
        ScanIndexForward=False,
        Limit=3,
        ExclusiveStartKey=first["LastEvaluatedKey"],
        **by_pk("p4"),
    )
    assert keys(rest) == [("p4", 1)]
    assert "LastEvaluatedKey" not in rest


def test_a_sort_key_condition_a_filter_and_a_projection(dynamodb_client, table):
    ranged = query(
        dynamodb_client,
        table,
        KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":p": {"S": "p2"}, ":lo": {"N": "2"}, ":hi": {"N": "9"}},
    )
    assert keys(ranged) == [("p2", 2), ("p2", 3)]
    filtered = query(
        dynamodb_client,
        table,
        FilterExpression="n > :n",
        ProjectionExpression="sk, n",
        **by_pk("p2", **{":n": {"N": "202"}}),
    )
    assert filtered["Items"] == [{"sk": {"N": "3"}, "n": {"N": "203"}}, {"sk": {"N": "10"}, "n": {"N": "210"}}]
    assert filtered["ScannedCount"] == 4


def test_a_partition_that_does_not_exist_answers_none_and_stays_absent(dynamodb_client, table):
    assert query(dynamodb_client, table, **by_pk("nobody"))["Items"] == []
    scanned = dynamodb_client.scan(TableName=table, ConsistentRead=True)
    assert scanned["Count"] == 48
    assert query(dynamodb_client, table, **by_pk("nobody"))["Count"] == 0


def test_an_index_query_reads_the_index(dynamodb_client, table):
    page = dynamodb_client.query(
        TableName=table,
        IndexName="by-colour",
        KeyConditionExpression="colour = :c",
        ExpressionAttributeValues={":c": {"S": "c1"}},
    )
    assert sorted(keys(page)) == [("p1", 2), ("p10", 2), ("p4", 2), ("p7", 2)]
