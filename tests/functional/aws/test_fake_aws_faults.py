"""The fake AWS's bad moments (connectors/dev/fake_aws/faults.py): throttling at a set rate and 5xx
blips, answered as botocore parses AWS's own, and a task through the served app riding them out."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import standard
from connectrpc.errors import ConnectError
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.batch import AwsBatchJobConnector
from tests.aws_world import STR

TYPE = "aws_batch_job"
CUSTOM = {"job_queue": "flyte-example", "job_definition": "flyte-example"}


def no_retries(world, service: str):
    return boto3.client(
        service, endpoint_url=world.endpoint, region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
    )


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return {**caught.value.response["Error"], "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"]}


@pytest.mark.parametrize(
    ("service", "call", "status"),
    [
        ("batch", lambda c: c.describe_jobs(jobs=["nope"]), 429),  # rest-json
        ("athena", lambda c: c.list_work_groups(), 429),  # rest-json since botocore 1.44.18
        ("glue", lambda c: c.get_jobs(), 400),  # json 1.1
        ("sagemaker", lambda c: c.list_training_jobs(), 400),
        ("stepfunctions", lambda c: c.list_state_machines(), 400),
    ],
)
def test_a_call_past_the_rate_is_a_throttle_botocore_recognises(aws_world, service, call, status):
    world = aws_world(AwsBatchJobConnector())
    client = no_retries(world, service)
    with world.faults(throttle_per_second=1) as counts:
        errors = []
        for _ in range(4):
            try:
                call(client)
            except ClientError as error:
                errors.append(error.response)
    assert errors, "four calls in a burst of one a second were all answered"
    code = errors[0]["Error"]["Code"]
    # botocore's standard retry mode treats it as a throttle: it backs off and tries again
    assert code in standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    assert errors[0]["ResponseMetadata"]["HTTPStatusCode"] == status
    signing = {"stepfunctions": "states"}.get(service, service)
    assert sum(c.get("throttled", 0) for k, c in counts().items() if k.startswith(f"{signing}:")) == len(errors)


def test_a_5xx_before_or_after_the_call_acted(aws_world):
    """``error_after_share`` 1: the job is submitted and its answer lost; 0: nothing happened."""
    world = aws_world(AwsBatchJobConnector())
    batch = no_retries(world, "batch")
    submit = {"jobQueue": "flyte-example", "jobDefinition": "flyte-example"}
    with world.faults(error_share=1, error_after_share=1, services=["batch"]):
        error = error_of(lambda: batch.submit_job(jobName="blip-after", **submit))
    assert (error["Code"], error["status"]) == ("ServerException", 500)  # the model's own 5xx for Batch
    with world.faults(error_share=1, error_after_share=0, services=["batch"]):
        error_of(lambda: batch.submit_job(jobName="blip-before", **submit))
    names = {j["jobName"] for j in batch.list_jobs(jobQueue="flyte-example", jobStatus="SUBMITTED")["jobSummaryList"]}
    names |= {
        j["jobName"]
        for status in ("PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED")
        for j in batch.list_jobs(jobQueue="flyte-example", jobStatus=status)["jobSummaryList"]
    }
    assert "blip-after" in names and "blip-before" not in names


def test_the_store_and_unnamed_services_are_never_faulted(aws_world):
    world = aws_world(AwsBatchJobConnector())
    with world.faults(error_share=1, error_after_share=0, throttle_per_second=0.001):
        no_retries(world, "dynamodb").list_tables()
        no_retries(world, "s3").list_buckets()
        no_retries(world, "secretsmanager").list_secrets()
        assert error_of(lambda: no_retries(world, "batch").describe_jobs(jobs=["x"]))["status"] in (429, 500)
    with world.faults(error_share=1, services=["glue"]):
        no_retries(world, "batch").describe_jobs(jobs=["x"])


@pytest.mark.parametrize(
    "body",
    [{"error_share": 2}, {"throttle_per_second": -1}, {"bogus": 1}, {"services": "batch"}, [1], {"slow_seconds": "x"}],
)
def test_bad_fault_settings_are_refused_and_change_nothing(aws_world, body):
    world = aws_world(AwsBatchJobConnector())
    request = urllib.request.Request(  # noqa: S310 - the test's loopback fake AWS
        f"{world.endpoint}/moto-api/fake-aws/faults", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - as above
    assert caught.value.code == 400 and json.loads(caught.value.read())["message"]
    settings = world._post("/moto-api/fake-aws/faults", {})  # fields left out keep their value
    assert settings["settings"]["error_share"] == 0 and settings["settings"]["throttle_per_second"] == 0


def test_a_task_whose_status_reads_all_fail_answers_its_stored_phase_then_succeeds(aws_world):
    """Through the served app: every DescribeJobs answers a 5xx (past botocore's retries) for a
    while; GetTask answers the phase it stored, says the read failed, and never errors."""
    world = aws_world(AwsBatchJobConnector(), status_read_interval_seconds=0)
    world.hold("batch::job", polls=3)
    handle = world.create(world.request(TYPE, CUSTOM, inputs={"day": (STR, "monday")}))
    first = world.poll(handle, TYPE)
    with world.faults(error_share=1, error_after_share=0.5, services=["batch"]) as counts:
        for _ in range(3):
            during = world.poll(handle, TYPE)  # an error here would count against the task
            assert during.phase == first.phase
            assert "status read failed since" in during.message and "unavailable" in during.message
        assert counts()["batch:DescribeJobs"]["calls"] >= 3
    world.release("batch::job")
    done = world.wait(handle, TYPE)
    assert TaskExecution.Phase.Name(done.phase) == "SUCCEEDED"
    assert world.record(handle).status_failing_since is None


def test_a_throttled_account_slows_status_reads_without_failing_the_task(aws_world):
    world = aws_world(AwsBatchJobConnector(), status_read_interval_seconds=0)
    handle = world.create(world.request(TYPE, CUSTOM, inputs={"day": (STR, "tuesday")}))
    with world.faults(throttle_per_second=0.2, services=["batch"]) as counts:
        for _ in range(6):
            assert world.poll(handle, TYPE).phase not in (TaskExecution.FAILED, TaskExecution.ABORTED)
        assert counts()["batch:DescribeJobs"].get("throttled", 0) >= 1
    assert TaskExecution.Phase.Name(world.wait(handle, TYPE).phase) == "SUCCEEDED"


def test_a_throttled_submit_sent_once_is_tried_again_and_the_job_starts_once(aws_world):
    """SubmitJob is sent once (botocore's own retries could start a second job: Batch takes no
    client token), but a throttled call is refused before it acts: the connector tries it again.
    Found by benchmarks/faults.py at 5 calls/s: tasks whose every CreateTask was throttled."""
    world = aws_world(AwsBatchJobConnector())
    with world.faults(throttle_per_second=1, services=["batch"], operations=["SubmitJob"]) as counts:
        handles = [world.create(world.request(TYPE, CUSTOM, inputs={"day": (STR, f"d{n}")})) for n in range(3)]
        seen = counts()["batch:SubmitJob"]
    assert len(set(handles)) == 3 and seen["throttled"] >= 1  # each create met the throttle and went on
    assert seen["calls"] - seen["throttled"] == 3  # three jobs: a throttled try started none


def test_a_submit_throttled_on_every_try_is_refused_resource_exhausted(aws_world):
    world = aws_world(AwsBatchJobConnector())
    with world.faults(
        error_share=1, error_code="TooManyRequestsException", services=["batch"], operations=["SubmitJob"]
    ) as counts:
        # in-process: an HTTP client may send a CreateTask answered 429 again, which would count twice
        request = world.request(TYPE, CUSTOM, inputs={"day": (STR, "x")})
        with pytest.raises(ConnectError) as caught:
            asyncio.run(world.service.create_task(request))
        assert counts()["batch:SubmitJob"]["calls"] == 4  # the first try and three more
    assert caught.value.code.value == "resource_exhausted"


def test_a_submit_whose_answer_is_lost_is_sent_once_and_its_job_found(aws_world):
    """SubmitJob answered with a 5xx after Batch started the job: the client sent once never
    resends it (botocore read the old ``max_attempts: 1`` as one retry: a second job); the
    connector looks the job up by its name and keeps the one that started."""
    world = aws_world(AwsBatchJobConnector())
    request = world.request(TYPE, CUSTOM, inputs={"day": (STR, "lost")})
    with world.faults(error_share=1, error_after_share=1, services=["batch"], operations=["SubmitJob"]) as counts:
        handle = world.create(request)
        assert counts()["batch:SubmitJob"]["calls"] == 1
    name = world.record(handle).resource_meta
    jobs = world.boto("batch").list_jobs(jobQueue="flyte-example", filters=[{"name": "JOB_NAME", "values": ["*"]}])
    assert json.loads(name)["job_id"] in {j["jobId"] for j in jobs["jobSummaryList"]}
