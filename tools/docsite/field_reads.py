"""Which ``TaskTemplate.custom`` fields a connector's code reads, found by parsing it with ast.

An AWS connector reads them through :class:`connectors.builtin.aws.fields.Fields` (``required``,
``optional``, ``one_of``, ``string_map``, ``named_objects``, ``s3_uri``, ``data.get``): the reader
follows the class's methods, and the package functions they hand the fields to, and says of each
field whether it is required and what type is checked. A connector outside the AWS package reads
``custom.get("x")`` or ``custom["x"]``.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.docsite.connector_classes import ROOT, aws_task_types, connector_class
from tools.docsite.errors import DocsError

AWS_PACKAGE = ROOT / "connectors" / "builtin" / "aws"
# Fields' reading methods, and the type each one checks when the call does not say.
_READS = {
    "required": "string",
    "optional": "string",
    "one_of": "string",
    "string_map": "string map",
    "named_objects": "list of objects",
    "s3_uri": "`s3://` URI",
}
_KINDS = {
    "str": "string",
    "dict": "object",
    "list": "list",
    "int": "whole number",
    "float": "number",
    "bool": "boolean",
}


@dataclass
class FieldRead:
    name: str
    how: str  # required, optional, one_of
    kind: str | None  # the type checked, where the call says
    where: str  # module:line


@dataclass
class _Function:
    module: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    params: list[str] = field(default_factory=list)


class _Package:
    """The AWS connectors' modules, parsed once: module-level functions and classes by name."""

    def __init__(self, directory: Path = AWS_PACKAGE) -> None:
        self.functions: dict[str, _Function] = {}
        self.classes: dict[str, tuple[str, ast.ClassDef]] = {}
        for path in sorted(directory.glob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, _Function(path.stem, node, [a.arg for a in node.args.args]))
                elif isinstance(node, ast.ClassDef):
                    self.classes[node.name] = (path.stem, node)

    def methods(self, class_name: str) -> dict[str, _Function]:
        """The class's methods, its bases' (within the package) under them."""
        found: dict[str, _Function] = {}
        module, node = self.classes[class_name]
        for base in node.bases:
            base_name = base.value.id if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) else None
            base_name = base.id if isinstance(base, ast.Name) else base_name
            if base_name in self.classes:
                found.update(self.methods(base_name))
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[item.name] = _Function(module, item, [a.arg for a in item.args.args])
        return found


def _parents(node: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)}


def _loop_values(name: str, node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[str] | None:
    """The literal values ``name`` takes in an enclosing ``for`` over a tuple of literals."""
    current = node
    while current in parents:
        current = parents[current]
        if not isinstance(current, ast.For) or not isinstance(current.iter, (ast.Tuple, ast.List)):
            continue
        target = current.target
        if isinstance(target, ast.Name) and target.id == name:
            values = [element.value for element in current.iter.elts if isinstance(element, ast.Constant)]
            return [str(value) for value in values]
        if isinstance(target, ast.Tuple):
            positions = [
                i for i, element in enumerate(target.elts) if isinstance(element, ast.Name) and element.id == name
            ]
            if positions:
                values = []
                for element in current.iter.elts:
                    if isinstance(element, ast.Tuple) and isinstance(element.elts[positions[0]], ast.Constant):
                        values.append(str(element.elts[positions[0]].value))
                    elif isinstance(element, ast.Tuple) and isinstance(element.elts[positions[0]], ast.Name):
                        values.append(element.elts[positions[0]].id)  # a type named in the tuple (str, int)
                return values
    return None


class _Reader:
    """Follows one connector class's methods, and the package functions they hand ``fields`` to,
    collecting every field read."""

    def __init__(self, package: _Package, class_name: str) -> None:
        self.package = package
        self.methods = package.methods(class_name)
        self.class_name = class_name
        self.reads: list[FieldRead] = []
        self._seen: set[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]]] = set()

    def run(self) -> list[FieldRead]:
        for name, function in self.methods.items():
            self.visit(function, {}, f"{self.class_name}.{name}")
        return self.reads

    def visit(self, function: _Function, bindings: dict[str, list[str]], label: str) -> None:
        key = (function.module, label, tuple(sorted((k, tuple(v)) for k, v in bindings.items())))
        if key in self._seen:
            return
        self._seen.add(key)
        parents = _parents(function.node)
        for node in ast.walk(function.node):
            if isinstance(node, ast.Call):
                self.call(node, function, bindings, parents)

    def names(self, arg: ast.expr, function: _Function, bindings: dict[str, list[str]], parents: Any) -> list[str]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        if isinstance(arg, ast.Name):
            if arg.id in bindings:
                return bindings[arg.id]
            looped = _loop_values(arg.id, arg, parents)
            if looped is not None:
                return looped
        raise DocsError(
            f"connectors/builtin/aws/{function.module}.py:{arg.lineno}: a template field read by a name "
            f"this page generator cannot follow ({ast.unparse(arg)}); read it with a literal, a loop over "
            f"literals, or a parameter given a literal (tools/docsite/field_reads.py)"
        )

    def call(self, node: ast.Call, function: _Function, bindings: dict[str, list[str]], parents: Any) -> None:
        func = node.func
        where = f"{function.module}.py:{node.lineno}"
        # fields.<read>(...), self.fields(template).<read>(...)
        if isinstance(func, ast.Attribute) and func.attr in _READS and _is_fields(func.value):
            if func.attr == "one_of":
                for arg in node.args:
                    for name in self.names(arg, function, bindings, parents):
                        self.reads.append(FieldRead(name, "one_of", "string", where))
                return
            if not node.args:
                return
            how = "required" if func.attr == "required" else "optional"
            if func.attr == "s3_uri" and any(
                k.arg == "required" and isinstance(k.value, ast.Constant) and k.value.value for k in node.keywords
            ):
                how = "required"
            kind = _READS[func.attr]
            given = None
            if func.attr in ("required", "optional"):
                given = (
                    node.args[1]
                    if len(node.args) > 1
                    else next((k.value for k in node.keywords if k.arg == "kind"), None)
                )
                if isinstance(given, ast.Name) and given.id in _KINDS:
                    kind = _KINDS[given.id]
            names = self.names(node.args[0], function, bindings, parents)
            kinds = [kind] * len(names)
            if isinstance(given, ast.Name) and given.id not in _KINDS:  # a loop's (name, ..., kind) tuples
                looped = _loop_values(given.id, given, parents)
                if looped is None or len(looped) != len(names):
                    raise DocsError(f"connectors/builtin/aws/{where}: the type {given.id} is not a loop's literal")
                kinds = [_KINDS.get(value, value) for value in looped]
            for name, checked in zip(names, kinds, strict=True):
                self.reads.append(FieldRead(name, how, checked, where))
            return
        # fields.data.get("x")
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "data"
            and _is_fields(func.value.value)
            and node.args
        ):
            for name in self.names(node.args[0], function, bindings, parents):
                self.reads.append(FieldRead(name, "optional", None, where))
            return
        # a package function or one of the class's methods that is handed the fields
        target: _Function | None = None
        label = ""
        offset = 0
        if isinstance(func, ast.Name) and func.id in self.package.functions:
            target, label = self.package.functions[func.id], func.id
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and func.attr in self.methods
        ):
            target, label, offset = self.methods[func.attr], f"{self.class_name}.{func.attr}", 1
        if target is None:
            return
        passes_fields = any(_is_fields(arg) for arg in node.args) or any(_is_fields(k.value) for k in node.keywords)
        if not passes_fields and target.node is not function.node:
            # Methods read the fields from the template themselves: follow them once, unbound.
            if offset:
                self.visit(target, {}, label)
            return
        new: dict[str, list[str]] = {}
        for index, arg in enumerate(node.args):
            position = index + offset
            if position < len(target.params) and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                new[target.params[position]] = [arg.value]
            elif position < len(target.params) and isinstance(arg, ast.Name) and arg.id in bindings:
                new[target.params[position]] = bindings[arg.id]
        for keyword in node.keywords:
            if keyword.arg and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                new[keyword.arg] = [keyword.value.value]
        self.visit(target, new, label)


def _is_fields(node: ast.AST) -> bool:
    """``fields``, or ``self.fields(template)``."""
    if isinstance(node, ast.Name):
        return node.id == "fields"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "fields"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    )


@dataclass
class TemplateField:
    name: str
    required: str  # "yes", "no", or "one of `a`, `b`"
    kinds: list[str]
    where: list[str]


def template_fields(task_type: str) -> dict[str, TemplateField]:
    """Every ``TaskTemplate.custom`` field the AWS connector of ``task_type`` reads, in the order
    its code first reads them."""
    cls = connector_class(task_type)
    reads = _Reader(_Package(), cls.__name__).run()
    fields: dict[str, TemplateField] = {}
    one_of = [read.name for read in reads if read.how == "one_of"]
    for read in reads:
        found = fields.setdefault(read.name, TemplateField(read.name, "", [], []))
        if read.kind and read.kind not in found.kinds:
            found.kinds.append(read.kind)
        found.where.append(read.where)
    for name, found in fields.items():
        hows = {read.how for read in reads if read.name == name}
        if hows == {"required"}:
            found.required = "yes"
        elif "one_of" in hows:
            found.required = "one of " + ", ".join(f"`{other}`" for other in dict.fromkeys(one_of))
        else:
            found.required = "no"
    return fields


def custom_fields(task_type: str) -> list[str]:
    """The top-level ``template.custom`` keys a connector outside the AWS package reads
    (``custom.get("x")``, ``custom["x"]``), in its module's order."""
    cls = connector_class(task_type)
    tree = ast.parse(Path(inspect.getfile(cls)).read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        name = None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "custom"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "custom"
            and isinstance(node.slice, ast.Constant)
        ):
            name = node.slice.value
        if isinstance(name, str) and name not in found:
            found.append(name)
    return found


def all_template_fields() -> Iterator[tuple[str, dict[str, TemplateField]]]:
    for task_type in aws_task_types():
        yield task_type, template_fields(task_type)


if __name__ == "__main__":
    for task_type, found in all_template_fields():
        print(task_type)
        for item in found.values():
            print(f"  {item.name:28} {item.required:40} {', '.join(item.kinds)}")
