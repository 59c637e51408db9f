"""``TaskRoleArnPattern``: the role ARN, with ``{project}``, ``{domain}`` (and ``{org}``) in it, that
names each project's role.

What the deployment setting is, apart from any task being run: parsed and checked when the
functions start (:class:`connectors.settings.Settings`, a malformed pattern fails the cold start),
the ARN of the one role a project and domain run as (:meth:`RolePattern.role_for`, or
``permission_denied`` when their names cannot make one), and the roles the service's own role may
assume (:meth:`RolePattern.iam_resource`, as template.yaml writes it). Signing a task's AWS calls
as that role is :mod:`connectors.task_roles`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import Code, ConnectError

__all__ = ["PATTERN_ENV", "PLACEHOLDERS", "ROLE_NAME_LIMIT", "ROLE_PATH_LIMIT", "RolePattern", "parse_pattern"]

PATTERN_ENV = "TASK_ROLE_ARN_PATTERN"
PLACEHOLDERS = ("org", "project", "domain")
# A role's path and name (IAM): letters, digits and _+=,.@- ; "/" separates the path.
_ROLE_CHARS = r"A-Za-z0-9_+=,.@\-"
_PATTERN = re.compile(r"arn:(aws[a-z-]*):iam::([0-9]{12}):role/(.+)")
_VALUE = re.compile(rf"[{_ROLE_CHARS}]+")
ROLE_NAME_LIMIT = 64
ROLE_PATH_LIMIT = 512


@dataclass(frozen=True)
class RolePattern:
    """``TaskRoleArnPattern``: a role ARN with ``{project}``, ``{domain}`` (and ``{org}``) in its path or name."""

    text: str

    @property
    def used(self) -> tuple[str, ...]:
        return tuple(name for name in PLACEHOLDERS if f"{{{name}}}" in self.text)

    def iam_resource(self) -> str:
        """The ARN with each placeholder as ``*``: what the service's role may assume (template.yaml does the same)."""
        text = self.text
        for name in PLACEHOLDERS:
            text = text.replace(f"{{{name}}}", "*")
        return text

    def role_for(self, org: str, project: str, domain: str) -> str:
        """The role of a project and domain; ``permission_denied`` when their names cannot make one."""
        values = {"org": org, "project": project, "domain": domain}
        arn = self.text
        for name in self.used:
            value = values[name]
            if not value:
                raise ConnectError(
                    Code.PERMISSION_DENIED,
                    f"the task names no {name}, so TaskRoleArnPattern {self.text} gives it no role to run as",
                )
            if not _VALUE.fullmatch(value):
                raise ConnectError(
                    Code.PERMISSION_DENIED,
                    f"the task's {name} {value!r} has characters an IAM role name cannot hold "
                    f"(letters, digits and _+=,.@- only), so TaskRoleArnPattern {self.text} gives it no role",
                )
            arn = arn.replace(f"{{{name}}}", value)
        name = arn.rsplit("/", 1)[-1]
        if len(name) > ROLE_NAME_LIMIT:
            raise ConnectError(
                Code.PERMISSION_DENIED,
                f"TaskRoleArnPattern {self.text} makes the role name {name!r} for this task, longer than "
                f"IAM's {ROLE_NAME_LIMIT} characters",
            )
        return arn


@functools.lru_cache(maxsize=8)
def parse_pattern(text: str) -> RolePattern | None:
    """The pattern, or None when ``text`` is empty; ``ValueError`` naming what is wrong with it."""
    text = text.strip()
    if not text:
        return None
    found = _PATTERN.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{PATTERN_ENV} must be an IAM role ARN such as arn:aws:iam::123456789012:role/flyte-{{project}}-{{domain}}, "
            f"got {text!r}"
        )
    rest = found.group(3)
    bare = rest
    for name in PLACEHOLDERS:
        bare = bare.replace(f"{{{name}}}", "x")
    if "{" in bare or "}" in bare:
        raise ValueError(f"{PATTERN_ENV}: only {{org}}, {{project}} and {{domain}} may be placeholders, got {text!r}")
    if not re.fullmatch(rf"[{_ROLE_CHARS}/]+", bare) or bare.startswith("/") or "//" in bare:
        raise ValueError(
            f"{PATTERN_ENV}: a role's path and name hold letters, digits and _+=,.@- (and / in the path), "
            f"got {text!r} (no wildcards: the pattern names one role per project and domain)"
        )
    if len(rest) > ROLE_PATH_LIMIT:
        raise ValueError(f"{PATTERN_ENV} is longer than a role's path and name may be: {text!r}")
    return RolePattern(text)
