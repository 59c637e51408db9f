"""Jobs the fake AWS ends the ways the service models document (issue 17), each run through the
served app from its ``examples/<task type>.json`` (as a new run) to the answer GetTask gives.

- Stopped, cancelled or aborted by someone other than this service (a person, the console, AWS
  itself), in each service's own word for it: FAILED with AWS's reason, never ABORTED, which the
  executor reads as the user's abort (connectors/polling.py). AWS Batch has no such status: a job
  terminated by someone else is FAILED with their reason.
- Ended by AWS at a limit the job was given: an EMR Serverless run past its executionTimeoutMinutes,
  a SageMaker processing job past its StoppingCondition.
- An EXPRESS state machine named by a version ARN is refused as the unqualified one is.

test_aws_answers_as_documented.py holds the SageMaker training and Batch array endings.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from google.protobuf import json_format

from connectors.builtin.aws.athena import AthenaQueryConnector
from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.builtin.aws.emr_serverless import EmrServerlessJobConnector
from connectors.builtin.aws.glue import GlueJobConnector
from connectors.builtin.aws.redshift import RedshiftQueryConnector
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector
from connectors.builtin.aws.sagemaker_training import SageMakerTrainingJobConnector
from connectors.builtin.aws.step_functions import SfnExecutionConnector
from connectors.errors import Code

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"


def example(task_type: str, **custom: Any) -> pb.CreateTaskRequest:
    """``examples/<task_type>.json`` as a new run (its own name, so its own job), ``custom`` over its template's."""
    request = json_format.Parse((EXAMPLES / f"{task_type}.json").read_text(), pb.CreateTaskRequest())
    request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = f"r{uuid.uuid4().hex[:12]}"
    request.template.custom.update(custom)
    return request


def job_of(world: Any, connector: Any, handle: bytes, field: str) -> str:
    return getattr(connector.metadata_type.decode(world.record(handle).resource_meta), field)  # type: ignore[no-any-return]


# (service as the fate names it, connector, its metadata's job field, the status that AWS's
# service model uses for a job stopped by someone, AWS's reason, the status word GetTask reports)
STOPPED_ELSEWHERE = [
    ("athena", AthenaQueryConnector, "query_execution_id", "CANCELLED", "Query cancelled by an administrator"),
    ("batch", AwsBatchJobConnector, "job_id", "FAILED", "Terminated by an operator in the Batch console"),
    ("emr-serverless", EmrServerlessJobConnector, "job_run_id", "CANCELLED", "Job run cancelled by user"),
    ("glue", GlueJobConnector, "job_run_id", "STOPPED", "Job run stopped by user"),
    ("redshift-data", RedshiftQueryConnector, "statement_id", "ABORTED", "Query was cancelled by the user"),
    ("sagemaker", SageMakerTrainingJobConnector, "job_name", "Stopped", ""),
    ("sagemaker", SageMakerProcessingJobConnector, "job_name", "Stopped", ""),
    ("stepfunctions", SfnExecutionConnector, "execution_arn", "ABORTED", "stopped in the Step Functions console"),
]


@pytest.mark.parametrize(
    "service, connector_class, field, status, reason",
    STOPPED_ELSEWHERE,
    ids=[connector.task_type_name for _, connector, *_ in STOPPED_ELSEWHERE],
)
def test_a_job_stopped_not_by_this_service_is_failed_with_awss_word(
    aws_world, service, connector_class, field, status, reason
):
    connector = connector_class()
    world = aws_world(connector)
    task_type = connector.task_type_name
    handle = world.create(example(task_type))
    world.fate(service, job_of(world, connector, handle, field), status, reason)
    resource = world.wait(handle, task_type)
    assert resource.phase == TaskExecution.FAILED, resource.message
    assert reason in resource.message
    if service != "batch":  # Batch's own word is FAILED: the connector tells it, not the service's rule
        assert "not by this service" in resource.message
        assert world.record(handle).phase == TaskExecution.FAILED


def test_an_emr_serverless_run_past_its_execution_timeout_is_cancelled_by_emr_serverless(aws_world):
    """The model: "If the job run exceeds this duration, Amazon EMR Serverless cancels it
    automatically". Held running (a fate of RUNNING whose minutes last 0.2 s), a 5-minute run is
    CANCELLING after 1 s, then CANCELLED, and nobody called CancelJobRun: FAILED with its state
    details."""
    connector = EmrServerlessJobConnector()
    world = aws_world(connector)
    handle = world.create(example("emr_serverless_job", execution_timeout_minutes=5))
    run = job_of(world, connector, handle, "job_run_id")
    world.fate("emr-serverless", run, "RUNNING", minute_seconds=0.2)
    assert world.poll(handle, "emr_serverless_job").phase == TaskExecution.RUNNING
    resource = world.wait(handle, "emr_serverless_job", timeout=15)
    assert resource.phase == TaskExecution.FAILED and "not by this service" in resource.message
    assert "executionTimeoutMinutes (5 minutes)" in resource.message
    found = world.boto("emr-serverless").get_job_run(applicationId="00flyteexample00", jobRunId=run)["jobRun"]
    assert found["state"] == "CANCELLED" and "timed out" in found["stateDetails"]


def test_a_sagemaker_processing_job_past_its_stopping_condition_is_stopped_by_sagemaker(aws_world):
    """ProcessingStoppingCondition: "After the condition is met, the processing job is stopped".
    Held running (a fate of InProgress) past MaxRuntimeInSeconds (1 s): Stopping, then Stopped,
    which this service did not ask for: FAILED."""
    connector = SageMakerProcessingJobConnector()
    world = aws_world(connector)
    handle = world.create(example("sagemaker_processing_job", stopping_condition={"MaxRuntimeInSeconds": 1}))
    name = job_of(world, connector, handle, "job_name")
    world.fate("sagemaker", name, "InProgress", exit_message="preprocess.py: 41 of 80 shards written")
    assert world.poll(handle, "sagemaker_processing_job").phase == TaskExecution.RUNNING
    resource = world.wait(handle, "sagemaker_processing_job", timeout=15)
    assert resource.phase == TaskExecution.FAILED and "not by this service" in resource.message
    assert "41 of 80 shards written" in resource.message  # the container's ExitMessage
    found = world.boto("sagemaker").describe_processing_job(ProcessingJobName=name)
    assert found["ProcessingJobStatus"] == "Stopped"


def test_an_express_state_machine_named_by_a_version_arn_is_refused(aws_world, aws_endpoint):
    """DescribeStateMachine of a version ARN answers the version's type ("This API action returns
    the details for a state machine version if the stateMachineArn you specify is a state machine
    version ARN"): EXPRESS, refused before anything starts, as the unqualified ARN is."""
    from connectors.dev.aws_resources import client_factory, ensure_role

    clients = client_factory(aws_endpoint)
    machine = clients("stepfunctions").create_state_machine(
        name=f"flyte-test-express-{uuid.uuid4().hex[:6]}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=ensure_role(clients, "flyte-sfn-tests", "states.amazonaws.com"),
        type="EXPRESS",
        publish=True,
    )
    world = aws_world(SfnExecutionConnector())
    error = world.error(world.create, example("sfn_execution", state_machine_arn=machine["stateMachineVersionArn"]))
    assert error.code == Code.INVALID_ARGUMENT and "EXPRESS" in error.message
    executions = world.boto("stepfunctions").list_executions(stateMachineArn=machine["stateMachineArn"])
    assert executions["executions"] == []
