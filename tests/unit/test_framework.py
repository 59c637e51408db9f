"""The connector framework: ResourceMeta, phases and the registry, as connector authors use them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors import (
    AsyncConnector,
    ConnectorNotFound,
    ConnectorRegistry,
    Resource,
    ResourceMeta,
    convert_to_flyte_phase,
    is_terminal_phase,
)
from connectors.errors import Code


@dataclass
class Inner:
    region: str
    tags: list[str] = field(default_factory=list)


@dataclass
class QueryMeta(ResourceMeta):
    query_id: str
    inner: Inner
    history: list[Inner] = field(default_factory=list)
    by_name: dict[str, Inner] = field(default_factory=dict)
    maybe: Inner | None = None
    attempts: int = 0


def test_resource_meta_round_trips_nested_dataclasses():
    meta = QueryMeta("q-1", Inner("eu-west-1", ["a"]), [Inner("us-east-1")], {"x": Inner("ap-south-1")}, Inner("z"), 3)
    encoded = meta.encode()
    assert encoded.startswith(b"{") and b'"query_id": "q-1"' in encoded
    assert QueryMeta.decode(encoded) == meta


@dataclass
class Pep604Meta(ResourceMeta):
    maybe: Inner | None = None
    either: Inner | int = 0


def test_resource_meta_rebuilds_dataclasses_in_pep604_unions():
    meta = Pep604Meta(Inner("eu-west-1", ["a"]), Inner("us-east-1"))
    assert Pep604Meta.decode(meta.encode()) == meta
    assert Pep604Meta.decode(Pep604Meta(None, 3).encode()) == Pep604Meta(None, 3)


@pytest.mark.parametrize(
    ("word", "phase"),
    [
        ("FAILED", TaskExecution.FAILED),
        ("timedout", TaskExecution.FAILED),
        ("Cancelled", TaskExecution.FAILED),
        ("internal_error", TaskExecution.RETRYABLE_FAILED),
        ("done", TaskExecution.SUCCEEDED),
        ("SUCCESS", TaskExecution.SUCCEEDED),
        ("running", TaskExecution.RUNNING),
        ("terminating", TaskExecution.RUNNING),
        ("pending", TaskExecution.INITIALIZING),
    ],
)
def test_state_words_map_to_flyte_phases_as_the_flyte_sdk_does(word, phase):
    assert convert_to_flyte_phase(word) == phase


def test_unknown_state_word_is_an_error_and_terminal_phases_are_three():
    with pytest.raises(ValueError, match="Unrecognized state: sleeping"):
        convert_to_flyte_phase("sleeping")
    terminal = {p for p in TaskExecution.Phase.values() if is_terminal_phase(p)}
    assert terminal == {TaskExecution.SUCCEEDED, TaskExecution.ABORTED, TaskExecution.FAILED}


class _Base(AsyncConnector[QueryMeta]):
    metadata_type = QueryMeta

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        return QueryMeta("q", Inner("r"))

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=TaskExecution.SUCCEEDED)

    async def delete(self, resource_meta, **kwargs):
        return None


class QueryV0(_Base):
    name = "Query"
    task_type_name = "query"


class QueryV1(_Base):
    name = "Query"
    task_type_name = "query"
    task_type_version = 1


def test_registry_lookup_metadata_and_misses():
    registry = ConnectorRegistry([QueryV0(), QueryV1()])
    assert isinstance(registry.get_connector("query", 1), QueryV1)
    [metadata] = registry.list_connectors()
    assert [(c.name, c.version) for c in metadata.supported_task_categories] == [("query", 0), ("query", 1)]
    with pytest.raises(ConnectorNotFound) as caught:
        registry.get_connector("query", 2)
    assert caught.value.code == Code.NOT_FOUND
    assert "query and version: 2" in caught.value.message and "query (version 1)" in caught.value.message
    with pytest.raises(ConnectorNotFound):
        registry.get_connector_metadata("Other")


def test_duplicate_registration_fails_unless_overridden():
    registry = ConnectorRegistry([QueryV0()])
    with pytest.raises(ValueError, match="Duplicate connector for task type: query and version: 0"):
        registry.register(QueryV0())
    replacement = QueryV0()
    registry.register(replacement, override=True)
    assert registry.get_connector("query") is replacement


def test_a_connector_without_a_task_type_cannot_register():
    class Nameless(_Base):
        pass

    with pytest.raises(TypeError, match="task_type_name"):
        ConnectorRegistry([Nameless()])


def test_class_level_calls_act_on_the_default_registry(monkeypatch):
    monkeypatch.setattr(ConnectorRegistry, "_default", ConnectorRegistry())
    ConnectorRegistry.register(QueryV0())  # as a connector ported from the flyte SDK does
    assert isinstance(ConnectorRegistry.get_connector("query", 0), QueryV0)
    assert ConnectorRegistry.default().get_connector("query") is ConnectorRegistry.get_connector("query")
    assert [m.name for m in ConnectorRegistry.list_connectors()] == ["Query"]
