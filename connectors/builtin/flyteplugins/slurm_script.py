"""The sbatch script of a ``slurm`` task, ported from flyteplugins-slurm 2.12.1 (``flyteplugins.slurm.script``).

:func:`render_container_job` writes the script that runs the task's image and entrypoint in one
``srun`` through Pyxis/Enroot or Apptainer: the ``#SBATCH`` directives (the task's sbatch fields
and options, the options the connector sets refused), ``module load`` lines and the environment.
Values that could smuggle in another option or command are refused (``invalid_argument``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from ...errors import invalid_argument

CONTAINER_RUNTIMES = ("pyxis", "apptainer")
_SBATCH_KEY = re.compile(r"^[a-z][a-z0-9-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the connector: ``output``/``error`` could write to ~/.ssh/authorized_keys, the others
# break its bookkeeping or change what runs and as whom.
_RESERVED = frozenset({"job-name", "output", "error", "chdir", "wrap", "uid", "gid"})
# Older names sbatch still takes for reserved options.
_RESERVED_ALIASES = frozenset({"workdir", "name", "J", "o", "e", "D"})


def _reserved(key: str) -> bool:
    """A reserved option, by its name, an alias, or an abbreviation sbatch (getopt_long) would take
    for it: ``--outp`` is ``--output``."""
    key = key.lstrip("-")
    return key in _RESERVED_ALIASES or any(
        option.startswith(key) for option in _RESERVED | _RESERVED_ALIASES if len(key) >= 1 and len(option) > 1
    )


# Enroot resets PATH; VIRTUAL_ENV survives, so the venv's bin is put back before the entrypoint.
_PATH_SHIM = 'export PATH="${VIRTUAL_ENV:+$VIRTUAL_ENV/bin:}$PATH"; exec "$@"'
_FIELDS = {
    "partition": "partition",
    "nodes": "nodes",
    "ntasks": "ntasks",
    "cpus_per_task": "cpus-per-task",
    "gres": "gres",
    "gpus_per_node": "gpus-per-node",
    "mem": "mem",
    "time_limit": "time",
    "account": "account",
    "qos": "qos",
    "reservation": "reservation",
    "constraint": "constraint",
}
_APPTAINER_SCHEMES = ("docker://", "oras://", "library://", "shub://", "docker-daemon://")


def pyxis_image_ref(image: str) -> str:
    """``ghcr.io/org/img:tag`` -> ``ghcr.io#org/img:tag``; Docker Hub names and paths unchanged."""
    if image.startswith(("/", "./")) or "#" in image:
        return image
    image = image.removeprefix("docker://")
    first, sep, rest = image.partition("/")
    return f"{first}#{rest}" if sep and ("." in first or ":" in first or first == "localhost") else image


def apptainer_image_ref(image: str) -> str:
    return image if image.startswith(("/", "./", *_APPTAINER_SCHEMES)) else f"docker://{image}"


def _container_invocation(
    runtime: str, image: str, mounts: Sequence[str], workdir: str | None, gpus: bool, extra: Sequence[str]
) -> list[str]:
    if runtime == "pyxis":
        parts = [f"--container-image={pyxis_image_ref(image)}"]
        parts += [f"--container-mounts={','.join(mounts)}"] if mounts else []
        parts += [f"--container-workdir={workdir}"] if workdir else []
        return parts + list(extra)
    if runtime == "apptainer":
        parts = ["apptainer", "exec"]
        if gpus and not any(arg in ("--nv", "--rocm") for arg in extra):
            parts.append("--nv")
        parts += ["--bind", ",".join(mounts)] if mounts else []
        parts += ["--pwd", workdir] if workdir else []
        return parts + list(extra) + [apptainer_image_ref(image)]
    raise invalid_argument(f"Unknown container_runtime {runtime!r}; expected one of: {', '.join(CONTAINER_RUNTIMES)}.")


def _directive(key: str, value: object) -> str:
    if not _SBATCH_KEY.match(key):
        raise invalid_argument(f"Invalid sbatch option name: {key!r}")
    if value is True or value is None:
        return f"#SBATCH --{key}"
    rendered = str(value)
    if rendered != rendered.strip() or any(c.isspace() for c in rendered):
        raise invalid_argument(
            f"sbatch option {key!r} may not contain whitespace: {rendered!r}. Whitespace is refused because a "
            "single value could otherwise smuggle in a second option, or end the directive entirely."
        )
    return f"#SBATCH --{key}={rendered}"


def sbatch_directives(
    job_name: str,
    stdout_path: str,
    stderr_path: str,
    fields: Mapping[str, object],
    extra: Mapping[str, object] | None = None,
) -> list[str]:
    options: dict[str, object] = {"job-name": job_name, "output": stdout_path, "error": stderr_path}
    options.update({flag: fields[name] for name, flag in _FIELDS.items() if fields.get(name) is not None})
    for key, value in (extra or {}).items():
        if _reserved(str(key)):
            raise invalid_argument(
                f"sbatch option {str(key)!r} is set by the plugin and cannot be overridden from "
                f"task config. Reserved: {', '.join(sorted(_RESERVED))}."
            )
        options[str(key)] = value
    return [_directive(k, v) for k, v in options.items()]


def render_container_job(
    *,
    job_name: str,
    stdout_path: str,
    stderr_path: str,
    image: str,
    command: Sequence[str],
    env: Mapping[str, str],
    sbatch_fields: Mapping[str, object],
    sbatch_extra: Mapping[str, object] | None = None,
    container_mounts: Sequence[str] = (),
    container_workdir: str | None = None,
    srun_extra_args: Sequence[str] = (),
    container_runtime: str = "pyxis",
    container_args: Sequence[str] = (),
    modules: Sequence[str] = (),
) -> str:
    """The sbatch script running ``command`` in ``image``: one process (``--nodes=1 --ntasks=1``)."""
    if not command:
        raise invalid_argument("A container job needs a non-empty command")
    gpus = "gpu" in str(sbatch_fields.get("gres") or "").lower() or sbatch_fields.get("gpus_per_node") is not None
    srun = [
        "srun",
        "--nodes=1",
        "--ntasks=1",
        *srun_extra_args,
        *_container_invocation(
            container_runtime, image, list(container_mounts), container_workdir, gpus, container_args
        ),
        "bash",
        "-c",
        _PATH_SHIM,
        "--",
        *command,
    ]
    for name in modules:
        if any(c.isspace() for c in name):
            raise invalid_argument(f"module name may not contain whitespace: {name!r}")
    for key in env:
        if not _ENV_NAME.match(key):
            raise invalid_argument(f"Invalid environment variable name: {key!r}")
    return "\n".join(
        [
            "#!/bin/bash",
            *sbatch_directives(job_name, stdout_path, stderr_path, sbatch_fields, sbatch_extra),
            "",
            "set -euo pipefail",
            *(f"module load {shlex.quote(name)}" for name in modules),
            *(f"export {key}={shlex.quote(str(env[key]))}" for key in sorted(env)),
            "",
            shlex.join(srun),
            "",
        ]
    )
