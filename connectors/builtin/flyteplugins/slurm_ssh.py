"""The SSH side of the ``slurm`` connector: ``sbatch``/``squeue``/``sacct``/``scontrol``/``scancel``
and ``tail`` on a Slurm login node over one reused asyncssh connection, as flyteplugins-slurm
2.12.1's ``SSHTransport`` runs them (the same commands, the same quoting, the script written by
SFTP). Failures become Connect errors:

| failure | code |
|---|---|
| the key is refused, the host key does not match | permission_denied |
| the login node cannot be reached, the connection drops, a command times out | unavailable |
| Slurm answers that its controller or database is unreachable | unavailable |
| ``sbatch`` refuses the job | invalid_argument, with its stderr |
| the SSH key secret is not a private key | failed_precondition |
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncssh

from ...errors import (
    Code,
    ConnectError,
    failed_precondition,
    internal,
    invalid_argument,
    unavailable,
)

logger = logging.getLogger(__name__)

SACCT_FORMAT = "JobIDRaw,State,ExitCode,Reason"
SQUEUE_FORMAT = "%i|%T|%r"
# Slurm's words for "cannot reach the controller/database", told apart from "no such job".
_UNAVAILABLE_MARKERS = (
    "unable to contact",
    "connection timed out",
    "socket timed out",
    "slurmdbd",
    "no such file or directory",
    "protocol authentication error",
)


@dataclass
class SlurmJobState:
    job_id: str
    state: str
    exit_code: str | None = None
    reason: str | None = None

    @property
    def base_state(self) -> str:
        """``CANCELLED by 1234`` and ``CANCELLED+`` are both ``CANCELLED``."""
        return self.state.split()[0].rstrip("+").upper() if self.state.strip() else ""


def _rows(output: str) -> Iterable[list[str]]:
    for line in output.splitlines():
        parts = line.strip().split("|")
        if line.strip() and len(parts) >= 2:
            yield [part.strip() for part in parts]


def parse_sacct(output: str) -> dict[str, SlurmJobState]:
    """``sacct -X -n -P --format=JobIDRaw,State,ExitCode,Reason``; step rows (``1.batch``) skipped."""
    states = {}
    for parts in _rows(output):
        if "." in parts[0]:
            continue
        exit_code = parts[2] if len(parts) > 2 and parts[2] else None
        reason = parts[3] if len(parts) > 3 and parts[3] not in ("", "None") else None
        states[parts[0]] = SlurmJobState(parts[0], parts[1], exit_code, reason)
    return states


def parse_squeue(output: str) -> dict[str, SlurmJobState]:
    """``squeue -h -o '%i|%T|%r'``."""
    states = {}
    for parts in _rows(output):
        reason = parts[2] if len(parts) > 2 else ""
        states[parts[0]] = SlurmJobState(parts[0], parts[1], reason=reason if reason and reason != "None" else None)
    return states


def parse_scontrol(output: str) -> SlurmJobState | None:
    """``scontrol show job <id> --oneliner``: for clusters without accounting."""
    fields = dict(part.split("=", 1) for part in output.split() if "=" in part and not part.startswith("="))
    if not fields.get("JobId") or not fields.get("JobState"):
        return None
    reason = fields.get("Reason")
    return SlurmJobState(
        fields["JobId"], fields["JobState"], fields.get("ExitCode"), None if reason in (None, "None") else reason
    )


def parse_sbatch_job_id(output: str) -> str:
    """``sbatch --parsable`` prints ``<jobid>`` or ``<jobid>;<cluster>``."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    job_id = first.split(";")[0].strip()
    if not job_id.isdigit():
        raise internal(f"Unexpected sbatch output: {output!r}")
    return job_id


def _unreachable(command: str, host: str, stderr: str, rc: int) -> ConnectError | None:
    if rc != 0 and any(marker in stderr.lower() for marker in _UNAVAILABLE_MARKERS):
        return unavailable(f"`{command}` could not reach Slurm on {host} (rc={rc}): {stderr.strip()}")
    return None


def q(value: str) -> str:
    return shlex.quote(value)


class SSHTransport:
    """One login-node connection, opened on first use and again when it has dropped (or when
    a call comes on another event loop: a Lambda may give each invocation a new one)."""

    def __init__(
        self,
        host: str,
        username: str,
        private_key: str,
        port: int = 22,
        known_hosts: str | None = None,
        known_hosts_data: str | None = None,
        skip_host_key_verification: bool = False,
        connect_timeout: float = 30.0,
        command_timeout: float = 60.0,
    ) -> None:
        if not host or not username or not private_key:
            raise invalid_argument("Slurm SSH transport requires a host, a username and a private key")
        self.host, self.port, self.username = host, port, username
        self._private_key = private_key
        self._known_hosts, self._known_hosts_data = known_hosts, known_hosts_data
        self._skip = skip_host_key_verification
        self._connect_timeout, self._command_timeout = connect_timeout, command_timeout
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        lock = self._lock
        if self._loop is not loop or lock is None:  # a connection and a lock belong to the loop that made them
            lock = asyncio.Lock()
            self._conn, self._loop, self._lock = None, loop, lock
        async with lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            if self._skip:
                known_hosts: Any = None
                logger.warning(
                    "Slurm SSH transport: host key verification disabled for %s. "
                    "Set `known_hosts` on the Slurm config for production use.",
                    self.host,
                )
            elif self._known_hosts_data:
                known_hosts = self._known_hosts_data.encode()  # bytes: the entries themselves
            else:
                known_hosts = self._known_hosts or ()  # (): asyncssh's default, ~/.ssh/known_hosts
            try:
                key = asyncssh.import_private_key(self._private_key)
            except (asyncssh.KeyImportError, ValueError) as error:
                raise failed_precondition(f"The Slurm SSH private key could not be read: {error}") from None
            where = f"{self.username}@{self.host}:{self.port}"
            try:
                self._conn = await asyncio.wait_for(
                    asyncssh.connect(
                        self.host, port=self.port, username=self.username, client_keys=[key], known_hosts=known_hosts
                    ),
                    timeout=self._connect_timeout,
                )
            except asyncssh.PermissionDenied as error:
                raise ConnectError(
                    Code.PERMISSION_DENIED, f"SSH login to {where} was refused: {error.reason}"
                ) from None
            except asyncssh.HostKeyNotVerifiable as error:
                raise ConnectError(
                    Code.PERMISSION_DENIED, f"The SSH host key of {where} could not be verified: {error.reason}"
                ) from None
            except TimeoutError:
                raise unavailable(f"SSH connection to {where} timed out after {self._connect_timeout:.0f}s") from None
            except (OSError, asyncssh.Error) as error:
                raise unavailable(f"SSH connection to {where} failed: {error}") from None
            return self._conn

    async def run(self, command: str, check: bool = True) -> tuple[str, str, int]:
        conn = await self._connection()
        try:  # a wedged login node would otherwise hold the call until the service's deadline
            result = await asyncio.wait_for(conn.run(command, check=False), timeout=self._command_timeout)
        except TimeoutError:
            raise unavailable(f"`{command}` timed out after {self._command_timeout:.0f}s on {self.host}") from None
        except (OSError, asyncssh.Error) as error:
            self._conn = None
            raise unavailable(f"`{command}` failed on {self.host}: {error}") from None
        stdout = result.stdout if isinstance(result.stdout, str) else (result.stdout or b"").decode()
        stderr = result.stderr if isinstance(result.stderr, str) else (result.stderr or b"").decode()
        rc = -1 if result.exit_status is None else result.exit_status
        if check and rc != 0:
            message = f"`{command}` failed on {self.host} (rc={rc}): {stderr.strip() or stdout.strip()}"
            raise _unreachable(command, self.host, stderr, rc) or internal(message)
        return stdout, stderr, rc

    async def home(self) -> str:
        stdout, _, _ = await self.run("pwd")
        return stdout.strip()

    async def submit(self, script: str, script_path: str) -> str:
        """Write ``script`` to ``script_path`` (SFTP, mode 0700) and ``sbatch --parsable`` it."""
        await self.run(f"mkdir -p {q(posixpath.dirname(script_path))}")
        conn = await self._connection()
        try:
            async with conn.start_sftp_client() as sftp:
                async with sftp.open(script_path, "w") as f:
                    await f.write(script)
                await sftp.chmod(script_path, 0o700)
        except asyncssh.SFTPError as error:
            raise failed_precondition(f"Writing {script_path} on {self.host} failed: {error.reason}") from None
        except (OSError, asyncssh.Error) as error:
            raise unavailable(f"Writing {script_path} on {self.host} failed: {error}") from None
        command = f"sbatch --parsable {q(script_path)}"
        stdout, stderr, rc = await self.run(command, check=False)
        if rc != 0:  # sbatch refused the job: its stderr says why
            raise _unreachable(command, self.host, stderr, rc) or invalid_argument(
                f"`{command}` failed on {self.host} (rc={rc}): {stderr.strip() or stdout.strip()}"
            )
        return parse_sbatch_job_id(stdout)

    async def find(self, job_name: str) -> str | None:
        """The id of this user's job named ``job_name`` (pending, running or finished), if any:
        how a replayed create finds the job an earlier try submitted."""
        command = f"squeue -h -u {q(self.username)} -n {q(job_name)} -o {q(SQUEUE_FORMAT)}"
        stdout, stderr, rc = await self.run(command, check=False)
        if error := _unreachable("squeue", self.host, stderr, rc):
            raise error
        found = sorted(parse_squeue(stdout), key=int)
        if not found:
            command = f"sacct -X -n -P -u {q(self.username)} --name={q(job_name)} -S now-7days --format={SACCT_FORMAT}"
            stdout, stderr, rc = await self.run(command, check=False)
            if error := _unreachable("sacct", self.host, stderr, rc):
                raise error
            found = sorted(parse_sacct(stdout) if rc == 0 else {}, key=int)
        return found[-1] if found else None

    async def status(self, job_ids: Iterable[str]) -> dict[str, SlurmJobState]:
        """squeue for jobs still in the system, then sacct, then scontrol (no accounting)."""
        ids = sorted({str(j) for j in job_ids})
        if not ids:
            return {}
        stdout, stderr, rc = await self.run(f"squeue -h -j {','.join(ids)} -o {q(SQUEUE_FORMAT)}", check=False)
        if error := _unreachable("squeue", self.host, stderr, rc):
            raise error
        states = parse_squeue(stdout)
        missing = [j for j in ids if j not in states]
        if missing:
            stdout, stderr, rc = await self.run(
                f"sacct -X -n -P -j {','.join(missing)} --format={SACCT_FORMAT}", check=False
            )
            if error := _unreachable("sacct", self.host, stderr, rc):
                raise error
            states.update(parse_sacct(stdout))
        for job_id in [j for j in ids if j not in states]:
            stdout, _, rc = await self.run(f"scontrol show job {q(job_id)} --oneliner", check=False)
            state = parse_scontrol(stdout) if rc == 0 and stdout.strip() else None
            if state:
                states[job_id] = state
        return states

    async def cancel(self, job_id: str) -> None:
        """``scancel``; a finished or unknown job is not an error."""
        command = f"scancel {q(str(job_id))}"
        _, stderr, rc = await self.run(command, check=False)
        # The port also takes "already completing or completed" as done: a job that ended
        # between polls must not make DeleteTask fail (and be retried) for ever.
        if rc != 0 and "Invalid job id" not in stderr and "already completing or completed" not in stderr:
            message = f"scancel {job_id} failed on {self.host}: {stderr.strip()}"
            lowered = stderr.lower()
            if ("access" in lowered and "denied" in lowered) or "permission denied" in lowered:
                raise ConnectError(Code.PERMISSION_DENIED, message)
            raise _unreachable(command, self.host, stderr, rc) or internal(message)

    async def tail(self, path: str, lines: int = 100) -> str:
        """The last ``lines`` lines of a file on the cluster; "" when it is not there."""
        stdout, _, rc = await self.run(f"tail -n {int(lines)} {q(path)} 2>/dev/null", check=False)
        return stdout if rc == 0 else ""

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
