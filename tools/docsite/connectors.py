"""Each built-in connector's page, where its code is the source.

- **facts**: task type and version, class, module, name, secrets, replay window and settle time,
  from the connector class;
- **template fields**: every ``TaskTemplate.custom`` field an AWS connector reads, found in its
  module's code (the calls on :class:`connectors.builtin.aws.fields.Fields`: ``required``,
  ``optional``, ``one_of``, ``string_map``, ``named_objects``, ``s3_uri``, ``data.get``), whether
  each is required and what type is checked; the page gives each field's meaning, and a field the
  page names that the code does not read, or one the code reads that the page does not explain,
  fails the build;
- **phases**: the module's :class:`PhaseTable` (AWS's status word -> Flyte phase);
- **IAM**: the class's ``iam_actions``, per operation, and a sequence diagram of the AWS calls
  behind each RPC.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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
# The RPC each iam_actions operation serves, as the executor (or the reaper) calls it.
OPERATIONS = {
    "create": "CreateTask",
    "get": "GetTask",
    "delete": "DeleteTask",
    "logs": "GetTaskLogs",
    "metrics": "GetTaskMetrics",
}


class DocsError(Exception):
    """A page and the code disagree, or the code reads a field in a way this module cannot follow."""


# -- which connectors ------------------------------------------------------------------------


def aws_task_types() -> list[str]:
    from connectors.builtin.aws import AWS_CONNECTORS

    return list(AWS_CONNECTORS)


def flyteplugin_task_types() -> list[str]:
    from connectors.builtin.flyteplugins import FLYTEPLUGIN_CONNECTORS

    return list(FLYTEPLUGIN_CONNECTORS)


def connector_class(task_type: str) -> type[Any]:
    from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_class
    from connectors.builtin.echo import EchoConnector
    from connectors.builtin.flyteplugins import flyteplugin_connector_class

    if task_type == EchoConnector.task_type_name:
        return EchoConnector
    if task_type in AWS_CONNECTORS:
        return aws_connector_class(task_type)
    return flyteplugin_connector_class(task_type)


def _source_path(cls: type[Any]) -> str:
    return str(Path(inspect.getfile(cls)).resolve().relative_to(ROOT))


# -- facts -----------------------------------------------------------------------------------


def _duration(window: timedelta | None) -> str:
    if window is None:
        return "none declared: the deployment's `ReplayWindowMinutes` bounds a replay"
    if window == timedelta.max:
        return "no limit"
    days, seconds = window.days, window.seconds
    if days and not seconds:
        return f"{days} day{'s' if days != 1 else ''}"
    return str(window)


def facts_table(task_type: str) -> str:
    cls = connector_class(task_type)
    rows = [
        ("task type", f"`{cls.task_type_name}` (version {cls.task_type_version})"),
        ("class", f"`{cls.__name__}` in `{_source_path(cls)}`"),
        ("name (ListConnectors)", cls.name),
    ]
    if getattr(cls, "service", None):
        rows.append(("AWS service (boto3 client)", f"`{cls.service}`"))
    secrets = getattr(cls, "secret_names", ())
    rows.append(
        (
            "secrets it takes",
            ", ".join(f"`{name}`" for name in secrets)
            + " (Secrets Manager or SSM, [connector-secrets](../connector-secrets.md))"
            if secrets
            else "none",
        )
    )
    rows.append(
        ("replay window of the idempotency key (`replay_window`)", _duration(getattr(cls, "replay_window", None)))
    )
    settle = float(getattr(cls, "replay_settle_seconds", 0.0) or 0.0)
    rows.append(
        ("a retried create waits for its look-up (`replay_settle_seconds`)", f"{settle:g} s" if settle else "no")
    )
    return _table(("the connector", ""), rows, caption=f"From `{cls.__name__}` ({_source_path(cls)}).")


# -- phases ----------------------------------------------------------------------------------


def phase_table(task_type: str) -> Any:
    cls = connector_class(task_type)
    for klass in cls.__mro__:  # the module of the class, or of the base that reads the status
        table = getattr(importlib.import_module(klass.__module__), "PHASES", None)
        if table is not None:
            return table
    raise DocsError(f"{task_type}: no PHASES (a PhaseTable) in the modules of {cls.__name__} or its bases")


def _phases_module(task_type: str) -> str:
    cls = connector_class(task_type)
    for klass in cls.__mro__:
        if getattr(importlib.import_module(klass.__module__), "PHASES", None) is not None:
            return klass.__module__
    return cls.__module__


def _rows(table: list[str], what: str) -> list[list[str]]:
    rows = []
    for line in table[2:]:
        if not _ROW.match(line):
            raise DocsError(f"not a table row under the {what} marker: {line!r}")
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def phases_table(task_type: str, page: list[str] | None = None) -> str:
    """The module's PhaseTable, one row per row of the page's table (``| status | what GetTask
    answers |``, one or more status words per row, qualifiers allowed) with the code's phase
    added; a status the code maps that the page leaves out gets a row of its own, and a row that
    names no status the code knows fails the build."""
    from flyteidl2.core.execution_pb2 import TaskExecution

    table = phase_table(task_type)
    name = TaskExecution.Phase.Name
    rows: list[tuple[str, ...]] = []
    seen: set[str] = set()
    header = (f"{table.service} status", "Flyte phase")
    if page:
        header = (page[0].strip().strip("|").split("|")[0].strip(), header[1])
        for cells in _rows(page, "phases"):
            words = [word for word in re.findall(r"[A-Za-z_]+", cells[0]) if word in table.phases]
            if not words:
                raise DocsError(f"{task_type}: the phase table's row {cells[0]!r} names no status PHASES maps")
            seen.update(words)
            phases = ", ".join(dict.fromkeys(name(table.phases[word]) for word in words))  # type: ignore[arg-type]
            rows.append((cells[0], phases, cells[1] if len(cells) > 1 else ""))
    for word, phase in table.phases.items():
        if word not in seen:
            rows.append((f"`{word}`", name(phase), ""))  # type: ignore[arg-type]
    module = _phases_module(task_type)
    caption = (
        f"The phase: `PHASES` in `{module.replace('.', '/')}.py`; what GetTask answers in full: this page. "
        f"Any other status word is `internal` (a poll error the executor counts), never a guess that "
        f"could end a running job's task."
    )
    return _table((header[0], "phase (from the code)", "what GetTask answers"), rows, caption=caption)


# -- IAM -------------------------------------------------------------------------------------


def iam_actions(task_type: str) -> dict[str, tuple[str, ...]]:
    return dict(getattr(connector_class(task_type), "iam_actions", {}) or {})


def iam_table(task_type: str, page: list[str] | None = None) -> str:
    """The class's ``iam_actions``, one row per operation, with what else the page says is granted
    for it (``| operation | actions ... |``); the page's row must name every action the code
    declares, and an operation the code does not declare fails the build."""
    cls = connector_class(task_type)
    actions = iam_actions(task_type)
    if not actions:
        raise DocsError(f"{task_type}: {cls.__name__} declares no iam_actions")
    notes: dict[str, str] = {}
    for cells in _rows(page or [], "iam"):
        operation = cells[0].strip("` ")
        if operation not in actions:
            raise DocsError(
                f"{task_type}: the page's IAM row {operation!r} is no operation of {cls.__name__}.iam_actions"
            )
        missing = [action for action in actions[operation] if action not in cells[1]]
        if missing:
            raise DocsError(f"{task_type}: the page's IAM row {operation!r} leaves out {', '.join(missing)}")
        notes[operation] = cells[1]
    rows = [
        (
            f"{operation} ({OPERATIONS.get(operation, operation)})",
            ", ".join(f"`{action}`" for action in granted),
            notes.get(operation, ""),
        )
        for operation, granted in actions.items()
    ]
    return _table(
        ("operation", "IAM actions (from the code)", "as template.yaml grants them"),
        rows,
        caption=f"The actions: `{cls.__name__}.iam_actions`, which template.yaml's policies hold exactly "
        f"(tests/unit/test_template_aws_connectors.py); the rest: this page.",
    )


def calls_diagram(task_type: str) -> str:
    """A sequence diagram: each RPC the executor sends, the record it reads or writes, and the AWS
    actions the connector calls for it (iam_actions)."""
    cls = connector_class(task_type)
    actions = iam_actions(task_type)
    service = getattr(cls, "service", "AWS")
    lines = [
        "sequenceDiagram",
        "    autonumber",
        "    participant E as Flyte executor (via the relay)",
        "    participant S as connector service",
        "    participant T as DynamoDB tasks table",
        f"    participant A as {service}",
    ]
    steps = {
        "create": ("CreateTask", ["claim the attempt (conditional put)"], "keep the job's id (conditional update)"),
        "get": ("GetTask", ["read the record"], "store a new phase (only when it moved)"),
        "delete": (
            "DeleteTask",
            ["read the record", "mark it: delete requested (conditional update)"],
            "record ABORTED",
        ),
        "logs": ("GetTaskLogs", ["read the record"], ""),
        "metrics": ("GetTaskMetrics", ["read the record"], ""),
    }
    for operation, granted in actions.items():
        rpc, before, after = steps.get(operation, (operation, ["read the record"], ""))
        lines.append(f"    E->>S: {rpc}")
        lines.extend(f"    S->>T: {step}" for step in before)
        if operation == "get":  # connectors/polling.py: a read is taken only when the stored status may be old
            told = "an event told the status" if getattr(cls, "job_events", None) is not None else ""
            lines.append(f"    alt {told + ', or ' if told else ''}the job was read less than the read interval ago")
            lines.append("        S-->>E: the stored phase and log links")
            lines.append("    else")
            lines.append("        S->>T: take the turn to read (conditional update)")
            lines.append(f"        S->>A: {', '.join(granted)}")
            lines.append(f"        S->>T: {after}")
            lines.append(f"        S-->>E: {_answer(rpc)}")
            lines.append("    end")
            continue
        lines.append(f"    S->>A: {', '.join(granted)}")
        if after:
            lines.append(f"    S->>T: {after}")
        lines.append(f"    S-->>E: {_answer(rpc)}")
    return "```mermaid\n" + "\n".join(lines) + "\n```\n"


def _answer(rpc: str) -> str:
    return {
        "CreateTask": "the handle (resource_meta)",
        "GetTask": "phase, outputs, log links",
        "DeleteTask": "done",
        "GetTaskLogs": "log lines (a stream)",
    }.get(rpc, "answer")


# -- template fields -------------------------------------------------------------------------


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
            f"literals, or a parameter given a literal (tools/docsite/connectors.py)"
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


_ROW = re.compile(r"^\|(?P<first>[^|]*)\|(?P<rest>.*)\|\s*$")
_CODE = re.compile(r"`([^`]+)`")


def fields_table(task_type: str, meanings: list[str]) -> str:
    """The page's table of meanings (``| field | meaning |``, one or more fields per row) with the
    code's columns added; the build fails when the two name different fields."""
    fields = template_fields(task_type)
    rows: list[tuple[list[str], str]] = []
    for line in meanings[2:]:
        match = _ROW.match(line)
        if not match:
            raise DocsError(f"{task_type}: not a table row under the template fields marker: {line!r}")
        rows.append((_CODE.findall(match.group("first")), match.group("rest").strip()))
    named = [name for names, _ in rows for name in names]
    missing = [name for name in fields if name not in named]
    extra = [name for name in named if name not in fields]
    if missing or extra:
        raise DocsError(
            f"{task_type}: the page's template fields and the code's differ: "
            + (f"the code reads {', '.join(missing)}, which the page does not explain; " if missing else "")
            + (f"the page names {', '.join(extra)}, which the code does not read" if extra else "")
        )
    out = []
    for names, meaning in rows:
        required = " / ".join(dict.fromkeys(fields[name].required for name in names))
        kinds = " / ".join(dict.fromkeys(kind for name in names for kind in fields[name].kinds)) or "any"
        out.append((", ".join(f"`{name}`" for name in names), required, kinds, meaning))
    cls = connector_class(task_type)
    caption = (
        f"Field, required and type: read from the code of `{cls.__name__}` "
        f"({_source_path(cls)}); the meanings: this page."
    )
    return _table(("field", "required", "type", "meaning"), out, caption=caption)


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


_TASK_TYPE_CELL = re.compile(r"`(?P<type>[a-z0-9_]+)`")


def overview_table(table: list[str]) -> str:
    """The connectors' overview (``| task type | runs | returns |``) with the fields each reads,
    from its code, added as a column (\\* required)."""
    from connectors.builtin.aws import AWS_CONNECTORS

    rows = []
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        match = _TASK_TYPE_CELL.search(cells[0])
        if not match:
            raise DocsError(f"overview: no task type in {cells[0]!r}")
        task_type = match.group("type")
        if task_type in AWS_CONNECTORS:
            fields = template_fields(task_type)
            names = [f"`{f.name}`" + ("\\*" if f.required != "no" else "") for f in fields.values()]
        else:
            names = [f"`{name}`" for name in custom_fields(task_type)]
        rows.append((cells[0], cells[1], ", ".join(names), cells[2]))
    return _table(
        ("task type", "runs", "fields of `custom` it reads (\\* required, from its code)", "returns"),
        rows,
    )


# -- rendering -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", "\\|", text).replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], caption: str = "") -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    if caption:
        text += f"\n<small>{caption}</small>\n"
    return text


def all_template_fields() -> Iterator[tuple[str, dict[str, TemplateField]]]:
    for task_type in aws_task_types():
        yield task_type, template_fields(task_type)


if __name__ == "__main__":
    for task_type, found in all_template_fields():
        print(task_type)
        for item in found.values():
            print(f"  {item.name:28} {item.required:40} {', '.join(item.kinds)}")
