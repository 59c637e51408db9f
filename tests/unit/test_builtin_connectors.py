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


def test_each_spec_tells_what_its_class_declares():
    for task_type, spec in AWS_CONNECTORS.items():
        cls = aws_connector_classes()[list(AWS_CONNECTORS).index(task_type)]
        assert (cls.task_type_name, cls.name, cls.replay_settle_seconds) == (
            task_type,
            spec.name,
            spec.replay_settle_seconds,
        )


def test_aws_connectors_are_imported_only_when_a_request_needs_one():
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        from connectors.runtime import load_default_connectors
        registry = load_default_connectors("")
        loaded = lambda: sorted(m for m in sys.modules if m.startswith(("connectors.builtin.aws.",
                                                                         "connectors.builtin.flyteplugins.")))
        names = {c.name for c in registry.list_connectors()}
        before = loaded()
        settle = registry.max_replay_settle_seconds()
        connector = registry.get_connector("glue_job")
        print(len(names), before, settle, type(connector).__name__, loaded())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split(
        " ", 1
    )
    from connectors.builtin.flyteplugins import available_flyteplugin_connectors

    assert out[0] == str(1 + len(AWS_CONNECTORS) + len(available_flyteplugin_connectors()))
    assert out[1].strip() == (
        "[] 60.0 GlueJobConnector ['connectors.builtin.aws.base', 'connectors.builtin.aws.fields', "
        "'connectors.builtin.aws.glue', 'connectors.builtin.aws.logs']"
    )


def test_a_lazy_connector_that_loads_the_wrong_class_is_refused():
    from connectors.builtin.echo import EchoConnector
    from connectors.registry import LazyConnector

    registry = ConnectorRegistry()
    registry.register_lazy(LazyConnector("athena_query", 0, "Amazon Athena Connector", EchoConnector))
    assert ("athena_query", 0) in registry and len(registry) == 1
    with pytest.raises(TypeError, match="serves echo"):
        registry.get_connector("athena_query")
    with pytest.raises(ValueError, match="Duplicate connector"):
        registry.register_lazy(LazyConnector("athena_query", 0, "again", EchoConnector))


def test_each_port_of_flytes_connectors_is_told_as_its_class_and_served_when_its_dependencies_are():
    from connectors.builtin import builtin_connectors
    from connectors.builtin.flyteplugins import FLYTEPLUGIN_CONNECTORS, flyteplugin_connector_class
    from connectors.builtin.spec import ConnectorSpec

    for task_type, spec in FLYTEPLUGIN_CONNECTORS.items():
        cls = flyteplugin_connector_class(task_type)
        assert (cls.task_type_name, cls.name, cls.replay_settle_seconds) == (
            task_type,
            spec.name,
            spec.replay_settle_seconds,
        )
    served = {getattr(c, "task_type_name", None) for c in builtin_connectors("")}
    assert set(FLYTEPLUGIN_CONNECTORS) <= served  # the dev install holds every extra
    assert not ConnectorSpec("x:Y", "Y", requires=("no_such_module_here",)).available()
    assert not ConnectorSpec("x:Y", "Y", requires=("no_such_package.sub",)).available()
