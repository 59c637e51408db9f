"""The documentation site's pictures and generated tables say what the code says (tools/docsite/).

The strict build (make docs-build, in make test) fails on the same disagreements; these tests
say which, without a build, and show that a disagreement is caught."""

from __future__ import annotations

import re

import pytest

from tests.doc_blocks import ROOT
from tools.docsite import hooks, lifecycle, parameters
from tools.docsite.connector_classes import aws_task_types, connector_class
from tools.docsite.errors import DocsError
from tools.docsite.field_reads import template_fields
from tools.docsite.iam import OPERATIONS
from tools.docsite.phases import phase_table

DOCS = ROOT / "docs"
MERMAID = re.compile(r"```mermaid\n(.*?)```", re.DOTALL)


def _diagrams(page: str) -> list[str]:
    return MERMAID.findall((DOCS / page).read_text())


def test_the_state_diagram_draws_exactly_the_transitions_the_store_makes() -> None:
    code = lifecycle.transitions()
    drawn = lifecycle.diagram_edges(
        lifecycle.state_diagram((DOCS / "task-lifecycle.md").read_text()), {edge[2] for edge in code}
    )
    assert drawn == code
    assert lifecycle.diagram_states(lifecycle.state_diagram((DOCS / "task-lifecycle.md").read_text())) == set(
        lifecycle.states()
    )


def test_the_store_transitions_are_read_from_its_conditions() -> None:
    """A few the lifecycle's docstring states, read from the DynamoDB expressions themselves."""
    edges = lifecycle.transitions()
    assert {
        ("[*]", "claimed", "claim"),
        ("ended", "claimed", "claim"),  # a withdrawn claim is replaced
        ("claimed", "active", "finish_create"),
        ("active", "cancelling", "reap_claim"),
        ("cancelling", "ended", "cancelled"),
        ("active", "active", "take_status_read"),
    } <= edges
    assert not any(source == "ended" and name != "claim" for source, _, name in edges), (
        "nothing leaves ended but a claim"
    )


def test_a_diagram_that_drops_or_invents_an_arrow_fails() -> None:
    page = (DOCS / "task-lifecycle.md").read_text()
    hooks.check_lifecycle_diagram(page)
    dropped = page.replace("    cancelling --> ended: cancelled\n", "")
    with pytest.raises(DocsError, match="does not draw"):
        hooks.check_lifecycle_diagram(dropped)
    invented = page.replace(
        "    cancelling --> ended: cancelled\n",
        "    cancelling --> ended: cancelled\n    ended --> active: finish_create\n",
    )
    with pytest.raises(DocsError, match="does not make"):
        hooks.check_lifecycle_diagram(invented)


def test_the_architecture_names_every_function_of_the_template() -> None:
    (architecture, _flow) = _diagrams("architecture.md")
    functions = [
        name.removesuffix("Function")
        for name, resource in parameters.load_template()["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    assert functions
    missing = [name for name in functions if name not in architecture]
    assert not missing, f"docs/architecture.md's architecture diagram lacks {missing}"


def test_every_module_a_diagram_names_exists() -> None:
    named = set()
    for page in DOCS.rglob("*.md"):
        for diagram in MERMAID.findall(page.read_text()):
            named |= set(re.findall(r"\b(?:connectors|handlers)/[\w/]*(?:\.py)?", diagram))
    assert "connectors/store/" in named and "connectors/service.py" in named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"diagrams name modules that do not exist: {missing}"


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10 * 1024, f"README.md is {len(readme.encode())} bytes"
    assert "make serve   # the whole API" in readme and "make test    # installs into .venv" in readme
    linked = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert linked and all((ROOT / path).is_file() for path in linked), linked


@pytest.mark.parametrize("task_type", aws_task_types())
def test_each_aws_connector_page_gets_its_tables_from_its_class(task_type: str) -> None:
    cls = connector_class(task_type)
    page = hooks.render((DOCS / "connectors" / f"{task_type}.md").read_text(), task_type)
    assert "<!-- generated" not in page
    for operation, actions in cls.iam_actions.items():
        assert f"{operation} ({OPERATIONS[operation]})" in page
        assert all(f"`{action}`" in page for action in actions)
    for word in phase_table(task_type).phases:
        assert f"`{word}`" in page or word in page
    for name in template_fields(task_type):
        assert f"`{name}`" in page
    assert "```mermaid\nsequenceDiagram" in page


def test_a_field_the_code_reads_and_the_page_does_not_explain_fails_the_build() -> None:
    page = (DOCS / "connectors" / "athena_query.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `query` |"))
    with pytest.raises(DocsError, match="the code reads query"):
        hooks.render(page.replace(row + "\n", ""), "athena_query")
    with pytest.raises(DocsError, match="the page names nonsense"):
        hooks.render(page.replace(row, row + "\n| `nonsense` | not read |"), "athena_query")


def test_the_fields_are_read_from_the_code() -> None:
    """Required-ness and types as the connector's code checks them, loops and helpers followed."""
    redshift = template_fields("redshift_query")
    assert redshift["query"].required == "yes"
    assert redshift["cluster_identifier"].required.startswith("one of")
    assert redshift["unload_iam_role"].required == "no"  # required only with unload_prefix
    glue = template_fields("glue_job")
    assert glue["number_of_workers"].kinds == ["whole number"] and glue["max_capacity"].kinds == ["number"]
    training = template_fields("sagemaker_training_job")
    assert {"hyperparameters", "environment", "tags", "output_path"} <= set(training)  # through helpers
    assert training["output_path"].required == "yes"


def test_the_parameters_page_has_every_parameter_of_the_template() -> None:
    template = parameters.load_template()
    listed = [parameter.name for parameter in parameters.parameters(template)]
    assert listed == list(template["Parameters"])
    by_name = {parameter.name: parameter for parameter in parameters.parameters(template)}
    assert by_name["ConnectorTimeoutSeconds"].variables == ["CONNECTOR_TIMEOUT_SECONDS"]
    assert "DISABLED_CONNECTORS" in by_name["StateMachineArns"].variables  # through a condition
    page = hooks.render((DOCS / "parameters.md").read_text(), "parameters.md")
    assert all(f"| `{name}` |" in page for name in listed)
