"""``slurm`` (flyteplugins-slurm 2.12.1's Slurm connector, ported) through the served app, against a
Slurm login node on loopback SSH (tests/fake_slurm.py), and side by side with the original
connector module from the installed flyteplugins-slurm wheel."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.flyteplugins.slurm import SlurmConnector, SlurmJobMetadata
from connectors.errors import Code
from tests.aws_world import INT
from tests.fake_slurm import HOME, FakeSlurm

TYPE = "slurm"
IMAGE = "ghcr.io/example/train:abc123"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def listed(monkeypatch) -> None:
    """The deployment lists the login node every fake serves on (SlurmHosts)."""
    monkeypatch.setenv("FLYTE_SLURM_ALLOWED_HOSTS", "127.0.0.1")


@pytest.fixture
def fake() -> Iterator[FakeSlurm]:
    with FakeSlurm() as served:
        yield served


def template(fake: FakeSlurm, **config: Any) -> Any:
    """The TaskTemplate flyteplugins.slurm's own SlurmFunctionTask writes (as a deploy does)."""
    import flyte
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.models import SerializationContext
    from flyteplugins.slurm import Slurm

    settings = {
        "partition": "main",
        "gres": "gpu:1",
        "time_limit": "1:00:00",
        "host": "127.0.0.1",
        "port": fake.port,
        "username": "flyte",
        "ssh_private_key": "slurm-ssh-key",
        "known_hosts_secret": "slurm-known-hosts",
        "env": {"AWS_REGION": "us-east-1"},
        "sbatch_options": {"exclusive": True},
        **config,
    }
    env = flyte.TaskEnvironment(name=f"slurm_{fake.port}_{len(config)}", plugin_config=Slurm(**settings), image=IMAGE)

    @env.task
    async def train(steps: int) -> float:
        return float(steps)

    return get_proto_task(
        train, SerializationContext(version="v1", project="flytesnacks", domain="development", root_dir=ROOT)
    )


def secrets(fake: FakeSlurm) -> dict[str, str]:
    return {"ssh_private_key": fake.private_key, "known_hosts_data": fake.known_hosts}


def request(
    world: Any, fake: FakeSlurm, tpl: Any = None, secret_values: dict[str, str] | None = None, run: str | None = None
) -> pb.CreateTaskRequest:
    created = world.request(
        TYPE, {}, inputs={"steps": (INT, 3)}, run=run, secrets=secrets(fake) if secret_values is None else secret_values
    )
    created.template.CopyFrom(tpl or template(fake))
    created.task_execution_metadata.environment_variables["_U_RUN_BASE"] = "s3://bucket/run"
    return created


def poll(world: Any, handle: bytes, fake: FakeSlurm) -> pb.Resource:
    return world.client.get_task(
        pb.GetTaskRequest(
            resource_meta=handle, task_category=pb.TaskCategory(name=TYPE), connection={"secrets": secrets(fake)}
        )
    ).resource


def delete(world: Any, handle: bytes, fake: FakeSlurm) -> None:
    world.client.delete_task(
        pb.DeleteTaskRequest(
            resource_meta=handle, task_category=pb.TaskCategory(name=TYPE), connection={"secrets": secrets(fake)}
        )
    )


def job(fake: FakeSlurm) -> str:
    assert len(fake.jobs) == 1, fake.jobs
    return next(iter(fake.jobs))


# -- the lifecycle through the served app ---------------------------------------------------------


def test_a_slurm_task_runs_from_sbatch_to_success(aws_world, fake):
    world = aws_world(SlurmConnector())
    handle = world.create(request(world, fake))
    job_id = job(fake)
    name = fake.jobs[job_id].name
    assert re.fullmatch(r"flyte-train-[0-9a-f]{16}", name)
    script = fake.jobs[job_id].script
    assert f"#SBATCH --output={HOME}/.flyte/jobs/{name}.out" in script
    assert "#SBATCH --partition=main\n#SBATCH --gres=gpu:1\n#SBATCH --time=1:00:00\n#SBATCH --exclusive\n" in script
    assert (
        "export FLYTE_INTERNAL_EXECUTION_PROJECT=flytesnacks" in script
        and "export _U_RUN_BASE=s3://bucket/run" in script
    )
    assert "export AWS_REGION=us-east-1" in script and "'--container-image=ghcr.io#example/train:abc123'" in script
    assert fake.commands()[-1] == f"sbatch --parsable {HOME}/.flyte/jobs/{name}.sbatch"
    assert ("sftp-chmod", f"{HOME}/.flyte/jobs/{name}.sbatch 0o700") in fake.calls

    pending = poll(world, handle, fake)
    assert pending.phase == TaskExecution.QUEUED and pending.message.startswith(
        f"Slurm job {job_id} is PENDING, reason: Priority"
    )
    fake.set_state(job_id, "RUNNING")
    running = poll(world, handle, fake)
    assert running.phase == TaskExecution.RUNNING
    assert running.message.endswith(
        f"Attach to the running job: ssh flyte@127.0.0.1 'srun --jobid={job_id} --overlap --pty bash'"
    )
    fake.set_state(job_id, "COMPLETED")
    done = poll(world, handle, fake)
    assert done.phase == TaskExecution.SUCCEEDED and not done.log_links
    assert done.message == (
        f"Slurm job {job_id} is COMPLETED\nJob files on flyte@127.0.0.1: {HOME}/.flyte/jobs/{name}.out "
        f"(stdout), {HOME}/.flyte/jobs/{name}.err (stderr)"
    )
    assert fake.commands()[-2:] == [
        f"squeue -h -j {job_id} -o '%i|%T|%r'",
        f"sacct -X -n -P -j {job_id} --format=JobIDRaw,State,ExitCode,Reason",
    ]
    delete(world, handle, fake)  # a finished task: nothing to cancel
    assert not any(c.startswith("scancel") for c in fake.commands())


def test_a_failed_job_reports_its_stderr_tail_and_its_logs(aws_world, fake, monkeypatch, tmp_path):
    known_hosts = tmp_path / "known_hosts"  # the logs call carries no secrets: the key and hosts of the deployment
    known_hosts.write_text(fake.known_hosts)
    monkeypatch.setenv("FLYTE_SLURM_SSH_PRIVATE_KEY", fake.private_key)
    world = aws_world(SlurmConnector())
    handle = world.create(request(world, fake, template(fake, known_hosts=str(known_hosts))))
    job_id = job(fake)
    assert world.logs(handle, TYPE) == [
        f"No output yet from Slurm job {job_id}. Slurm creates "
        f"{fake.jobs[job_id].stdout_path} when the job starts writing."
    ]
    fake.write_output(job_id, stdout="step 1\nstep 2\n", stderr="Traceback\nValueError: bad\n")
    fake.set_state(job_id, "OUT_OF_MEMORY", exit_code="0:125")
    failed = poll(world, handle, fake)
    assert failed.phase == TaskExecution.FAILED
    assert failed.message.startswith(f"Slurm job {job_id} is OUT_OF_MEMORY, exit code 0:125\n")
    assert failed.message.endswith("--- stderr (last 30 lines) ---\nTraceback\nValueError: bad")
    assert world.logs(handle, TYPE) == [
        f"--- stdout: {fake.jobs[job_id].stdout_path} ---",
        "step 1",
        "step 2",
        f"--- stderr: {fake.jobs[job_id].stderr_path} ---",
        "Traceback",
        "ValueError: bad",
    ]


@pytest.mark.parametrize(
    "state, phase",
    [
        # the connector says ABORTED; the service, which never cancelled it, answers FAILED (polling.py)
        ("CANCELLED+", TaskExecution.FAILED),
        ("PREEMPTED", TaskExecution.RETRYABLE_FAILED),
        ("TIMEOUT", TaskExecution.FAILED),
        ("COMPLETING", TaskExecution.RUNNING),
    ],
)
def test_slurm_states_map_to_phases(aws_world, fake, state, phase):
    world = aws_world(SlurmConnector())
    handle = world.create(request(world, fake))
    fake.set_state(job(fake), state)
    assert poll(world, handle, fake).phase == phase


def test_delete_cancels_a_running_job_and_is_quiet_for_a_gone_one(aws_world, fake):
    world = aws_world(SlurmConnector())
    handle = world.create(request(world, fake))
    job_id = job(fake)
    fake.set_state(job_id, "RUNNING")
    delete(world, handle, fake)
    assert fake.commands()[-1] == f"scancel {job_id}" and fake.jobs[job_id].state == "CANCELLED by 1000"
    connector = SlurmConnector()
    meta = SlurmJobMetadata("999", "flyte-x", "127.0.0.1", "flyte", fake.port, "/o", "/e")
    asyncio.run(connector.delete(meta, **secrets(fake)))  # "Invalid job id": already gone
    fake.fail["scancel"] = (
        1,
        f"scancel: error: Kill job error on job id {job_id}: Job/step already completing or completed\n",
    )
    asyncio.run(connector.delete(meta, **secrets(fake)))  # ended between polls: quiet too (the original raises)
    fake.fail["scancel"] = (1, "scancel: error: Unable to contact slurm controller (connect failure)\n")
    with pytest.raises(Exception) as caught:
        asyncio.run(connector.delete(meta, **secrets(fake)))
    assert caught.value.code == Code.UNAVAILABLE


def test_a_job_without_accounting_is_found_by_scontrol(aws_world):
    with FakeSlurm(accounting=False) as fake:
        world = aws_world(SlurmConnector())
        handle = world.create(request(world, fake))
        fake.set_state(job(fake), "COMPLETED")
        assert poll(world, handle, fake).phase == TaskExecution.SUCCEEDED
        assert fake.commands()[-1] == f"scontrol show job {job(fake)} --oneliner"


def test_a_replayed_create_finds_the_job_the_first_try_submitted(aws_world, fake):
    connector = SlurmConnector()
    world = aws_world(connector)
    created = request(world, fake)
    first = asyncio.run(
        connector.create(
            created.template,
            created.output_prefix,
            {"steps": 3},
            created.task_execution_metadata,
            idempotency_token=world.token(created),
            **secrets(fake),
        )
    )
    world.create(created)  # the same attempt again: found by its name, not submitted twice
    assert list(fake.jobs) == [first.job_id]
    fake.set_state(first.job_id, "COMPLETED")  # finished: only sacct still knows it
    asyncio.run(
        connector.create(
            created.template,
            created.output_prefix,
            {"steps": 3},
            created.task_execution_metadata,
            idempotency_token=world.token(created),
            **secrets(fake),
        )
    )
    assert list(fake.jobs) == [first.job_id]
    world.create(request(world, fake))  # another run: its own job
    assert len(fake.jobs) == 2


# -- errors ---------------------------------------------------------------------------------------


def test_sbatch_refusing_the_job_is_invalid_argument_with_its_stderr(aws_world, fake):
    world = aws_world(SlurmConnector())
    fake.fail["sbatch"] = (1, "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    error = world.error(world.create, request(world, fake))
    assert error.code == Code.INVALID_ARGUMENT
    assert re.search(
        r"`sbatch --parsable \S+\.sbatch` failed on 127\.0\.0\.1 \(rc=1\): sbatch: error: Batch job "
        r"submission failed: Invalid partition name specified$",
        error.message,
    ), error.message


def test_an_unreachable_controller_is_unavailable(aws_world, fake):
    world = aws_world(SlurmConnector())
    fake.fail["sbatch"] = (1, "sbatch: error: Batch job submission failed: Unable to contact slurm controller\n")
    assert world.error(world.create, request(world, fake)).code == Code.UNAVAILABLE
    handle = world.create(request(world, fake))
    fake.fail["squeue"] = (
        1,
        "squeue: error: slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n",
    )
    answer = poll(world, handle, fake)  # a status read failing in passing: the stored phase, saying so
    assert "unavailable" in answer.message and "`squeue` could not reach Slurm on 127.0.0.1 (rc=1)" in answer.message


def test_login_failures(aws_world, fake):
    world = aws_world(SlurmConnector())
    other = FakeSlurm()  # another key pair and host key, never served
    other.loop.close()
    wrong_key = world.error(
        world.create, request(world, fake, secret_values={**secrets(fake), "ssh_private_key": other.private_key})
    )
    assert wrong_key.code == Code.PERMISSION_DENIED and "SSH login to flyte@127.0.0.1" in wrong_key.message
    hosts = fake.known_hosts.replace(
        fake.host_key.export_public_key().decode().strip(), other.host_key.export_public_key().decode().strip()
    )
    wrong_host = world.error(
        world.create, request(world, fake, secret_values={**secrets(fake), "known_hosts_data": hosts})
    )
    assert wrong_host.code == Code.PERMISSION_DENIED and "host key" in wrong_host.message
    bad_key = world.error(
        world.create, request(world, fake, secret_values={**secrets(fake), "ssh_private_key": "not a key!"})
    )
    assert bad_key.code == Code.FAILED_PRECONDITION
    no_key = world.error(world.create, request(world, fake, secret_values={"known_hosts_data": fake.known_hosts}))
    assert no_key.code == Code.UNAUTHENTICATED and "slurm: no ssh_private_key credential" in no_key.message
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = world.error(world.create, request(world, fake, template(fake, port=port)))
    assert unreachable.code == Code.UNAVAILABLE
    no_host = world.error(world.create, request(world, fake, template(fake, host=None)))
    assert no_host.code == Code.INVALID_ARGUMENT and no_host.message.startswith("Missing Slurm connection details.")
    reserved = world.error(world.create, request(world, fake, template(fake, sbatch_options={"output": "/x"})))
    assert reserved.code == Code.INVALID_ARGUMENT and "'output' is set by the plugin" in reserved.message
    assert not fake.jobs


def test_an_unknown_job_is_not_found(fake):
    meta = SlurmJobMetadata("4242", "flyte-x", "127.0.0.1", "flyte", fake.port, "/o", "/e")
    with pytest.raises(Exception) as caught:
        asyncio.run(SlurmConnector().get(meta, **secrets(fake)))
    assert caught.value.code == Code.NOT_FOUND
    assert str(caught.value.message) == "Slurm job 4242 (flyte-x) is not known to squeue or sacct on 127.0.0.1"


# -- the differential test: the original connector and the port, the same template ---------------


def _normalized(calls: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    lookups = ("squeue -h -u ", "sacct -X -n -P -u ")  # the port's look-up before sbatch (idempotency)
    return [(kind, what.replace(name, "JOB")) for kind, what in calls if not what.startswith(lookups)]


async def _logs(connector: Any, meta: Any, **kwargs: Any) -> list[str]:
    return [line.message for part in [r async for r in connector.get_logs(meta, **kwargs)] for line in part.body.lines]


Calls = tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]  # get, logs, cancel


def _through_original(original_class: Any, loop: asyncio.AbstractEventLoop, fake: FakeSlurm, created: Any) -> Calls:
    original = original_class()
    run = loop.run_until_complete  # the original keeps its connection for the loop it was made on
    meta = run(
        original.create(
            created.template,
            created.output_prefix,
            {"steps": 3},
            created.task_execution_metadata,
            **secrets(fake),
        )
    )
    return (
        lambda: run(original.get(meta, **secrets(fake))),
        lambda: run(_logs(original, meta, **secrets(fake))),
        lambda: run(original.delete(meta, **secrets(fake))),
    )


def _through_port(world: Any, fake: FakeSlurm, created: Any) -> Calls:
    handle = world.create(created)
    # Called directly: the logs request carries no secrets, and the service sends no
    # DeleteTask to the connector for a task it has seen end (here: FAILED).
    port = SlurmConnector()
    meta = SlurmJobMetadata.decode(world.record(handle).resource_meta)
    return (
        lambda: poll(world, handle, fake),
        lambda: asyncio.run(_logs(port, meta, **secrets(fake))),
        lambda: asyncio.run(port.delete(meta, **secrets(fake))),
    )


def test_the_port_sends_what_the_original_sends_and_reports_the_same(aws_world, monkeypatch):
    from flyteplugins.slurm.connector import SlurmConnector as Original

    monkeypatch.setenv("FLYTE_SLURM_SSH_PRIVATE_KEY", "")
    outcomes = []
    loop = asyncio.new_event_loop()
    for side in ("original", "port"):
        with FakeSlurm() as fake:
            world = aws_world(SlurmConnector())
            created = request(
                world,
                fake,
                template(
                    fake,
                    modules=["apptainer"],
                    container_runtime="apptainer",
                    container_mounts=["/data:/data"],
                    srun_args=["--mpi=pmix"],
                ),
                run="r-differential",
            )
            if side == "original":
                get, logs, cancel = _through_original(Original, loop, fake, created)
            else:
                get, logs, cancel = _through_port(world, fake, created)
            job_id = job(fake)
            name = fake.jobs[job_id].name
            seen: list[Any] = [fake.jobs[job_id].script.replace(name, "JOB")]
            for state, exit_code in (("PENDING", "0:0"), ("RUNNING", "0:0"), ("FAILED", "2:0")):  # one terminal phase
                fake.set_state(job_id, state, exit_code, "Priority" if state == "PENDING" else None)
                resource = get()
                seen.append((resource.phase, resource.message.replace(name, "JOB"), list(resource.log_links or [])))
                if state == "RUNNING":
                    seen.append([line.replace(name, "JOB") for line in logs()])
                    fake.write_output(job_id, stdout="epoch 1\n", stderr="oom\n")
                    seen.append([line.replace(name, "JOB") for line in logs()])
            cancel()
            seen.append(_normalized(fake.calls, name))
            outcomes.append(seen)
    loop.close()
    original, port = outcomes
    assert port[0] == original[0]  # the script, byte for byte
    assert "module load apptainer" in port[0] and "apptainer exec --nv --bind /data:/data docker://" in port[0]
    assert port[-1][:5] == [
        ("exec", "pwd"),
        ("exec", f"mkdir -p {HOME}/.flyte/jobs"),
        ("sftp-open", f"{HOME}/.flyte/jobs/JOB.sbatch"),
        ("sftp-chmod", f"{HOME}/.flyte/jobs/JOB.sbatch 0o700"),
        ("exec", f"sbatch --parsable {HOME}/.flyte/jobs/JOB.sbatch"),
    ]
    assert port[-1][-1] == ("exec", "scancel 1001") and len(port) == len(original) == 7
    for mine, theirs in zip(port[1:], original[1:], strict=True):
        assert mine == theirs


def test_the_key_and_known_hosts_come_from_secrets_manager_as_deployed(aws_world, fake, monkeypatch):
    """No secrets in any request: the service fetches ``<SECRETS_PREFIX>/slurm/ssh_private_key`` and
    ``.../known_hosts_data`` for create, get, logs and delete."""
    import uuid

    prefix = f"flyte-connectors-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(SlurmConnector())
    for name, value in secrets(fake).items():
        world.boto("secretsmanager").create_secret(Name=f"{prefix}/{TYPE}/{name}", SecretString=value)
    handle = world.create(request(world, fake, secret_values={}))
    job_id = job(fake)
    fake.set_state(job_id, "RUNNING")
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING
    fake.write_output(job_id, stdout="hello\n")
    assert world.logs(handle, TYPE)[1:] == ["hello"]
    world.delete(handle, TYPE)
    assert fake.commands()[-1] == f"scancel {job_id}"
