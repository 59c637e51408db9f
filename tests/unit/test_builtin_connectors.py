"""Which built-in connectors a deployment registers: all, less DISABLED_CONNECTORS."""

from __future__ import annotations

import pytest

from connectors.builtin import builtin_connector_classes, disabled_task_types
from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_classes
from connectors.builtin.aws.base import AwsConnector
from connectors.registry import ConnectorRegistry


def test_every_aws_connector_is_registered_under_its_task_type_with_its_iam_actions():
    classes = aws_connector_classes()
    assert [cls.task_type_name for cls in classes] == list(AWS_CONNECTORS)
    for cls in classes:
        assert issubclass(cls, AwsConnector) and cls.task_type_version == 0
        assert set(cls.iam_actions) <= {"create", "get", "delete", "logs"} and cls.iam_actions["create"]
    registry = ConnectorRegistry([cls() for cls in builtin_connector_classes("")])
    assert len(registry) == 1 + len(AWS_CONNECTORS)


def test_a_disabled_connector_is_left_out_and_its_task_type_is_not_found():
    first = next(iter(AWS_CONNECTORS))
    kept = builtin_connector_classes(f" {first} ,, echo")
    assert first not in {cls.task_type_name for cls in kept} and "echo" not in {cls.task_type_name for cls in kept}
    registry = ConnectorRegistry([cls() for cls in kept])
    with pytest.raises(Exception) as caught:
        registry.get_connector(first)
    assert "Cannot find connector for task type" in str(caught.value)


def test_a_disabled_name_that_is_no_builtin_fails_at_cold_start():
    with pytest.raises(ValueError, match="athena_qeury, which are not built-in task types"):
        builtin_connector_classes("athena_qeury")
    assert disabled_task_types("a,,b , ") == {"a", "b"}
