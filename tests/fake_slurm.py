"""A Slurm login node on loopback: an asyncssh server (host key and client key made here) that
answers ``pwd``, ``mkdir -p``, ``sbatch --parsable``, ``squeue``, ``sacct``, ``scontrol show job``,
``scancel``, ``tail`` and ``cat`` from a tiny fake of Slurm in Python, with SFTP chrooted to a
temporary directory. Every command (and every SFTP open/chmod) is recorded in ``calls``.

    with FakeSlurm() as slurm:
        slurm.private_key, slurm.known_hosts, slurm.port    # what a client needs
        slurm.set_state("1001", "RUNNING")                   # steer a job
        slurm.fail["sbatch"] = (1, "sbatch: error: ...")     # make a command fail (once)
"""

from __future__ import annotations

import asyncio
import shlex
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

HOME = "/home/flyte"
USER = "flyte"
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "STOPPED"}


@dataclass
class Job:
    job_id: str
    name: str
    user: str
    script: str
    stdout_path: str
    stderr_path: str
    state: str = "PENDING"
    exit_code: str = "0:0"
    reason: str | None = "Priority"


class FakeSlurm:
    def __init__(self, accounting: bool = True) -> None:
        self.accounting = accounting  # sacct knows jobs (else it answers nothing, as without slurmdbd)
        self.jobs: dict[str, Job] = {}
        self.calls: list[tuple[str, str]] = []  # ("exec", command) / ("sftp-open", path) / ("sftp-chmod", path)
        self.fail: dict[str, tuple[int, str]] = {}  # program -> (rc, stderr), used once
        self.refuse_login = False
        self.connections = 0  # SSH connections accepted (a login or not)
        self.next_id = 1001
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        (self.root / HOME.lstrip("/")).mkdir(parents=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.private_key = self.client_key.export_private_key().decode()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeSlurm:
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.known_hosts = f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)  # open client connections are dropped with the loop
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._tmp.cleanup()

    async def _serve(self) -> Any:
        fake = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                fake.connections += 1

            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return not fake.refuse_login and username == USER and key.public_data == fake.client_key.public_data

        class Sftp(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(fake.root).encode())

            def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                fake.calls.append(("sftp-open", path.decode()))
                return super().open(path, pflags, attrs)

            def setstat(self, path: bytes, attrs: Any) -> Any:
                fake.calls.append(("sftp-chmod", f"{path.decode()} {oct(attrs.permissions or 0)}"))
                return super().setstat(path, attrs)

        return await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[self.host_key], process_factory=self._process, sftp_factory=Sftp
        )

    # -- steering and reading -------------------------------------------------------------------

    def set_state(self, job_id: str, state: str, exit_code: str = "0:0", reason: str | None = None) -> None:
        job = self.jobs[job_id]
        job.state, job.exit_code, job.reason = state, exit_code, reason

    def write_output(self, job_id: str, stdout: str = "", stderr: str = "") -> None:
        job = self.jobs[job_id]
        for path, text in ((job.stdout_path, stdout), (job.stderr_path, stderr)):
            if text:
                self.path(path).write_text(text)

    def path(self, remote: str) -> Path:
        return self.root / remote.lstrip("/")

    def commands(self) -> list[str]:
        return [what for kind, what in self.calls if kind == "exec"]

    def scripts(self) -> list[str]:
        return [job.script for job in self.jobs.values()]

    # -- the commands ---------------------------------------------------------------------------

    async def _process(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command or ""
        self.calls.append(("exec", command))
        words = [w for w in shlex.split(command) if w != "2>/dev/null"]
        program = words[0] if words else ""
        if program in self.fail:
            rc, stderr = self.fail.pop(program)
            process.stderr.write(stderr)
            process.exit(rc)
            return
        handler = getattr(self, f"_{program}", None)
        rc, out, err = handler(words[1:]) if handler else (127, "", f"bash: {program}: command not found\n")
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(rc)

    def _pwd(self, args: list[str]) -> tuple[int, str, str]:
        return 0, HOME + "\n", ""

    def _mkdir(self, args: list[str]) -> tuple[int, str, str]:
        self.path(args[-1]).mkdir(parents=True, exist_ok=True)
        return 0, "", ""

    def _cat(self, args: list[str]) -> tuple[int, str, str]:
        path = self.path(args[-1])
        return (0, path.read_text(), "") if path.exists() else (1, "", f"cat: {args[-1]}: No such file or directory\n")

    def _tail(self, args: list[str]) -> tuple[int, str, str]:
        lines, path = int(args[args.index("-n") + 1]), self.path(args[-1])
        if not path.exists():
            return 1, "", ""
        text = path.read_text().splitlines(keepends=True)
        return 0, "".join(text[-lines:]), ""

    def _sbatch(self, args: list[str]) -> tuple[int, str, str]:
        path = self.path(args[-1])
        if not path.exists():
            return 1, "", f"sbatch: error: Unable to open file {args[-1]}\n"
        script = path.read_text()
        options = {}
        for line in script.splitlines():
            if line.startswith("#SBATCH --") and "=" in line:
                key, _, value = line[len("#SBATCH --") :].partition("=")
                options[key] = value
        job = Job(
            str(self.next_id),
            options.get("job-name", "sbatch"),
            USER,
            script,
            options.get("output", f"{HOME}/slurm-{self.next_id}.out"),
            options.get("error", f"{HOME}/slurm-{self.next_id}.out"),
        )
        self.next_id += 1
        self.jobs[job.job_id] = job
        return 0, f"{job.job_id}\n", ""

    def _select(self, args: list[str], flag: str) -> list[str] | None:
        for i, arg in enumerate(args):
            if arg == flag:
                return args[i + 1].split(",")
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1].split(",")
        return None

    def _matching(self, args: list[str], name_flag: str) -> tuple[list[str] | None, list[Job]]:
        ids, names, users = self._select(args, "-j"), self._select(args, name_flag), self._select(args, "-u")
        jobs = [
            job
            for job in self.jobs.values()
            if (ids is None or job.job_id in ids)
            and (names is None or job.name in names)
            and (users is None or job.user in users)
        ]
        return ids, jobs

    def _squeue(self, args: list[str]) -> tuple[int, str, str]:
        ids, jobs = self._matching(args, "-n")
        jobs = [job for job in jobs if job.state in ACTIVE]
        if ids and not jobs:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        return 0, "".join(f"{j.job_id}|{j.state}|{j.reason or 'None'}\n" for j in jobs), ""

    def _sacct(self, args: list[str]) -> tuple[int, str, str]:
        if not self.accounting:
            return 1, "", "sacct: error: Slurm accounting storage is disabled\n"
        _, jobs = self._matching(args, "--name")
        return (
            0,
            "".join(
                f"{j.job_id}|{j.state}|{j.exit_code}|{j.reason or 'None'}\n{j.job_id}.batch|{j.state}|{j.exit_code}|\n"
                for j in jobs
            ),
            "",
        )

    def _scontrol(self, args: list[str]) -> tuple[int, str, str]:
        job = self.jobs.get(args[2]) if args[:2] == ["show", "job"] else None
        if job is None:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        return (
            0,
            (
                f"JobId={job.job_id} JobName={job.name} UserId={job.user}(1000) JobState={job.state} "
                f"Reason={job.reason or 'None'} ExitCode={job.exit_code}\n"
            ),
            "",
        )

    def _scancel(self, args: list[str]) -> tuple[int, str, str]:
        job = self.jobs.get(args[-1])
        if job is None:
            return 1, "", f"scancel: error: Kill job error on job id {args[-1]}: Invalid job id specified\n"
        if job.state in ACTIVE:
            job.state, job.reason = "CANCELLED by 1000", None
        return 0, "", ""
