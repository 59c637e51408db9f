"""Build the API Gateway events in events/ from real flyteidl2 requests.

``python -m connectors.dev.events`` rewrites events/*.json: one HTTP API (payload 2.0) event
per function, binary proto bodies base64-encoded as API Gateway sends them. GetTask, DeleteTask,
GetTaskMetrics and GetTaskLogs name an example echo task whose record :func:`seed_example_task`
writes (its handle is fixed here, so the events can name it). Beside them, the reaper's
scheduled event and the status-events queue's SQS batch (one Batch job state change: about a job
no task of the local table has, it changes nothing).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.task import common_pb2
from google.protobuf.message import Message

from ..builtin.echo import EchoMetadata
from ..caller import normalize
from ..connect_envelope import encode
from ..store import TaskExecutionKey, TaskRecord, TaskStore
from .status_event_samples import eventbridge_event, sqs_event, write_events_to

API_ID = "a1b2c3d4e5"
ASYNC = "/flyteidl2.connector.AsyncConnectorService"
METADATA = "/flyteidl2.connector.ConnectorMetadataService"
ECHO = pb.TaskCategory(name="echo", version=0)

EXAMPLE_KEY = TaskExecutionKey(project="flytesnacks", domain="development", run="example-run", action="a0")
# Fixed only for the example task the events name; real handles carry 128 random bits.
EXAMPLE_SECRET = hashlib.sha256(b"connectors example task").digest()[:16]


def example_record() -> TaskRecord:
    return TaskRecord(
        action_id=EXAMPLE_KEY.action_digest().hex(),
        attempt=0,
        secret=EXAMPLE_SECRET,
        task_type="echo",
        task_version=0,
        output_prefix="s3://my-bucket/example-run/a0",
        execution={"org": "", "project": "flytesnacks", "domain": "development", "run": "example-run", "action": "a0"},
        principal=normalize(EXECUTOR_IAM["userArn"]),  # the events' signer: only it may read the task
    )


def example_handle() -> bytes:
    return example_record().handle.encode()


def seed_example_task(store: TaskStore) -> bytes:
    """Write the example echo task the events name (idempotent); return its handle."""
    record = example_record()
    claim = store.claim(record, lease_seconds=60)
    if claim.claimed:
        import time

        meta = EchoMetadata(created_at=time.time(), delay_seconds=0.0, outputs={"x": 42})
        store.finish_create(record, meta.encode(), TaskExecution.QUEUED)
    return example_handle()


def create_task_request() -> pb.CreateTaskRequest:
    x = interface_pb2.VariableEntry(
        key="x", value=interface_pb2.Variable(type=types_pb2.LiteralType(simple=types_pb2.INTEGER))
    )
    return pb.CreateTaskRequest(
        inputs=common_pb2.Inputs(
            literals=[
                common_pb2.NamedLiteral(
                    name="x",
                    value=literals_pb2.Literal(
                        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=42))
                    ),
                )
            ]
        ),
        template=tasks_pb2.TaskTemplate(
            id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK,
                project="flytesnacks",
                domain="development",
                name="examples.echo_task",
                version="v1",
            ),
            type="echo",
            interface=interface_pb2.TypedInterface(
                inputs=interface_pb2.VariableMap(variables=[x]), outputs=interface_pb2.VariableMap(variables=[x])
            ),
        ),
        output_prefix="s3://my-bucket/events-run/a0",
        task_execution_metadata=pb.TaskExecutionMetadata(
            task_execution_id=identifier_pb2.TaskExecutionIdentifier(
                node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                    node_id="a0",
                    execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                        project="flytesnacks", domain="development", name="events-run"
                    ),
                ),
                retry_attempt=0,
            ),
            namespace="flytesnacks-development",
        ),
    )


# The signer the events name: the executor's relay, in an assumed role (its session after the role).
EXECUTOR_IAM: dict[str, Any] = {
    "accessKey": "ASIAEXAMPLEKEY",
    "accountId": "123456789012",
    "callerId": "AROAEXAMPLE:flyte-executor",
    "cognitoIdentity": None,
    "principalOrgId": None,
    "userArn": "arn:aws:sts::123456789012:assumed-role/flyte-executor/flyte-executor",
    "userId": "AROAEXAMPLE:flyte-executor",
}


def http_api_event(
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/proto",
    query: str = "",
    iam: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, IAM-authorised, as Lambda receives it;
    ``iam`` replaces keys of the signer's ``requestContext.authorizer.iam`` (EXECUTOR_IAM)."""
    route = f"{method} {path}"
    headers = {
        "accept": content_type if body is not None else "application/json",
        "host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "user-agent": "flyte-executor/2.0",
        "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers |= {"content-type": content_type, "content-length": str(len(body)), "connect-protocol-version": "1"}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "authorizer": {"iam": {**EXECUTOR_IAM, **(iam or {})}},
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "flyte-executor/2.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route,
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600800000,
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
    return event


def _connect(path: str, message: Message) -> dict[str, Any]:
    return http_api_event("POST", path, message.SerializeToString())


def all_events() -> dict[str, dict[str, Any]]:
    handle = example_handle()
    return {
        "create_task": _connect(f"{ASYNC}/CreateTask", create_task_request()),
        "get_task": _connect(f"{ASYNC}/GetTask", pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)),
        "delete_task": _connect(f"{ASYNC}/DeleteTask", pb.DeleteTaskRequest(resource_meta=handle, task_category=ECHO)),
        "get_task_metrics": _connect(
            f"{ASYNC}/GetTaskMetrics", pb.GetTaskMetricsRequest(resource_meta=handle, task_category=ECHO)
        ),
        "get_task_logs": http_api_event(
            "POST",
            f"{ASYNC}/GetTaskLogs",
            encode(pb.GetTaskLogsRequest(resource_meta=handle, task_category=ECHO, lines=100).SerializeToString()),
            content_type="application/connect+proto",
        ),
        "list_connectors": _connect(f"{METADATA}/ListConnectors", pb.ListConnectorsRequest()),
        "get_connector": _connect(f"{METADATA}/GetConnector", pb.GetConnectorRequest(name="Echo Connector")),
        "healthz": http_api_event("GET", "/healthz"),
        "get_task_rest": http_api_event(
            "GET", f"/api/v1/connector/task/echo/0/{base64.urlsafe_b64encode(handle).decode().rstrip('=')}"
        ),
        "reap_abandoned": scheduled_event(),
        "status_events": sqs_event([batch_job_state_change()]),
    }


def scheduled_event() -> dict[str, Any]:
    """The EventBridge Scheduler event the reaper receives on ReaperSchedule."""
    rule = "arn:aws:events:us-east-1:123456789012:rule/flyte-connectors-AbandonedTaskReaper"
    return eventbridge_event(
        "aws.events", "Scheduled Event", {}, [rule], event_id="53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"
    )


def batch_job_state_change(
    job_id: str = "4c7a7b6e-1b5f-4c1e-9d6b-3f0e8e2a9c41", status: str = "RUNNING"
) -> dict[str, Any]:
    """A "Batch Job State Change" event as EventBridge delivers it: its detail is the job as
    DescribeJobs describes it (AWS Batch user guide, EventBridge)."""
    job_arn = f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"
    detail = {
        "jobArn": job_arn,
        "jobName": "example-run-a0-0",
        "jobId": job_id,
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/flyte-example",
        "status": status,
        "attempts": [],
        "createdAt": 1795600790000,
        "retryStrategy": {"attempts": 1},
        "dependsOn": [],
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/flyte-example:1",
        "parameters": {},
        "container": {"image": "public.ecr.aws/docker/library/python:3.12", "vcpus": 1, "memory": 512},
        "tags": {},
        "platformCapabilities": ["EC2"],
    }
    return eventbridge_event(
        "aws.batch", "Batch Job State Change", detail, [job_arn], event_id="c8f9c4b5-76e5-d76a-f980-7011e206042b"
    )


# The function each event is for (template.yaml logical ids).
EVENT_FUNCTIONS = {
    "create_task": "CreateTaskFunction",
    "get_task": "GetTaskFunction",
    "get_task_rest": "GetTaskFunction",
    "delete_task": "DeleteTaskFunction",
    "get_task_metrics": "GetTaskMetricsFunction",
    "get_task_logs": "GetTaskLogsFunction",
    "list_connectors": "ConnectorMetadataFunction",
    "get_connector": "ConnectorMetadataFunction",
    "healthz": "ConnectorMetadataFunction",
    "reap_abandoned": "AbandonedTaskReaperFunction",
    "status_events": "StatusEventsFunction",
}


def write_events(folder: Path) -> list[Path]:
    return write_events_to(folder, all_events())


if __name__ == "__main__":
    from .status_event_samples import write_samples

    folder = Path(__file__).resolve().parents[2] / "events"
    for path in [*write_events(folder), *write_samples(folder / "status")]:
        print(path)
