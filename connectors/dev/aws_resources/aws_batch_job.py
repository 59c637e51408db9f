"""examples/aws_batch_job.json: the job queue ``flyte-example`` on an unmanaged compute environment,
and the job definition ``flyte-example`` (a container that echoes its ``day`` parameter), both
tagged for the connectors: IAM tests a job definition's tags only when a task names its revision,
so the example names ``flyte-example:1``."""

from collections.abc import Callable
from typing import Any

from . import SCOPE_TAG, ensure_role

QUEUE = "flyte-example"
JOB_DEFINITION = "flyte-example"
COMPUTE_ENVIRONMENT = "flyte-example"
COMMAND = ["echo", "hello from flyte on", "Ref::day"]


def create(clients: Callable[[str], Any]) -> None:
    batch = clients("batch")
    role = ensure_role(clients, "flyte-example-batch-service", "batch.amazonaws.com")
    if not batch.describe_compute_environments(computeEnvironments=[COMPUTE_ENVIRONMENT])["computeEnvironments"]:
        batch.create_compute_environment(
            computeEnvironmentName=COMPUTE_ENVIRONMENT, type="UNMANAGED", state="ENABLED", serviceRole=role
        )
    if not batch.describe_job_queues(jobQueues=[QUEUE])["jobQueues"]:
        batch.create_job_queue(
            jobQueueName=QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": COMPUTE_ENVIRONMENT}],
            tags=SCOPE_TAG,
        )
    if not batch.describe_job_definitions(jobDefinitionName=JOB_DEFINITION, status="ACTIVE")["jobDefinitions"]:
        batch.register_job_definition(
            jobDefinitionName=JOB_DEFINITION,
            type="container",
            parameters={"day": "today"},
            containerProperties={
                "image": "public.ecr.aws/docker/library/busybox:latest",
                "command": COMMAND,
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            },
            tags=SCOPE_TAG,
        )
