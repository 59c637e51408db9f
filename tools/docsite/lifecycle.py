"""The task record's states and transitions, read from connectors/store/lifecycle.py (and the
classes mixed into its TaskStore: cancel_lease.py, status_reads.py, pushed_status.py), and the Mermaid state diagram of
docs/task-lifecycle.md that must show exactly them.

Each transition is a method of the task store that makes one conditional write: ``self._update(
record, <update expression>, <condition>, ...)`` or ``self._put(record, <condition>, ...)``. The
states it moves from are the ones its condition names (``#state = :active``, ``#state IN
(:claimed, :cancelling)``; ``attribute_not_exists(action_id)``: no record yet, ``[*]``;
``attribute_exists(withdrawn)``: a withdrawn, ended record); the state it moves to is the one its
update sets (``#state = :ended``), or the state it came from when it sets none. The expressions
are evaluated from the module's own constants and helpers, so this reads what DynamoDB is sent.
"""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "connectors" / "store"
LIFECYCLE = STORE / "lifecycle.py"
RECORD = ROOT / "connectors" / "store" / "record.py"
START = "[*]"  # no record: Mermaid's start

Edge = tuple[str, str, str]  # (from, to, transition)


def states() -> list[str]:
    """The record's states: record.py's state constants, in order."""
    tree = ast.parse(RECORD.read_text())
    found = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("CLAIMED", "ACTIVE", "CANCELLING", "ENDED")
            and isinstance(node.value, ast.Constant)
        ):
            found.append(str(node.value.value))
    return found


class _Expressions:
    """Evaluates the string expressions of connectors/store/: literals, module constants and class
    attributes (``self.ENDS``, from any store module), ``+`` and f-strings, a method's local
    variables (every value assigned to one: an ``if`` gives alternatives), and calls of the
    store's helpers that return a string (``self._cancelling_set()``, and the store modules' own
    functions: ``links_set(...)``); a note appended
    (``self._note_set(...)``) adds nothing a transition depends on. Each expression evaluates to
    its possible values."""

    def __init__(self, trees: list[ast.Module]) -> None:
        self.constants: dict[str, list[str]] = {}
        self.attributes: dict[str, ast.expr] = {}
        self.helpers: dict[str, ast.FunctionDef] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        for tree in trees:
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):  # a module's function: called by its name
                    self.functions[node.name] = node
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    with contextlib.suppress(ValueError):
                        self.constants[node.targets[0].id] = self.values(node.value, None)
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name.startswith("_"):
                            self.helpers[item.name] = item
                        if (
                            isinstance(item, ast.Assign)
                            and len(item.targets) == 1
                            and isinstance(item.targets[0], ast.Name)
                        ):
                            self.attributes[item.targets[0].id] = item.value

    def values(self, node: ast.expr, method: ast.FunctionDef | None) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if isinstance(node, ast.Name) and method is not None:
            assigned = [
                item.value
                for item in ast.walk(method)
                if isinstance(item, ast.Assign)
                and len(item.targets) == 1
                and isinstance(item.targets[0], ast.Name)
                and item.targets[0].id == node.id
            ]
            if assigned:
                return [value for expression in assigned for value in self.values(expression, method)]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and node.attr in self.attributes
        ):
            return self.values(self.attributes[node.attr], None)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return [a + b for a in self.values(node.left, method) for b in self.values(node.right, method)]
        if isinstance(node, ast.IfExp):  # an optional part (a heartbeat when due): the state is elsewhere
            return [a + " " + b for a in self.values(node.body, method) for b in self.values(node.orelse, method)]
        if isinstance(node, ast.JoinedStr):
            texts = [""]
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    options = self.values(part.value, method)
                else:
                    options = self.values(part, method)  # type: ignore[arg-type]
                texts = [text + option for text in texts for option in options]
            return texts
        called = node.func if isinstance(node, ast.Call) else None
        if (isinstance(called, ast.Attribute) and called.attr in self.helpers) or (
            isinstance(called, ast.Name) and called.id in self.functions
        ):
            if isinstance(called, ast.Attribute) and called.attr == "_note_set":
                return [""]
            helper = self.helpers[called.attr] if isinstance(called, ast.Attribute) else self.functions[called.id]
            returned = [n for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value is not None]
            if len(returned) == 1:
                return self.values(returned[0].value, helper)  # type: ignore[arg-type]
        raise ValueError(f"line {getattr(node, 'lineno', '?')}: not a string this reader can evaluate")


def _sources(condition: str, all_states: list[str]) -> list[str]:
    found = []
    if "attribute_not_exists(action_id)" in condition:
        found.append(START)
    if "attribute_exists(withdrawn)" in condition:
        found.append("ended")
    found += [state for state in all_states if f":{state}" in condition and state not in found]
    return found


def _target(update: str) -> str | None:
    match = re.search(r"#state\s*=\s*:(\w+)", update.split(" REMOVE ")[0])
    return match.group(1) if match else None


def transitions() -> set[Edge]:
    """Every (from, to, method) that the task store's conditional writes allow: TaskStore's
    (lifecycle.py) and those of the classes mixed into it in connectors/store/ (cancel_lease.py,
    status_reads.py, pushed_status.py)."""
    edges: set[Edge] = set()
    all_states = states()
    parsed = {path: ast.parse(path.read_text()) for path in sorted(STORE.glob("*.py"))}
    expressions = _Expressions(list(parsed.values()))
    for path, tree in parsed.items():
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            for method in cls.body:
                if isinstance(method, ast.FunctionDef) and not method.name.startswith("_"):
                    try:
                        edges |= _method_edges(method, expressions, all_states)
                    except ValueError as error:
                        raise ValueError(f"{path.relative_to(ROOT)}: {cls.name}.{method.name}: {error}") from None
    return edges


def _method_edges(method: ast.FunctionDef, expressions: _Expressions, all_states: list[str]) -> set[Edge]:
    edges: set[Edge] = set()
    for node in ast.walk(method):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "_update" and len(node.args) >= 3:
            writes = [
                (condition, _target(update))
                for update in expressions.values(node.args[1], method)
                for condition in expressions.values(node.args[2], method)
            ]
        elif node.func.attr == "_put" and len(node.args) >= 2:
            writes = [(condition, _assigned_state(method)) for condition in expressions.values(node.args[1], method)]
        else:
            continue
        for condition, target in writes:
            for source in _sources(condition, all_states):
                edges.add((source, target or source, method.name))
    return edges


def _assigned_state(method: ast.FunctionDef) -> str | None:
    """The state a method puts a whole record in: ``record.state = CLAIMED`` (or a tuple assignment)."""
    constants = {"CLAIMED": "claimed", "ACTIVE": "active", "CANCELLING": "cancelling", "ENDED": "ended"}
    for node in ast.walk(method):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (
                    zip(target.elts, node.value.elts, strict=False)
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    else [(target, node.value)]
                )
                for left, right in pairs:
                    if isinstance(left, ast.Attribute) and left.attr == "state" and isinstance(right, ast.Name):
                        return constants.get(right.id)
    return None


# -- the diagram -----------------------------------------------------------------------------

_MERMAID = re.compile(r"```mermaid\n(?P<body>.*?)```", re.DOTALL)
_EDGE = re.compile(r"^\s*(?P<from>\[\*\]|\w+)\s*-->\s*(?P<to>\[\*\]|\w+)\s*(?::\s*(?P<label>.*))?$")


def state_diagram(markdown: str) -> str:
    """The page's ``stateDiagram-v2`` block."""
    for match in _MERMAID.finditer(markdown):
        if match.group("body").lstrip().startswith("stateDiagram"):
            return match.group("body")
    raise ValueError("no mermaid stateDiagram block")


def diagram_edges(diagram: str, methods: set[str]) -> set[Edge]:
    """(from, to, method) for every transition the diagram draws: each edge's label names one or
    more methods (``claim_cancel, reap_claim``); other words in a label are notes."""
    edges: set[Edge] = set()
    for line in diagram.splitlines():
        match = _EDGE.match(line)
        if not match:
            continue
        names = [word for word in re.findall(r"[a-z_]+", match.group("label") or "") if word in methods]
        if not names:
            raise ValueError(f"a diagram edge that names no transition of TaskStore: {line.strip()!r}")
        for name in names:
            edges.add((match.group("from"), match.group("to"), name))
    return edges


def diagram_states(diagram: str) -> set[str]:
    found: set[str] = set()
    for line in diagram.splitlines():
        match = _EDGE.match(line)
        if match:
            found |= {match.group("from"), match.group("to")}
    return found - {START}


if __name__ == "__main__":
    for edge in sorted(transitions()):
        print(edge)
