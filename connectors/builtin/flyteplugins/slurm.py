"""``slurm``: a Flyte task run as a Slurm job over SSH, ported from flyteplugins-slurm 2.12.1.

The task's own container image and entrypoint run through Pyxis/Enroot (or Apptainer) in an
sbatch script written to the login node (``slurm_script`` writes it); the commands are those of
``slurm_ssh``.

| | |
|---|---|
| create | ``pwd`` (a relative working dir), ``mkdir -p``, the script by SFTP, ``sbatch --parsable``; the job is named after the idempotency token and looked up (``squeue``, ``sacct``) first |
| get | ``squeue``, then ``sacct``, then ``scontrol show job``; the stderr tail on failure |
| delete | ``scancel`` (a finished or unknown job is not an error) |
| get_logs | the last 500 lines of the job's stdout and stderr files (``tail``) |
| secrets | ``ssh_private_key`` (or ``FLYTE_SLURM_SSH_PRIVATE_KEY``), ``known_hosts_data`` |

The key goes only to a login node the deployment lists (SlurmHosts, or the one FLYTE_SLURM_HOST
names), for every call: none listed is ``failed_precondition``, another host
``permission_denied``, before any SSH connection (docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flyteidl2.connector.connector_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    TaskExecutionMetadata,
)
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.tasks_pb2 import TaskTemplate
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from ...connector import AsyncConnector, Resource, ResourceMeta
from ...errors import failed_precondition, internal, invalid_argument, not_found
from ...secrets import require_listed_host
from ...settings import SLURM_HOSTS
from .slurm_script import render_container_job
from .slurm_ssh import SlurmJobState, SSHTransport

logger = logging.getLogger(__name__)

ENV_HOST, ENV_PORT, ENV_USERNAME = "FLYTE_SLURM_HOST", "FLYTE_SLURM_PORT", "FLYTE_SLURM_USERNAME"
ENV_SSH_PRIVATE_KEY, ENV_KNOWN_HOSTS = "FLYTE_SLURM_SSH_PRIVATE_KEY", "FLYTE_SLURM_KNOWN_HOSTS"
ENV_WORKING_DIR, ENV_SKIP_HOST_KEY_VERIFICATION = "FLYTE_SLURM_WORKING_DIR", "FLYTE_SLURM_SKIP_HOST_KEY_VERIFICATION"
DEFAULT_WORKING_DIR = ".flyte/jobs"
STDERR_TAIL_LINES, LOG_TAIL_LINES = 30, 500

_PHASES = {
    TaskExecution.QUEUED: (
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "SUSPENDED",
        "STOPPED",
    ),
    TaskExecution.RUNNING: ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"),
    TaskExecution.SUCCEEDED: ("COMPLETED",),
    TaskExecution.RETRYABLE_FAILED: ("PREEMPTED",),
    TaskExecution.ABORTED: ("CANCELLED",),
    TaskExecution.FAILED: (
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "TIMEOUT",
        "DEADLINE",
        "BOOT_FAIL",
        "SPECIAL_EXIT",
        "REVOKED",
    ),
}
STATE_PHASES = {state: phase for phase, states in _PHASES.items() for state in states}


def slurm_state_to_phase(state: str) -> int:
    base = state.split()[0].upper() if state and state.strip() else ""
    if base in STATE_PHASES:
        return STATE_PHASES[base]
    # An unknown state is more often terminal than not: polling on would hide it until the timeout.
    raise internal(
        f"Unrecognized Slurm job state {state!r}. If this is a real Slurm state, it needs adding to "
        "the state map in flyteplugins.slurm.connector."
    )


# -- the connector --------------------------------------------------------------------------------


@dataclass
class SlurmJobMetadata(ResourceMeta):
    job_id: str
    job_name: str
    host: str
    username: str
    port: int
    stdout_path: str
    stderr_path: str
    known_hosts: str | None = None
    skip_host_key_verification: bool = False
    declared_outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # slurm_script only


def _job_name(task_template: TaskTemplate, idempotency_token: str) -> str:
    """``flyte-<task>-<suffix>``; the suffix is the token's first 16 characters (8 random hex
    in the original), so a replayed create finds the job by name."""
    base = task_template.id.name.rsplit(".", 1)[-1] if task_template.id.name else "task"
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", base)[:40].strip("-.") or "task"
    suffix = re.sub(r"[^A-Za-z0-9]", "", idempotency_token)[:16] or uuid.uuid4().hex[:8]
    return f"flyte-{base}-{suffix}"


def _int_or_none(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value  # Struct numbers are floats


def _execution_env(tem: TaskExecutionMetadata | None) -> dict[str, str]:
    """What flytek8s adds to a pod from the execution id (the runtime needs project and domain)."""
    if tem is None or not tem.HasField("task_execution_id"):
        return {}
    execution = tem.task_execution_id.node_execution_id.execution_id
    env = {
        name: value
        for name, value in (
            ("FLYTE_INTERNAL_EXECUTION_PROJECT", execution.project),
            ("FLYTE_INTERNAL_EXECUTION_DOMAIN", execution.domain),
            ("FLYTE_INTERNAL_EXECUTION_ID", execution.name),
            ("_U_ORG_NAME", execution.org),
        )
        if value
    }
    env["FLYTE_ATTEMPT_NUMBER"] = str(tem.task_execution_id.retry_attempt)
    return env


def _describe(state: SlurmJobState) -> str:
    parts = [f"Slurm job {state.job_id} is {state.state}"]
    if state.exit_code and state.exit_code != "0:0":
        parts.append(f"exit code {state.exit_code}")
    if state.reason:
        parts.append(f"reason: {state.reason}")
    return ", ".join(parts)


class SlurmConnector(AsyncConnector[SlurmJobMetadata]):
    """Run Flyte tasks as Slurm jobs: the task's image and entrypoint via Pyxis/Enroot or Apptainer."""

    name = "Slurm Connector"
    task_type_name = "slurm"
    task_type_version = 0
    metadata_type = SlurmJobMetadata
    secret_names: tuple[str, ...] = ("ssh_private_key", "known_hosts_data")
    missing_secret_hint = f"Or set {ENV_SSH_PRIVATE_KEY} on the function."
    # The job is found by its name: squeue while the cluster holds it, then sacct over 7 days
    # (with accounting on; without it, only until the cluster forgets the job, MinJobAge).
    replay_window = timedelta(days=7)

    def replay_hint(self, task_template: TaskTemplate, idempotency_token: str, task_execution_metadata: Any) -> str:
        return f"a Slurm job named {_job_name(task_template, idempotency_token)} (squeue, sacct)"

    @property
    def required_secrets(self) -> tuple[str, ...]:
        """The SSH key, unless the deployment gives it in the environment."""
        return () if os.getenv(ENV_SSH_PRIVATE_KEY) else ("ssh_private_key",)

    def __init__(self) -> None:
        self._transports: dict[str, SSHTransport] = {}  # one reused connection per login and key

    def _transport(
        self, meta: SlurmJobMetadata, ssh_private_key: str | None, known_hosts_data: str | None
    ) -> SSHTransport:
        require_listed_host(  # before the key is used: the host is the deployment's to list, not the task's
            "slurm",
            meta.host,
            SLURM_HOSTS,
            kind="login node",
            credential="SSH key",
            also=[os.getenv(ENV_HOST, "")],
        )
        key = ssh_private_key or os.getenv(ENV_SSH_PRIVATE_KEY)
        if not key:
            raise failed_precondition(
                "Missing Slurm SSH private key: no ssh_private_key secret was given (the service reads it "
                f"from Secrets Manager, <SECRETS_PREFIX>/slurm/ssh_private_key), and {ENV_SSH_PRIVATE_KEY} is not set."
            )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        hosts = hashlib.sha256(known_hosts_data.encode()).hexdigest()[:16] if known_hosts_data else ""
        cache_key = (
            f"{meta.username}@{meta.host}:{meta.port}/{digest}/{meta.known_hosts}/{hosts}/"
            f"{meta.skip_host_key_verification}"
        )
        if cache_key not in self._transports:
            self._transports[cache_key] = SSHTransport(
                host=meta.host,
                port=meta.port,
                username=meta.username,
                private_key=key,
                known_hosts=meta.known_hosts,
                known_hosts_data=known_hosts_data,
                skip_host_key_verification=meta.skip_host_key_verification,
            )
        return self._transports[cache_key]

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        ssh_private_key: str | None = None,
        known_hosts_data: str | None = None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> SlurmJobMetadata:
        custom = MessageToDict(task_template.custom)
        connection = custom.get("connection") or {}
        # The deployment's settings win over the task's: the key is the deployment's, and a
        # task must not send it to a host of its choosing, nor turn off host-key checking.
        host = os.getenv(ENV_HOST) or connection.get("host")
        username = os.getenv(ENV_USERNAME) or connection.get("username")
        port = int(os.getenv(ENV_PORT) or _int_or_none(connection.get("port")) or 22)
        known_hosts = os.getenv(ENV_KNOWN_HOSTS) or connection.get("known_hosts")
        skip = os.getenv(ENV_SKIP_HOST_KEY_VERIFICATION, "").lower() in ("1", "true", "yes")
        if connection.get("skip_host_key_verification") and not skip:
            logger.warning(
                "Ignoring `skip_host_key_verification` from task config; set "
                f"{ENV_SKIP_HOST_KEY_VERIFICATION} on the connector if that is really wanted."
            )
        if not host or not username:
            raise invalid_argument(
                "Missing Slurm connection details. Set `host` and `username` on the Slurm config, "
                f"or set {ENV_HOST} and {ENV_USERNAME} on the connector."
            )
        if task_template.type != self.task_type_name:
            raise invalid_argument(f"task type {task_template.type!r} is not served here: only {self.task_type_name!r}")
        container = task_template.container  # never None in protobuf: no container means no image
        container_cfg = custom.get("container") or {}
        image = container_cfg.get("image") or container.image
        if not image:
            raise invalid_argument("slurm task has no container image")

        name = _job_name(task_template, idempotency_token)
        meta = SlurmJobMetadata(
            job_id="",
            job_name=name,
            host=host,
            username=username,
            port=port,
            stdout_path="",
            stderr_path="",
            known_hosts=known_hosts,
            skip_host_key_verification=skip,
        )
        transport = self._transport(meta, ssh_private_key, known_hosts_data)
        working_dir = custom.get("working_dir") or os.getenv(ENV_WORKING_DIR) or DEFAULT_WORKING_DIR
        if not posixpath.isabs(working_dir):
            working_dir = posixpath.join(await transport.home(), working_dir)
        script_path = posixpath.join(working_dir, f"{name}.sbatch")
        meta.stdout_path = posixpath.join(working_dir, f"{name}.out")
        meta.stderr_path = posixpath.join(working_dir, f"{name}.err")
        # Lowest first: template env, the execution's identity, the platform's, the task's own.
        env = {
            **{kv.key: kv.value for kv in container.env},
            **_execution_env(task_execution_metadata),
            **(dict(task_execution_metadata.environment_variables) if task_execution_metadata else {}),
            **(custom.get("env") or {}),
        }
        script = render_container_job(
            job_name=name,
            stdout_path=meta.stdout_path,
            stderr_path=meta.stderr_path,
            image=image,
            command=[*container.command, *container.args],
            env=env,
            sbatch_fields={k: _int_or_none(v) for k, v in (custom.get("sbatch") or {}).items()},
            sbatch_extra={k: _int_or_none(v) for k, v in (custom.get("sbatch_options") or {}).items()},
            container_mounts=container_cfg.get("mounts") or [],
            container_workdir=container_cfg.get("workdir"),
            srun_extra_args=container_cfg.get("srun_args") or [],
            container_runtime=container_cfg.get("runtime") or "pyxis",
            container_args=container_cfg.get("args") or [],
            modules=custom.get("modules") or [],
        )
        if idempotency_token:  # an earlier try of this attempt may have submitted it already
            meta.job_id = await transport.find(name) or ""
        meta.job_id = meta.job_id or await transport.submit(script, script_path)
        return meta

    async def get(
        self,
        resource_meta: SlurmJobMetadata,
        ssh_private_key: str | None = None,
        known_hosts_data: str | None = None,
        **kwargs: Any,
    ) -> Resource:
        meta = resource_meta
        transport = self._transport(meta, ssh_private_key, known_hosts_data)
        state = (await transport.status([meta.job_id])).get(meta.job_id)
        if state is None:
            raise not_found(f"Slurm job {meta.job_id} ({meta.job_name}) is not known to squeue or sacct on {meta.host}")
        phase = slurm_state_to_phase(state.base_state)
        # The job's files are on the login node, not behind a URL: named in the message, not linked.
        message = (
            f"{_describe(state)}\nJob files on {meta.username}@{meta.host}: "
            f"{meta.stdout_path} (stdout), {meta.stderr_path} (stderr)"
        )
        if phase == TaskExecution.RUNNING:
            message += (
                f"\nAttach to the running job: ssh {meta.username}@{meta.host} "
                f"'srun --jobid={meta.job_id} --overlap --pty bash'"
            )
        if phase in (TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED):
            tail = await transport.tail(meta.stderr_path, STDERR_TAIL_LINES)
            if tail.strip():
                message = f"{message}\n--- stderr (last {STDERR_TAIL_LINES} lines) ---\n{tail.rstrip()}"
        return Resource(phase=phase, message=message)

    async def delete(
        self,
        resource_meta: SlurmJobMetadata,
        ssh_private_key: str | None = None,
        known_hosts_data: str | None = None,
        **kwargs: Any,
    ) -> None:
        await self._transport(resource_meta, ssh_private_key, known_hosts_data).cancel(resource_meta.job_id)

    async def get_logs(
        self,
        resource_meta: SlurmJobMetadata,
        ssh_private_key: str | None = None,
        known_hosts_data: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GetTaskLogsResponse]:
        from flyteidl2.logs.dataplane.payload_pb2 import LogLine

        meta = resource_meta
        transport = self._transport(meta, ssh_private_key, known_hosts_data)
        now = Timestamp()
        now.FromDatetime(datetime.now(UTC))
        lines = []
        for label, path in (("stdout", meta.stdout_path), ("stderr", meta.stderr_path)):
            text = await transport.tail(path, LOG_TAIL_LINES)
            if text.strip():
                lines.append(LogLine(timestamp=now, message=f"--- {label}: {path} ---"))
                lines += [LogLine(timestamp=now, message=line) for line in text.splitlines()]
        if not lines:
            lines.append(
                LogLine(
                    timestamp=now,
                    message=f"No output yet from Slurm job {meta.job_id}. Slurm creates "
                    f"{meta.stdout_path} when the job starts writing.",
                )
            )
        yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(lines=lines))
