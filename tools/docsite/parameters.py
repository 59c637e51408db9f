"""The stack's parameters, read from template.yaml: type, default, allowed values, the environment
variables each one sets (every function's, from Globals and each function's own Environment), and
the template's own description of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CloudFormation(yaml.SafeLoader):
    """YAML with CloudFormation's short tags: ``!Ref X`` is ``{"Ref": "X"}``, ``!If [...]`` is
    ``{"Fn::If": [...]}``, as the long forms read."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormation.add_multi_constructor("!", _tagged)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormation)  # noqa: S506 - a SafeLoader subclass


def _refs(value: Any) -> set[str]:
    """Every parameter or resource a value refers to (Ref, and ${Name} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    import re

                    found.update(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
                if isinstance(item, list) and len(item) > 1:
                    found |= _refs(item[1])
            else:
                found |= _refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= _refs(item)
    return found


@dataclass
class Parameter:
    name: str
    type: str
    default: str
    allowed: str
    description: str
    variables: list[str] = field(default_factory=list)  # environment variables it sets
    used_by: list[str] = field(default_factory=list)  # otherwise: what refers to it (Globals, resources)


def _conditions_on(template: dict[str, Any], name: str) -> set[str]:
    """The conditions that depend on a parameter, directly or through other conditions."""
    conditions = template.get("Conditions", {})
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for condition, body in conditions.items():
            if condition in found:
                continue
            if name in _refs(body) or _conditions_in(body) & found:
                found.add(condition)
                changed = True
    return found


def _conditions_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Condition" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::If" and isinstance(item, list) and item and isinstance(item[0], str):
                found.add(item[0])
                found |= _conditions_in(item[1:])
            else:
                found |= _conditions_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _conditions_in(item)
    return found


def parameters(template: dict[str, Any] | None = None) -> list[Parameter]:
    template = template or load_template()
    environments: list[dict[str, Any]] = [
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    ]
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            environments.append((resource.get("Properties", {}).get("Environment") or {}).get("Variables", {}) or {})
    found = []
    for name, body in template.get("Parameters", {}).items():
        allowed = ""
        low, high = body.get("MinValue"), body.get("MaxValue")
        if "AllowedValues" in body:
            allowed = ", ".join(f"`{value}`" for value in body["AllowedValues"])
        elif low is not None and high is not None:
            allowed = f"{low} to {high}"
        elif low is not None:
            allowed = f"{low} or more"
        elif high is not None:
            allowed = f"at most {high}"
        elif "AllowedPattern" in body:
            allowed = f"`{body['AllowedPattern']}`"
        default = body.get("Default", "")
        conditions = _conditions_on(template, name)
        variables = []
        for environment in environments:
            for variable, value in environment.items():
                if (name in _refs(value) or _conditions_in(value) & conditions) and variable not in variables:
                    variables.append(variable)
        used_by = [
            f"every function's {key}"
            for key, value in template.get("Globals", {}).get("Function", {}).items()
            if key != "Environment" and (name in _refs(value) or _conditions_in(value) & conditions)
        ]
        for logical_id, resource in template.get("Resources", {}).items():
            if name in _refs(resource) or (_conditions_in(resource) | {resource.get("Condition")}) & conditions:
                used_by.append(logical_id)
        found.append(
            Parameter(
                name,
                str(body.get("Type", "")),
                f"`{default}`" if str(default) != "" else "*(empty)*",
                allowed,
                " ".join(str(body.get("Description", "")).split()),
                variables,
                used_by,
            )
        )
    return found


def _sets(parameter: Parameter) -> str:
    """The environment variables it sets; what else refers to it: a few resources by name, many
    by count."""
    parts = [f"`{variable}`" for variable in parameter.variables]
    globals_ = [use for use in parameter.used_by if use.startswith("every function's")]
    resources = [use for use in parameter.used_by if not use.startswith("every function's")]
    parts += globals_
    if resources and (not parts or len(resources) <= 3):
        parts += [f"`{use}`" for use in resources] if len(resources) <= 3 else [f"{len(resources)} resources"]
    elif resources:
        parts.append(f"{len(resources)} resources")
    return ", ".join(parts)


def parameters_table() -> str:
    rows = []
    for parameter in parameters():
        rows.append(
            (
                f"`{parameter.name}`",
                parameter.type,
                parameter.default,
                parameter.allowed or "",
                _sets(parameter),
                parameter.description.replace("<", "&lt;"),
            )
        )
    header = ("parameter", "type", "default", "allowed", "sets or is used by", "description (template.yaml)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return (
        "\n".join(lines)
        + f"\n\n<small>From template.yaml's Parameters: {len(rows)} parameters, in the template's order; the "
        "environment variables each sets (in every function, or its own), else the resources that refer to it, "
        "directly or through a condition.</small>\n"
    )


if __name__ == "__main__":
    print(parameters_table())
