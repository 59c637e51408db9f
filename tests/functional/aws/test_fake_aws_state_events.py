"""The fake AWS's state-change events (connectors/dev/fake_aws/state_events.py): each service's
jobs publish their status changes as that service's documented EventBridge event, on the default
bus, delivered by moto's EventBridge to an SQS queue; jobs move on with time; a held job does not.

A fake AWS of its own (the session's serves other tests, whose jobs must not move by themselves).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.dev.aws_resources import ACCOUNT, REGION, client_factory, create_example_resources
from connectors.dev.local_dynamodb import LocalDynamoDB

ROLE = f"arn:aws:iam::{ACCOUNT}:role/flyte-sagemaker"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:flyte-example"


class Fake:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.boto = client_factory(endpoint)
        sqs = self.boto("sqs")
        self.queue = sqs.create_queue(QueueName="state-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = self.boto("events")
        # every job service's events (not imported from the fake: its patches stay in its process)
        sources = ["aws.athena", "aws.batch", "aws.emr-serverless", "aws.glue", "aws.redshift-data"]
        sources += ["aws.sagemaker", "aws.states"]
        events.put_rule(Name="every-job-service", EventPattern=json.dumps({"source": sources}))
        events.put_targets(Rule="every-job-service", Targets=[{"Id": "queue", "Arn": arn}])
        self.received: list[dict[str, Any]] = []

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the local fake
            f"{self.endpoint}{path}", json.dumps(body).encode(), {"content-type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the local fake
            return json.loads(answer.read() or b"null")

    def report(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/fake-aws/events", timeout=10) as answer:  # noqa: S310
            return dict(json.loads(answer.read()))

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.boto("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.received
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def wait_for(self, found: Callable[[list[dict[str, Any]]], bool], seconds: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while not found(self.drain()):
            told = [(e["detail-type"], _status(e)) for e in self.received]
            assert time.monotonic() < deadline, (self.report(), told[-20:])
            time.sleep(0.3)
        return self.received

    def of(self, detail_type: str, key: str, value: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["detail-type"] == detail_type and e["detail"].get(key) == value]


def _status(event: dict[str, Any]) -> Any:
    detail = event["detail"]
    for name in ("status", "currentState", "state", "ProcessingJobStatus", "TrainingJobStatus"):
        if name in detail:
            return detail[name]
    return None


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    with LocalDynamoDB() as server:
        create_example_resources(server.endpoint_url)
        yield Fake(server.endpoint_url)


def test_off_unless_asked(fake: Fake) -> None:
    assert fake.report()["enabled"] is False
    fake.boto("batch").submit_job(jobName="quiet", jobQueue="flyte-example", jobDefinition="flyte-example")
    time.sleep(1.5)
    assert fake.drain() == []
    assert fake.report()["published"] == {}


@pytest.fixture
def publishing(fake: Fake) -> Iterator[Fake]:
    assert fake.post("/moto-api/fake-aws/events", {"enabled": True, "interval_seconds": 0.3})["enabled"]
    yield fake
    fake.post("/moto-api/fake-aws/events", {"enabled": False})


def test_a_batch_job_moves_with_time_and_each_change_is_its_event(publishing: Fake) -> None:
    job = publishing.boto("batch").submit_job(jobName="timed", jobQueue="flyte-example", jobDefinition="flyte-example")
    publishing.wait_for(
        lambda got: any(_status(e) == "SUCCEEDED" for e in got if e["detail"].get("jobId") == job["jobId"])
    )
    mine = publishing.of("Batch Job State Change", "jobId", job["jobId"])
    # "Events aren't created for the initial job submission"; then every status, in order
    assert [_status(e) for e in mine] == ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    last = mine[-1]
    assert last["source"] == "aws.batch" and last["resources"] == [job["jobArn"]]
    described = publishing.boto("batch").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    # the detail is the job as DescribeJobs describes it
    assert set(described) - {"ResponseMetadata"} <= set(last["detail"]) | {"tags"}
    assert last["detail"]["jobArn"] == described["jobArn"] and last["detail"]["container"]["exitCode"] == 0


def test_every_job_service_publishes_its_documented_event(publishing: Fake) -> None:
    boto, name = publishing.boto, f"ev-{uuid.uuid4().hex[:6]}"
    query = boto("athena").start_query_execution(QueryString="SELECT 1", WorkGroup="flyte")["QueryExecutionId"]
    execution = boto("stepfunctions").start_execution(
        stateMachineArn=STATE_MACHINE, name=name, input=json.dumps({"day": "monday", "rows": 3, "mode": "full"})
    )["executionArn"]
    resources = {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10}
    boto("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "xgboost", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://flyte-examples/models"},
        ResourceConfig=resources,
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    boto("sagemaker").create_processing_job(
        ProcessingJobName=name,
        AppSpecification={"ImageUri": "sklearn"},
        RoleArn=ROLE,
        ProcessingResources={"ClusterConfig": resources},
    )
    run = boto("emr-serverless").start_job_run(
        applicationId="00flyteexample00",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/flyte-emr-serverless-job",
        clientToken=name,
        jobDriver={"sparkSubmit": {"entryPoint": "s3://flyte-examples/emr-serverless/wordcount.py"}},
        name=name,
    )
    glue_run = boto("glue").start_job_run(JobName="flyte-example")["JobRunId"]
    statement = boto("redshift-data").execute_statement(
        ClusterIdentifier="flyte-example", Database="dev", DbUser="flyte", Sql="select 1", WithEvent=True
    )["Id"]
    quiet = boto("redshift-data").execute_statement(
        ClusterIdentifier="flyte-example", Database="dev", DbUser="flyte", Sql="select 2"
    )["Id"]
    wanted = {
        ("Athena Query State Change", "queryExecutionId", query): "SUCCEEDED",
        ("Step Functions Execution Status Change", "executionArn", execution): "SUCCEEDED",
        ("SageMaker Training Job State Change", "TrainingJobName", name): "Completed",
        ("SageMaker Processing Job State Change", "ProcessingJobName", name): "Completed",
        ("EMR Serverless Job Run State Change", "jobRunId", run["jobRunId"]): "SUCCESS",
        ("Glue Job State Change", "jobRunId", glue_run): "SUCCEEDED",
        ("Redshift Data Statement Status Change", "statementId", statement): "FINISHED",
    }
    publishing.wait_for(
        lambda got: all(any(_status(e) == end for e in publishing.of(*key)) for key, end in wanted.items())
    )
    athena = publishing.of("Athena Query State Change", "queryExecutionId", query)[-1]
    assert athena["source"] == "aws.athena"
    assert athena["detail"]["workgroupName"] == "flyte" and athena["detail"]["versionId"] == "0"
    assert athena["detail"]["statementType"] == "DML" and athena["detail"]["sequenceNumber"].isdigit()
    sfn = publishing.of("Step Functions Execution Status Change", "executionArn", execution)[-1]
    assert sfn["source"] == "aws.states" and sfn["resources"] == [execution]
    assert json.loads(sfn["detail"]["output"])["summary"] == "3 rows on monday"
    assert isinstance(sfn["detail"]["startDate"], int) and isinstance(sfn["detail"]["stopDate"], int)
    training = publishing.of("SageMaker Training Job State Change", "TrainingJobName", name)[-1]["detail"]
    assert training["TrainingJobStatus"] == "Completed" and training["SecondaryStatus"] == "Completed"
    assert training["Tags"] == {"team": "ml"} and isinstance(training["CreationTime"], int)
    assert "Arn" not in training and training["TrainingJobArn"].endswith(f"training-job/{name}")
    processing = publishing.of("SageMaker Processing Job State Change", "ProcessingJobName", name)[-1]["detail"]
    assert processing["ProcessingJobArn"].endswith(f"processing-job/{name}")
    emr = publishing.of("EMR Serverless Job Run State Change", "jobRunId", run["jobRunId"])[-1]
    assert emr["source"] == "aws.emr-serverless"
    assert {"applicationId", "arn", "releaseLabel", "createdAt", "updatedAt", "jobRunName"} <= set(emr["detail"])
    glue = publishing.of("Glue Job State Change", "jobRunId", glue_run)
    assert [(e["detail"]["severity"], e["detail"]["message"]) for e in glue] == [("INFO", "Job run succeeded")]
    assert glue[0]["detail"]["jobName"] == "flyte-example"  # "generated for SUCCEEDED, FAILED, TIMEOUT, and STOPPED"
    redshift = publishing.of("Redshift Data Statement Status Change", "statementId", statement)
    assert [e["detail"]["state"] for e in redshift] == ["FINISHED"]  # sent as a statement run WithEvent ends
    assert redshift[0]["detail"]["rows"] == 3 and redshift[0]["resources"][0].endswith(":cluster:flyte-example")
    assert publishing.of("Redshift Data Statement Status Change", "statementId", quiet) == []  # no WithEvent


def test_a_held_job_does_not_move_and_a_fate_ends_it_as_told(publishing: Fake) -> None:
    publishing.post(
        "/moto-api/state-manager/set-transition",
        {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}},
    )
    try:
        query = publishing.boto("athena").start_query_execution(QueryString="SELECT 2", WorkGroup="flyte")
        query_id = query["QueryExecutionId"]
        publishing.wait_for(lambda got: bool(publishing.of("Athena Query State Change", "queryExecutionId", query_id)))
        publishing.post(
            "/moto-api/fake-aws/fate",
            {"service": "athena", "job": query_id, "status": "FAILED", "reason": "TABLE_NOT_FOUND: events"},
        )
        time.sleep(1.5)  # looks go by: held, the query is looked at, never moved on
        publishing.drain()
        assert [_status(e) for e in publishing.of("Athena Query State Change", "queryExecutionId", query_id)] == [
            "QUEUED"
        ]
    finally:
        publishing.post("/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    publishing.wait_for(lambda got: len(publishing.of("Athena Query State Change", "queryExecutionId", query_id)) == 2)
    failed = publishing.of("Athena Query State Change", "queryExecutionId", query_id)[-1]["detail"]
    assert (failed["previousState"], failed["currentState"], failed["sequenceNumber"]) == ("QUEUED", "FAILED", "2")
    assert failed["athenaError"] == {
        "errorCategory": 2.0,
        "errorType": 1000.0,
        "errorMessage": "TABLE_NOT_FOUND: events",
        "retryable": False,
    }
    assert publishing.report()["errors"] == 0
