"""``template.custom`` of an AWS task type: :class:`Fields` reads it with errors that name the
missing or bad field, :func:`aws_shape` makes its numbers what boto3 takes, and
:func:`refuse_unless_listed` refuses a field that is the deployment's to choose, not the task's
(docs/security.md, "What a task may change"). :class:`Limit` and :class:`MapLimits` hold the
bounds botocore's service models state for what a connector sends, checked before AWS is called
(AWS would refuse the call, and botocore's own validation checks only minimums, in its own words).

Imported from :mod:`connectors.builtin.aws.base`, as every AWS connector does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteidl2.core.tasks_pb2 import TaskTemplate
from google.protobuf import json_format

from ...errors import ConnectError, invalid_argument
from ...settings import DeploymentList

__all__ = [
    "CODE_VARIABLES",
    "CODE_VARIABLE_PREFIXES",
    "Fields",
    "Limit",
    "MapLimits",
    "aws_shape",
    "loads_code",
    "refuse_unless_listed",
]


def refuse_unless_listed(
    task_type: str,
    where: str,
    entry: str,
    why: str,
    allowed_by: DeploymentList,
    *,
    same: Callable[[str], str] = str,
) -> None:
    """``invalid_argument`` naming ``where`` (as the template or the inputs name it), ``why`` it is
    the deployment's, and the list that would allow it, unless the deployment lists ``entry``
    (compared as ``same`` makes both). Said before any AWS call."""
    if same(entry) not in {same(item) for item in allowed_by.values()}:
        raise invalid_argument(
            f"{task_type}: {where} {why}, which is the deployment's to choose, not a task's; a deployment "
            f"that means its tasks to set it adds {entry!r} to {allowed_by.named}"
        )


# Environment variables that make a shell, the dynamic loader or a language runtime load or run
# code their value names (BASH_ENV is even expanded by bash, command substitution included), so a
# task that sets one can change what a registered job runs without touching its command. A list
# of the known ones, not a proof: a job's own code may read others in ways that run code.
CODE_VARIABLES = frozenset(
    {
        "BASH_ENV",
        "BASHOPTS",
        "CLASSPATH",
        "ENV",
        "GCONV_PATH",
        "JAVA_TOOL_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "_JAVA_OPTIONS",
        "LD_AUDIT",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "PROMPT_COMMAND",
        "PS4",
        "PYSPARK_DRIVER_PYTHON",
        "PYSPARK_PYTHON",
        "PYTHONBREAKPOINT",
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "PYTHONWARNINGS",
        "RUBYLIB",
        "RUBYOPT",
        "SHELLOPTS",
        "SPARK_SUBMIT_OPTS",
        # Commands git runs, and where pip, uv and the AWS SDKs and CLI fetch what the job then
        # runs (a package's build, a script the job downloads from S3).
        "GIT_ASKPASS",
        "GIT_EDITOR",
        "GIT_EXEC_PATH",
        "GIT_EXTERNAL_DIFF",
        "GIT_PAGER",
        "GIT_PROXY_COMMAND",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "LESSCLOSE",
        "LESSOPEN",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "PIP_CONFIG_FILE",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_INDEX_URL",
        "R_ENVIRON",
        "R_ENVIRON_USER",
        "R_PROFILE",
        "R_PROFILE_USER",
        "SSH_ASKPASS",
        "UV_DEFAULT_INDEX",
        "UV_EXTRA_INDEX_URL",
        "UV_FIND_LINKS",
        "UV_INDEX",
        "UV_INDEX_URL",
    }
)
# Families of them: exported bash functions (BASH_FUNC_<name>%%), git's configuration by
# environment (GIT_CONFIG_COUNT, _KEY_<n>, _VALUE_<n>, _PARAMETERS: core.sshCommand, core.fsmonitor
# and aliases run commands), Lua's LUA_INIT[_5_x] (code itself), npm's configuration
# (npm_config_script_shell, _registry...), and AWS_ENDPOINT_URL[_<SERVICE>].
CODE_VARIABLE_PREFIXES = ("BASH_FUNC_", "GIT_CONFIG", "LUA_INIT", "NPM_CONFIG_", "AWS_ENDPOINT_URL")


def loads_code(variable: str) -> bool:
    """Whether an environment variable of that name can make the job load or run other code:
    one of :data:`CODE_VARIABLES` or of a family of :data:`CODE_VARIABLE_PREFIXES`. Only its
    name up to an ``=`` counts: a container's environment is ``NAME=VALUE`` text, so a name
    ``BASH_ENV=$(...)#`` would set ``BASH_ENV``."""
    name = variable.split("=", 1)[0].strip().upper()
    return name in CODE_VARIABLES or name.startswith(CODE_VARIABLE_PREFIXES)


class Fields:
    """``template.custom`` of one task type, read with errors that name the missing or bad field."""

    def __init__(self, task_type: str, template: TaskTemplate) -> None:
        self.task_type = task_type
        try:
            data = json_format.MessageToDict(template.custom) if template.HasField("custom") else {}
        except ValueError as error:  # an infinite or NaN number does not serialize
            raise invalid_argument(f"{task_type}: template.custom is not JSON: {error}") from None
        self.data: dict[str, Any] = aws_shape(data)

    def _bad(self, name: str, expected: str, value: Any) -> ConnectError:
        return invalid_argument(f"{self.task_type}: template.custom.{name} must be {expected}, got {value!r}")

    def required(self, name: str, kind: type = str) -> Any:
        """A field that must be present and not empty."""
        value = self.data.get(name)
        if value is None or value == "" or value == [] or value == {}:
            raise invalid_argument(f"{self.task_type}: template.custom.{name} is required")
        return self._typed(name, value, kind)

    def optional(self, name: str, kind: type = str, default: Any = None) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        return self._typed(name, value, kind)

    def one_of(self, *names: str) -> tuple[str, str]:
        """Exactly one of ``names`` is given (as a string): which, and its value."""
        given = [name for name in names if self.data.get(name) not in (None, "")]
        if len(given) != 1:
            raise invalid_argument(
                f"{self.task_type}: template.custom needs exactly one of {', '.join(names)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return given[0], self._typed(given[0], self.data[given[0]], str)

    def _typed(self, name: str, value: Any, kind: type) -> Any:
        if kind is int:
            # JSON numbers come back from a Struct as floats: accept whole ones.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise self._bad(name, "a whole number", value)
            return int(value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._bad(name, "a number", value)
            return float(value)
        if kind is str and not isinstance(value, str):
            raise self._bad(name, "a string", value)
        if kind is dict and not isinstance(value, dict):
            raise self._bad(name, "an object", value)
        if kind is list and not isinstance(value, list):
            raise self._bad(name, "a list", value)
        if kind is bool and not isinstance(value, bool):
            raise self._bad(name, "true or false", value)
        return value

    def string_map(self, name: str, limits: MapLimits | None = None) -> dict[str, str]:
        """An optional object of strings (environment variables, arguments, tags), within
        ``limits`` when given."""
        value = self.optional(name, dict, {})
        bad = [key for key, item in value.items() if not isinstance(item, str)]
        if bad:
            raise invalid_argument(
                f"{self.task_type}: template.custom.{name}.{bad[0]} must be a string, got {value[bad[0]]!r}"
            )
        if limits:
            limits.check(self.task_type, f"template.custom.{name}", list(value.items()))
        return dict(value)

    def named_objects(self, name: str, key: str) -> list[dict[str, Any]]:
        """An optional list of AWS-shaped objects, each naming itself by ``key`` (OutputName,
        ChannelName...) with a string when it names itself at all."""
        items = self.optional(name, list, default=[])
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._bad(f"{name}[{index}]", "an object", item)
            if key in item and not isinstance(item[key], str):
                raise self._bad(f"{name}[{index}].{key}", "a string", item[key])
        return items

    def s3_uri(self, name: str, required: bool = False) -> str | None:
        value = self.required(name) if required else self.optional(name)
        if value is not None and not value.startswith("s3://"):
            raise self._bad(name, "an s3:// URI", value)
        return value


@dataclass(frozen=True)
class Limit:
    """The bounds of one shape in botocore's service model (``botocore/data/<service>/<version>/
    service-2.json``): ``least`` its ``min``, ``most`` its ``max`` (None: the model states none),
    of a string's characters or a list's or map's entries. ``means`` says what it bounds, for the
    error. Every Limit made is compared with the locked botocore's model by
    tests/functional/aws/test_documented_limits.py."""

    service: str  # botocore's name of the service: "sagemaker"
    shape: str  # the shape's name in that model: "ProcessingEnvironmentValue"
    most: int | None
    least: int = 0
    means: str = "the value"  # "an Environment value"
    unit: str = "characters"

    made: ClassVar[list[Limit]] = []

    def __post_init__(self) -> None:
        Limit.made.append(self)

    @staticmethod
    def declared() -> list[Limit]:
        """Every Limit made so far (those of the connector modules imported)."""
        return list(Limit.made)

    def check(self, task_type: str, what: str, size: int, hint: str = "", own: tuple[int, str] = (0, "")) -> None:
        """``invalid_argument`` naming ``what`` and this limit when ``size`` is out of bounds.
        ``own``: how many entries the connector adds itself, and what they are for."""
        added, why = own
        source = f"botocore's {self.service} model: {self.shape}"
        verb = "is" if self.unit == "characters" else "has"
        if self.most is not None and size + added > self.most:
            ours = f", and the connector adds {added} of its own ({why}), so at most {self.most - added:,} may be given"
            raise invalid_argument(
                f"{task_type}: {what} {verb} {size:,} {self.unit}; {self.means} {verb} at most "
                f"{self.most:,} {self.unit} ({source} max {self.most}){ours if added else ''}{hint}"
            )
        if size < self.least:
            unit = self.unit if self.least > 1 else self.unit.removesuffix("s")
            raise invalid_argument(
                f"{task_type}: {what} {'is empty' if not size else f'{verb} {size:,} {self.unit}'}; {self.means} "
                f"{verb} at least {self.least:,} {unit} ({source} min {self.least}){hint}"
            )


@dataclass(frozen=True)
class MapLimits:
    """The bounds of a map of strings (or list of Key/Value pairs, as SageMaker's tags) an AWS
    call takes: how many entries, and each key's and value's length."""

    entries: Limit
    key: Limit
    value: Limit

    def check(
        self,
        task_type: str,
        field: str,
        entries: Sequence[tuple[str, str]],
        inputs: Collection[str] = (),
        own: tuple[int, str] = (0, ""),
    ) -> None:
        """``invalid_argument`` for the first entry out of bounds, named as ``field``.<key>, or as
        the input it comes from for a key in ``inputs``. An empty map is not sent, so not checked.
        ``own``: the entries the connector adds (see :meth:`Limit.check`)."""
        if not entries:
            return
        self.entries.check(task_type, f"{field} (with the task's inputs)" if inputs else field, len(entries), own=own)
        for key, value in entries:
            shown = key if len(key) <= 40 else key[:40] + "..."
            self.key.check(task_type, f"input name {shown!r}" if key in inputs else f"{field} key {shown!r}", len(key))
            self.value.check(task_type, f"input {key!r}" if key in inputs else f"{field}.{shown}", len(value))


def aws_shape(value: Any) -> Any:
    """Template data for AWS: a Struct holds every number as a float, and boto3 refuses a float
    where AWS wants an integer (``"vcpus": 2.0``); whole numbers become ints (boto3 takes an int
    wherever AWS wants a float)."""
    if isinstance(value, dict):
        return {key: aws_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [aws_shape(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
