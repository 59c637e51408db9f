"""Task roles: what signing each task's AWS calls as its project role (TaskRoleArnPattern) costs.

Starts the fake AWS (moto's server with connectors/dev/fake_aws, the examples' resources) on
loopback and serves two apps with uvicorn, each on its own table, both with the athena_query
connector and every poll reading Athena (StatusReadIntervalSeconds 0):

- baseline: no pattern, every call signed with the service's own credentials, as before;
- roles: ``TaskRoleArnPattern`` set, every Athena call signed with a session of the task's project
  role (one per task: an STS AssumeRole with its tags and source identity on the task's first call
  in a process, connectors/task_roles.py).

Athena executions are held RUNNING, so every GetTask makes one GetQueryExecution. Measured in the
same run, the two apps' calls interleaved:

- CreateTask of a new task (roles: the task's first AWS call, so an AssumeRole first);
- GetTask of a task whose session is cached (roles: the cache-hit path);
- GetTask of a task whose session this process does not hold (roles: sessions dropped before each
  call, as in a function instance that has not served the task before: an AssumeRole first);
- the AssumeRole calls the fake AWS saw in each phase, and AssumeRole's own time as the service
  timed it;
- in-process, the credentials lookup of one signing with a cached session, beside botocore's
  fixed credentials (what the cache-hit path adds to each AWS call, without moto's noise).

moto answers STS on loopback: AWS's STS adds its network round trip (a regional endpoint, from a
Lambda in the region) to every AssumeRole, which this cannot measure.

    .venv/bin/python benchmarks/task_roles.py [--tasks 40] [--polls 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore", DeprecationWarning)

from harness import fake_aws, local_aws  # noqa: E402

from connectors.dev.background_server import BackgroundServer  # noqa: E402

PATTERN = "arn:aws:iam::123456789012:role/flyte-{project}-{domain}"
TYPE = "athena_query"


def assume_roles(endpoint: str) -> int:
    calls = fake_aws(endpoint, "/moto-api/fake-aws/callers")["calls"]
    return sum(call["operation"] == "AssumeRole" for call in calls)


def request(project: str) -> Any:
    from connectors.dev.aws_resources.athena_query import WORK_GROUP
    from tests.aws_world import task_request

    made = task_request(TYPE, {"query": "select 1", "work_group": WORK_GROUP}, run=f"r{uuid.uuid4().hex[:12]}")
    made.task_execution_metadata.task_execution_id.node_execution_id.execution_id.project = project
    return made


class App:
    def __init__(self, endpoint: str, label: str, pattern: str) -> None:
        from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

        from connectors.builtin.aws.athena import AthenaQueryConnector
        from connectors.registry import ConnectorRegistry
        from connectors.runtime import build_service
        from connectors.settings import Settings
        from connectors.store import new_client
        from connectors.transport import create_app

        settings = Settings(
            tasks_table=f"roles-{label}-{uuid.uuid4().hex[:6]}",
            connector_timeout_seconds=14.0,
            status_read_interval_seconds=0.0,
            task_role_arn_pattern=pattern,
        )
        service = build_service(settings, new_client(endpoint), ConnectorRegistry([AthenaQueryConnector()]))
        service.store.create_table()
        self.label = label
        self.server = BackgroundServer(create_app(service), log_level="error").__enter__()
        self.client = AsyncConnectorServiceClientSync(self.server.url)
        self.handles: list[bytes] = []
        self.times: dict[str, list[float]] = {"create": [], "get cached": [], "get first in process": []}

    def create(self, project: str) -> float:
        started = time.perf_counter()
        self.handles.append(self.client.create_task(request(project)).resource_meta)
        return time.perf_counter() - started

    def get(self, handle: bytes) -> float:
        from flyteidl2.connector import connector_pb2 as pb

        started = time.perf_counter()
        self.client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name=TYPE)))
        return time.perf_counter() - started

    def close(self) -> None:
        self.server.__exit__(None, None, None)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lookup_microseconds(endpoint: str, count: int = 20_000) -> tuple[float, float]:
    """The credentials lookup of one signing, in-process: a cached task session found through the
    context (roles) beside botocore's fixed credentials (baseline), in microseconds."""
    import asyncio

    from botocore.credentials import Credentials

    from connectors import task_roles

    fixed = Credentials("AKIA", "secret", "token")
    credentials = task_roles.botocore_session().get_credentials()
    execution = {"project": "project0", "domain": "development", "run": "rbench", "action": "a0"}

    def timed(lookup: Any) -> float:
        started = time.perf_counter()
        for _ in range(count):
            lookup()
        return (time.perf_counter() - started) / count * 1e6

    async def run() -> tuple[float, float]:
        task_roles.enter_record(PATTERN, execution, 0)
        await asyncio.to_thread(credentials.get_frozen_credentials)  # assumed once, then cached
        return timed(fixed.get_frozen_credentials), timed(credentials.get_frozen_credentials)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=40, help="tasks created per app (each a session of its own)")
    parser.add_argument("--polls", type=int, default=300, help="GetTask calls per app and phase")
    parser.add_argument("--projects", type=int, default=4, help="projects the tasks are spread over (roles)")
    args = parser.parse_args()

    with local_aws(log_level=None) as server:
        endpoint = server.endpoint_url
        os.environ.update(
            {"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_REGION": "us-east-1"}
        )
        from connectors import task_roles
        from connectors.dev.aws_resources import create_example_resources

        create_example_resources(endpoint)
        fake_aws(
            endpoint,
            "/moto-api/state-manager/set-transition",
            {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 10**9}},
        )
        apps = [App(endpoint, "baseline", ""), App(endpoint, "roles", PATTERN)]
        projects = [f"project{n}" for n in range(args.projects)]
        try:
            for app in apps:  # warm-up: each app's clients built, its first session assumed
                app.create(projects[0])
                app.get(app.handles[0])
            assumed: dict[str, int] = {}

            before = assume_roles(endpoint)
            for n in range(args.tasks):
                for app in apps:
                    app.times["create"].append(app.create(projects[n % len(projects)]))
            assumed["create"] = assume_roles(endpoint) - before

            before = assume_roles(endpoint)
            for n in range(args.polls):
                for app in apps:
                    app.times["get cached"].append(app.get(app.handles[1 + n % args.tasks]))
            assumed["get cached"] = assume_roles(endpoint) - before

            before = assume_roles(endpoint)
            task_roles.SESSIONS.assumed, task_roles.SESSIONS.assume_seconds = 0, 0.0
            for n in range(args.polls):
                for app in apps:
                    task_roles.SESSIONS.forget()  # no session held: the next call assumes one
                    app.times["get first in process"].append(app.get(app.handles[1 + n % args.tasks]))
            assumed["get first in process"] = assume_roles(endpoint) - before
            assume_ms = 1000 * task_roles.SESSIONS.assume_seconds / max(1, task_roles.SESSIONS.assumed)
            fixed_us, task_us = lookup_microseconds(endpoint)
        finally:
            for app in apps:
                app.close()

    baseline, roles = apps
    print(f"athena_query through the served app; {args.tasks} tasks per app over {args.projects} projects, ")
    print(f"{args.polls} GetTask per app and phase, each reading Athena (moto on loopback, STS included)\n")
    print(
        "| call | baseline p50 / p99 ms | TaskRoleArnPattern p50 / p99 ms | p50 difference | AssumeRole calls (roles) |"
    )
    print("|---|---:|---:|---:|---:|")
    for phase in ("create", "get cached", "get first in process"):
        b, r = baseline.times[phase], roles.times[phase]
        bp, rp = statistics.median(b) * 1000, statistics.median(r) * 1000
        print(
            f"| {phase} | {bp:.2f} / {percentile(b, 0.99) * 1000:.2f} | {rp:.2f} / {percentile(r, 0.99) * 1000:.2f}"
            f" | {rp - bp:+.2f} ms | {assumed[phase]} in {len(r)} calls |"
        )
    print(f"\nAssumeRole as the service timed it (moto on loopback): {assume_ms:.2f} ms mean")
    print(
        f"credentials lookup per signed call, in-process: {task_us:.2f} us for a cached task session "
        f"(baseline: botocore's fixed credentials {fixed_us:.2f} us)"
    )


if __name__ == "__main__":
    main()
