"""An adversary's review of the AWS connectors (connectors/builtin/aws/).

Each break found was a test marked ``xfail(strict=True)`` until it was fixed (its comment names
the break); the attacks that held are ordinary tests. Everything runs through the served app against moto's server over HTTP (patched by
connectors.dev.fake_aws), except where a connector method is called directly against the same
moto to reach a state the service cannot (a job AWS no longer knows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid

import pytest
from connectrpc.errors import ConnectError as ConnectRpcError
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.athena import AthenaQueryConnector, AthenaQueryMeta
from connectors.builtin.aws.batch import AwsBatchJobConnector, AwsBatchJobMeta
from connectors.builtin.aws.emr_serverless import (
    EmrServerlessJobConnector,
    EmrServerlessJobMeta,
)
from connectors.builtin.aws.glue import GlueJobConnector, GlueJobMeta
from connectors.builtin.aws.redshift import RedshiftQueryConnector, RedshiftQueryMeta
from connectors.builtin.aws.sagemaker_processing import SageMakerProcessingJobConnector
from connectors.builtin.aws.sagemaker_training import (
    SageMakerTrainingJobConnector,
    SageMakerTrainingJobMeta,
)
from connectors.builtin.aws.step_functions import (
    SfnExecutionConnector,
    SfnExecutionMeta,
)
from connectors.dev.aws_resources import ACCOUNT, REGION
from connectors.dev.aws_resources.athena_query import WORK_GROUP
from connectors.dev.aws_resources.aws_batch_job import JOB_DEFINITION, QUEUE
from connectors.dev.aws_resources.emr_serverless_job import APPLICATION_ID, ENTRY_POINT
from connectors.dev.aws_resources.emr_serverless_job import ROLE as EMR_ROLE
from connectors.dev.aws_resources.glue_job import JOB_NAME
from connectors.dev.aws_resources.redshift_query import (
    CLUSTER,
    DATABASE,
    UNLOAD_PREFIX,
    UNLOAD_ROLE_NAME,
)
from connectors.dev.aws_resources.sagemaker_training_job import OUTPUT_PATH
from connectors.dev.aws_resources.sagemaker_training_job import ROLE as SM_ROLE
from connectors.dev.aws_resources.sfn_execution import ARN as SFN_ARN
from connectors.errors import Code
from tests.aws_world import DATAFRAME, FLOAT, STR

UNLOAD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{UNLOAD_ROLE_NAME}"
SM_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{SM_ROLE}"
EMR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{EMR_ROLE}"


def redshift_custom(**extra):  # the service's IAM identity: no db_user, which the deployment must list
    return {"query": "select 1", "database": DATABASE, "cluster_identifier": CLUSTER, **extra}


def training_custom(**extra):
    return {
        "algorithm_specification": {"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File"},
        "role_arn": SM_ROLE_ARN,
        "output_path": OUTPUT_PATH,
        "resource_config": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        **extra,
    }


def processing_custom(**extra):
    return {
        "app_specification": {"ImageUri": "sklearn:1.2-1"},
        "role_arn": SM_ROLE_ARN,
        "processing_resources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        **extra,
    }


def sql_outside_literals(sql: str) -> str:
    """``sql`` with every single-quoted literal ('' inside one is a quote) cut out: what the
    database parses as code."""
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def unload_inner(sql: str) -> str:
    """The query inside ``UNLOAD ('...') TO ...``, its quotes undoubled."""
    found = re.fullmatch(r"UNLOAD \('((?:[^']|'')*)'\) TO .*", sql, re.DOTALL)
    assert found, sql
    return found.group(1).replace("''", "'")


# -- injection ---------------------------------------------------------------------------------


# Was a break, now fixed: redshift _inline substitutes inputs one after another over the text it already rewrote: an earlier input's value holding ':<later input>' gets the later value spliced inside its quotes, and a quote in that value escapes into the UNLOAD query as SQL
def test_redshift_unload_inputs_cannot_inject_sql_through_one_another(aws_world):
    world = aws_world(RedshiftQueryConnector())
    evil = "' or 1=1 --"
    request = world.request(
        "redshift_query",
        redshift_custom(
            query="select * from t where a = :a and b = :b", unload_prefix=UNLOAD_PREFIX, unload_iam_role=UNLOAD_ROLE
        ),
        inputs={"a": (STR, "x :b"), "b": (STR, evil)},
        outputs={"df": DATAFRAME},
    )
    handle = world.create(request)
    meta = RedshiftQueryMeta.decode(world.record(handle).resource_meta)
    sql = world.boto("redshift-data").describe_statement(Id=meta.statement_id)["QueryString"]
    code = sql_outside_literals(unload_inner(sql))
    assert "1=1" not in code, f"the input escaped its literal: {code!r}"


def test_redshift_unload_inlines_hostile_single_values_as_literals(aws_world):
    """Held: one input's quotes, semicolons, comments and unicode stay inside its literal; a backslash
    or a control character is refused naming the input."""
    world = aws_world(RedshiftQueryConnector())
    custom = redshift_custom(
        query="select * from t where a = :a and n > :n", unload_prefix=UNLOAD_PREFIX, unload_iam_role=UNLOAD_ROLE
    )
    hostile = "x'); drop table t; -- ' /* é’ */ :n"  # noqa: RUF001 - hostile input: the odd quote is the point
    handle = world.create(
        world.request(
            "redshift_query", custom, inputs={"a": (STR, hostile), "n": (FLOAT, 1.5)}, outputs={"df": DATAFRAME}
        )
    )
    meta = RedshiftQueryMeta.decode(world.record(handle).resource_meta)
    sql = world.boto("redshift-data").describe_statement(Id=meta.statement_id)["QueryString"]
    inner = unload_inner(sql)
    assert sql_outside_literals(inner) == "select * from t where a = '' and n > 1.5"
    for bad in ("a\\'", "a\x00b", "line\nbreak"):
        error = world.error(
            world.create, world.request("redshift_query", custom, inputs={"a": (STR, bad)}, outputs={"df": DATAFRAME})
        )
        assert error.code == Code.INVALID_ARGUMENT and "'a'" in error.message


def test_redshift_without_unload_binds_inputs_as_parameters_never_in_the_sql(aws_world):
    world = aws_world(RedshiftQueryConnector())
    evil = "'; drop table t; --"
    handle = world.create(
        world.request(
            "redshift_query", redshift_custom(query="select * from t where a = :a"), inputs={"a": (STR, evil)}
        )
    )
    meta = RedshiftQueryMeta.decode(world.record(handle).resource_meta)
    found = world.boto("redshift-data").describe_statement(Id=meta.statement_id)
    assert found["QueryString"] == "select * from t where a = :a"
    assert found["QueryParameters"] == [{"name": "a", "value": evil}]


def test_athena_string_parameters_stay_quoted_literals(aws_world):
    world = aws_world(AthenaQueryConnector())
    evil = "x') or 1=1 or ('' = '"
    handle = world.create(
        world.request(
            "athena_query",
            {"query": "select * from t where a = ?", "work_group": WORK_GROUP},
            inputs={"a": (STR, evil)},
        )
    )
    meta = AthenaQueryMeta.decode(world.record(handle).resource_meta)
    [parameter] = world.boto("athena").get_query_execution(QueryExecutionId=meta.query_execution_id)["QueryExecution"][
        "ExecutionParameters"
    ]
    assert sql_outside_literals(parameter) == "''"


# Was a break, now fixed: athena sql_literal writes a NaN/infinite float input as the bare word nan/inf (repr), which SQL reads as a column name: not invalid_argument as redshift's _literal does
def test_athena_a_non_finite_float_input_is_invalid_argument(aws_world):
    world = aws_world(AthenaQueryConnector())
    request = world.request(
        "athena_query",
        {"query": "select * from t where x > ?", "work_group": WORK_GROUP},
        inputs={"x": (FLOAT, float("nan"))},
    )
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT and "'x'" in error.message


# -- whose job: a token shared across deployments ---------------------------------------------


# Was a break, now fixed: the idempotency token is a digest of org/project/domain/run/action/attempt only (no per-deployment part): a second service (its own table) sharing the AWS account adopts the first's job for the same run name, and its DeleteTask stops that job
def test_a_second_deployment_never_adopts_or_stops_the_first_ones_job(aws_world):
    # Two stacks: template.yaml salts every token with the stack's name (IDEMPOTENCY_TOKEN_SALT).
    first = aws_world(AthenaQueryConnector(), token_salt="flyte-connectors-staging")
    second = aws_world(AthenaQueryConnector(), token_salt="flyte-connectors-production")
    assert first.settings.tasks_table != second.settings.tasks_table
    run = f"daily-{uuid.uuid4().hex[:6]}"  # a run name both deployments' users chose
    first.hold("athena::execution")
    try:
        custom = {"query": "select 1", "work_group": WORK_GROUP}
        mine = first.create(first.request("athena_query", custom, run=run))
        theirs = second.create(second.request("athena_query", custom, run=run))
        my_query = AthenaQueryMeta.decode(first.record(mine).resource_meta).query_execution_id
        their_query = AthenaQueryMeta.decode(second.record(theirs).resource_meta).query_execution_id
        second.delete(theirs, "athena_query")
        state = first.boto("athena").get_query_execution(QueryExecutionId=my_query)["QueryExecution"]["Status"]["State"]
        assert their_query != my_query and state != "CANCELLED"
    finally:
        first.release("athena::execution")


# -- bad template data: user errors that come out as `internal` ---------------------------------


# Was a break, now fixed: a name field holding a list (OutputName/InputName/ChannelName, Batch environment name) goes into a set or dict key: TypeError unhashable, answered `internal` with a traceback logged, for a user's template error
@pytest.mark.parametrize(
    "connector, custom",
    [
        (
            SageMakerProcessingJobConnector,
            processing_custom(
                processing_outputs=[
                    {
                        "OutputName": ["report"],
                        "S3Output": {
                            "S3Uri": "s3://b/r",
                            "LocalPath": "/opt/ml/processing/output/r",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            ),
        ),
        (SageMakerProcessingJobConnector, processing_custom(processing_inputs=[{"InputName": {"n": 1}}])),
        (SageMakerTrainingJobConnector, training_custom(input_data_config=[{"ChannelName": ["train"]}])),
        (
            AwsBatchJobConnector,
            {
                "job_queue": QUEUE,
                "job_definition": JOB_DEFINITION,
                "environment": {"A": "1"},
                "container_overrides": {"environment": [{"name": ["B"], "value": "2"}]},
            },
        ),
    ],
    ids=["processing-output-name", "processing-input-name", "training-channel-name", "batch-environment-name"],
)
def test_a_list_where_a_name_belongs_is_invalid_argument_not_internal(aws_world, connector, custom):
    instance = connector()
    world = aws_world(instance)
    error = world.error(world.create, world.request(instance.task_type_name, custom))
    assert error.code == Code.INVALID_ARGUMENT, (error.code, error.message)


@pytest.mark.parametrize(
    "connector, custom, needle",
    [
        (AthenaQueryConnector, {"query": 7}, "template.custom.query must be a string"),
        (AthenaQueryConnector, {"query": "select ?", "parameters": [{"a": 1}]}, "parameters names {'a': 1}"),
        (
            RedshiftQueryConnector,
            redshift_custom(cluster_identifier=None, workgroup_name=["w"]),
            "workgroup_name must be",
        ),
        (
            RedshiftQueryConnector,
            redshift_custom(workgroup_name="w"),
            "exactly one of cluster_identifier, workgroup_name",
        ),
        (AwsBatchJobConnector, {"job_queue": QUEUE, "job_definition": JOB_DEFINITION, "array_size": 2.5}, "array_size"),
        (
            AwsBatchJobConnector,
            {"job_queue": QUEUE, "job_definition": JOB_DEFINITION, "timeout_seconds": True},
            "timeout_seconds",
        ),
        (AwsBatchJobConnector, {"job_queue": QUEUE, "job_definition": JOB_DEFINITION, "tags": {"n": 1.0}}, "tags.n"),
        (SfnExecutionConnector, {"state_machine_arn": SFN_ARN, "input": [1, 2]}, "input must be an object"),
        (
            SfnExecutionConnector,
            {"state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:x'; --"},
            "state_machine_arn must be",
        ),
        (
            EmrServerlessJobConnector,
            {
                "application_id": APPLICATION_ID,
                "execution_role_arn": EMR_ROLE_ARN,
                "entry_point": ENTRY_POINT,
                "entry_point_arguments": ["--n", 5],
            },
            "entry_point_arguments",
        ),
        (GlueJobConnector, {"job_name": JOB_NAME, "arguments": {"--n": 5}}, "arguments.--n"),
        (
            GlueJobConnector,
            {"job_name": JOB_NAME, "arguments": {"--flyte-idempotency-token": "0" * 32}},
            "--flyte-idempotency-token",
        ),
        (GlueJobConnector, {"job_name": JOB_NAME, "number_of_workers": 2.5}, "number_of_workers"),
        (SageMakerTrainingJobConnector, training_custom(hyperparameters={"depth": 5}), "hyperparameters.depth"),
        (
            SageMakerTrainingJobConnector,
            training_custom(tags=[{"Key": "flyte:idempotency-token", "Value": "0" * 32}]),
            "flyte:idempotency-token",
        ),
        (
            SageMakerTrainingJobConnector,
            training_custom(
                resource_config={"InstanceCount": 1.5, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
            ),
            "InstanceCount",
        ),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_ill_typed_template_fields_are_invalid_argument_naming_the_field(aws_world, connector, custom, needle):
    """Held: wrong JSON types (floats where ints belong, lists for strings, booleans, nested
    objects) and fields the connector owns are invalid_argument naming the field."""
    instance = connector()
    world = aws_world(instance)
    error = world.error(world.create, world.request(instance.task_type_name, custom))
    assert error.code == Code.INVALID_ARGUMENT and needle in error.message, (error.code, error.message)
    assert "Traceback" not in error.message


# -- delete: quiet for a job AWS does not know, reported when a stop really fails -------------

UNKNOWN = "0f0f0f0f-0000-4000-8000-000000000000"


def _unknown_meta(name: str):
    """A ResourceMeta of each connector naming a job AWS does not know (never started, or forgotten)."""
    return {
        "athena": (AthenaQueryConnector, AthenaQueryMeta(query_execution_id=UNKNOWN, work_group=WORK_GROUP)),
        "redshift": (RedshiftQueryConnector, RedshiftQueryMeta(statement_id=UNKNOWN, cluster_identifier=CLUSTER)),
        "batch": (AwsBatchJobConnector, AwsBatchJobMeta(job_id=UNKNOWN, job_name="gone", job_queue=QUEUE)),
        "sfn": (
            SfnExecutionConnector,
            SfnExecutionMeta(
                execution_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:flyte-example:gone-{uuid.uuid4().hex}"
            ),
        ),
        "emr": (EmrServerlessJobConnector, EmrServerlessJobMeta(application_id=APPLICATION_ID, job_run_id="00gone00")),
        "sagemaker": (SageMakerTrainingJobConnector, SageMakerTrainingJobMeta(job_name=f"gone-{uuid.uuid4().hex}")),
        "glue": (GlueJobConnector, GlueJobMeta(job_name=JOB_NAME, job_run_id="jr_" + "0" * 64)),
    }[name]


def _quiet_unknown(name: str):
    # Was a break, now fixed: a delete of a job AWS does not know raised (athena, redshift, sfn, emr,
    # sagemaker) instead of being quiet: DeleteTask failed on every executor retry and the reaper's
    # cancel failed and backed off forever.
    return name


@pytest.mark.parametrize(
    "name", [_quiet_unknown(name) for name in ("athena", "redshift", "batch", "sfn", "emr", "sagemaker", "glue")]
)
def test_delete_of_a_job_aws_does_not_know_is_quiet(aws_endpoint, name):
    connector, meta = _unknown_meta(name)
    asyncio.run(connector().delete(meta))


# -- a create whose target does not exist ------------------------------------------------------


# Was a break, now fixed: a create naming a state machine / Glue job / EMR application that does not exist is answered not_found, which the service does not count as a refusal: the record never ends, the reaper replays the create (a StartExecution/ StartJobRun) on every run, backing off, and would start (then stop) a job once the resource exists (athena/batch answer invalid_argument: ended once replayed)
@pytest.mark.parametrize(
    "connector, custom",
    [
        (
            SfnExecutionConnector,
            {"state_machine_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:no-such-machine"},
        ),
        (GlueJobConnector, {"job_name": "no-such-glue-job"}),
        (
            EmrServerlessJobConnector,
            {"application_id": "00nosuchapp000", "execution_role_arn": EMR_ROLE_ARN, "entry_point": ENTRY_POINT},
        ),
    ],
    ids=["sfn", "glue", "emr"],
)
def test_a_create_naming_a_missing_resource_is_refused_and_its_record_ends(aws_world, connector, custom):
    instance = connector()
    world = aws_world(instance)
    run = f"rmissing{uuid.uuid4().hex[:8]}"
    error = world.error(world.create, world.request(instance.task_type_name, custom, run=run))
    later = time.time() + 7 * 24 * 3600
    world.reap(now=later)
    world.reap(now=later + 7 * 24 * 3600)
    [record] = world.records(run).values()
    assert record.state == "ended", (error.code, record.state, record.notes)


def test_control_a_create_refused_as_invalid_argument_ends_once_replayed(aws_world):
    """The same attack on Athena (a missing work group is InvalidRequestException): held."""
    world = aws_world(AthenaQueryConnector())
    run = f"rmissing{uuid.uuid4().hex[:8]}"
    error = world.error(
        world.create, world.request("athena_query", {"query": "select 1", "work_group": "nope"}, run=run)
    )
    assert error.code == Code.INVALID_ARGUMENT
    world.reap(now=time.time() + 7 * 24 * 3600)
    [record] = world.records(run).values()
    assert record.state == "ended"


# -- unknown status words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, connector, custom, job_of",
    [
        (
            "redshift-data",
            RedshiftQueryConnector,
            redshift_custom(),
            lambda meta: RedshiftQueryMeta.decode(meta).statement_id,
        ),
        (
            "athena",
            AthenaQueryConnector,
            {"query": "select 1", "work_group": WORK_GROUP},
            lambda meta: AthenaQueryMeta.decode(meta).query_execution_id,
        ),
    ],
    ids=["redshift", "athena"],
)
def test_an_unknown_aws_status_is_a_poll_error_never_a_phase(aws_world, service, connector, custom, job_of):
    """Held: a status word AWS may add later is `internal` (counted by the executor), and the
    record keeps its phase: nothing terminal is stored or answered."""
    instance = connector()
    world = aws_world(instance)
    handle = world.create(world.request(instance.task_type_name, custom))
    world.fate(service, job_of(world.record(handle).resource_meta), "SUCCEEDED_WITH_WARNINGS", "new in 2027")
    error = world.error(world.poll, handle, instance.task_type_name)
    assert error.code == Code.INTERNAL and "SUCCEEDED_WITH_WARNINGS" in error.message
    record = world.record(handle)
    assert record.state == "active" and record.phase not in (
        TaskExecution.SUCCEEDED,
        TaskExecution.FAILED,
        TaskExecution.ABORTED,
    )


# -- log paging tokens -------------------------------------------------------------------------


def test_a_forged_log_token_cannot_page_into_another_jobs_streams(aws_world):
    """Held: the log group and stream prefix come from the job, never from the caller's token: a
    token naming another job's stream (moto's token form: group@stream@event) pages nothing of it."""
    from flyteidl2.connector import connector_pb2 as pb

    world = aws_world(SageMakerTrainingJobConnector())
    mine, theirs = (world.create(world.request("sagemaker_training_job", training_custom())) for _ in range(2))
    names = [SageMakerTrainingJobMeta.decode(world.record(handle).resource_meta).job_name for handle in (mine, theirs)]
    logs, group = world.boto("logs"), "/aws/sagemaker/TrainingJobs"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for name, text in zip(names, ("my line", "THEIR SECRET LINE"), strict=True):
        logs.create_log_stream(logGroupName=group, logStreamName=f"{name}/algo-1-1")
        logs.put_log_events(
            logGroupName=group,
            logStreamName=f"{name}/algo-1-1",
            logEvents=[{"timestamp": now + i, "message": f"{text} {i}"} for i in range(3)],
        )
    their_events = logs.filter_log_events(logGroupName=group, logStreamNames=[f"{names[1]}/algo-1-1"])["events"]

    def page(token: str) -> list[str]:
        request = pb.GetTaskLogsRequest(
            resource_meta=mine, token=token, lines=10, task_category=pb.TaskCategory(name="sagemaker_training_job")
        )
        return [
            line.message
            for part in world.client.get_task_logs(request)
            if part.HasField("body")
            for line in part.body.lines
        ]

    forged = [
        f"{group}@{names[1]}/algo-1-1@{their_events[0]['eventId']}",
        f"/aws/batch/job@{names[1]}/algo-1-1@{their_events[0]['eventId']}",
        "../../etc",
        "@@",
    ]
    for token in forged:
        try:
            lines = page(token)
        except ConnectRpcError as error:  # refusing a token is fine too, if it is not internal
            assert getattr(error, "code", None) in (Code.INVALID_ARGUMENT, Code.NOT_FOUND), error
            continue
        assert not [line for line in lines if "THEIR" in line], (token, lines)


# -- secrets -----------------------------------------------------------------------------------


def test_connection_secrets_never_reach_aws_the_answer_or_the_stored_request(aws_world):
    from connectors.cancel import unpack_create_request

    world = aws_world(SfnExecutionConnector(), GlueJobConnector())
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    sfn = world.create(
        world.request(
            "sfn_execution",
            {"state_machine_arn": SFN_ARN, "input": {"mode": "x", "rows": 1}},
            inputs={"day": (STR, "monday")},
            secrets={"day": secret, "api_key": secret},
        )
    )
    glue = world.create(
        world.request("glue_job", {"job_name": JOB_NAME}, inputs={"day": (STR, "monday")}, secrets={"api_key": secret})
    )
    execution = world.boto("stepfunctions").describe_execution(
        executionArn=SfnExecutionMeta.decode(world.record(sfn).resource_meta).execution_arn
    )
    assert secret not in json.dumps(execution, default=str) and json.loads(execution["input"])["day"] == "monday"
    meta = GlueJobMeta.decode(world.record(glue).resource_meta)
    run = world.boto("glue").get_job_run(JobName=meta.job_name, RunId=meta.job_run_id)["JobRun"]
    assert secret not in json.dumps(run, default=str)
    for handle, task_type in ((sfn, "sfn_execution"), (glue, "glue_job")):
        assert secret not in str(world.wait(handle, task_type))
        record = world.record(handle)
        assert secret not in repr(record)
    for record in world.records().values():
        if record.create_request:
            assert not unpack_create_request(record.create_request).connection.secrets


# -- AWS errors by kind ------------------------------------------------------------------------


# Was a break, now fixed: base._CONFLICT lists ConcurrentRuns: Glue's ConcurrentRunsExceededException (a quota: the job's MaxConcurrentRuns) is failed_precondition, which the service counts as a refusal, not resource_exhausted as the docs promise for quotas
def test_glue_max_concurrent_runs_is_resource_exhausted(aws_world):
    world = aws_world(GlueJobConnector())
    glue, name = world.boto("glue"), f"flyte-one-at-a-time-{uuid.uuid4().hex[:6]}"
    role = world.boto("iam").get_role(RoleName="flyte-example-glue")["Role"]["Arn"]
    glue.create_job(
        Name=name,
        Role=role,
        Command={"Name": "pythonshell", "ScriptLocation": "s3://flyte-examples/x.py"},
        ExecutionProperty={"MaxConcurrentRuns": 1},
    )
    world.hold("glue::job_run")
    try:
        world.create(world.request("glue_job", {"job_name": name}))
        error = world.error(world.create, world.request("glue_job", {"job_name": name}))
        assert "ConcurrentRunsExceeded" in error.message
        assert error.code == Code.RESOURCE_EXHAUSTED, error.code
    finally:
        world.release("glue::job_run")


# -- arguments and input documents -------------------------------------------------------------


# Was a break, now fixed: emr_serverless appends each input as --<name> <value> after the template's entry_point_arguments without checking for the same flag (glue refuses it): a caller's input silently overrides an argument the task's author fixed
def test_emr_an_input_cannot_override_a_fixed_entry_point_argument(aws_world):
    world = aws_world(EmrServerlessJobConnector())
    custom = {
        "application_id": APPLICATION_ID,
        "execution_role_arn": EMR_ROLE_ARN,
        "entry_point": ENTRY_POINT,
        "entry_point_arguments": ["--source", "s3://trusted/data"],
    }
    request = world.request("emr_serverless_job", custom, inputs={"source": (STR, "s3://attacker/data")})
    try:
        handle = world.create(request)
    except ConnectRpcError as error:
        assert getattr(error, "code", None) == Code.INVALID_ARGUMENT and "source" in str(error)
        return
    meta = EmrServerlessJobMeta.decode(world.record(handle).resource_meta)
    arguments = world.boto("emr-serverless").get_job_run(applicationId=meta.application_id, jobRunId=meta.job_run_id)[
        "jobRun"
    ]["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    parsed = dict(zip(arguments[0::2], arguments[1::2], strict=False))  # the example script's parser (aws_resources)
    assert parsed["--source"] == "s3://trusted/data", arguments


def test_glue_an_input_cannot_replace_the_token_argument_or_a_fixed_argument(aws_world):
    """Held: an input named like a template argument is refused; one named like the token argument
    cannot displace the attempt's token (the look-up stays this attempt's)."""
    from connectors.builtin.aws.glue import TOKEN_ARGUMENT
    from connectors.store.record import TaskExecutionKey

    world = aws_world(GlueJobConnector())
    error = world.error(
        world.create,
        world.request("glue_job", {"job_name": JOB_NAME, "arguments": {"--day": "x"}}, inputs={"day": (STR, "y")}),
    )
    assert error.code == Code.INVALID_ARGUMENT and "--day" in error.message
    forged = "f" * 32
    request = world.request("glue_job", {"job_name": JOB_NAME}, inputs={TOKEN_ARGUMENT[2:]: (STR, forged)})
    handle = world.create(request)
    meta = GlueJobMeta.decode(world.record(handle).resource_meta)
    run = world.boto("glue").get_job_run(JobName=meta.job_name, RunId=meta.job_run_id)["JobRun"]
    token = TaskExecutionKey.from_metadata(request.task_execution_metadata).idempotency_token()
    assert run["Arguments"][TOKEN_ARGUMENT] == token != forged


# Was a break, now fixed: step_functions sends a NaN/infinite float input as the JSON text NaN (json.dumps allows it), which is not JSON: not invalid_argument naming the input
def test_sfn_a_non_finite_float_input_is_invalid_argument(aws_world):
    world = aws_world(SfnExecutionConnector())
    request = world.request(
        "sfn_execution",
        {"state_machine_arn": SFN_ARN, "input": {"mode": "m", "rows": 1}},
        inputs={"day": (FLOAT, float("nan"))},
    )
    try:
        handle = world.create(request)
    except ConnectRpcError as error:
        assert getattr(error, "code", None) == Code.INVALID_ARGUMENT and "day" in str(error)
        return
    execution = world.boto("stepfunctions").describe_execution(
        executionArn=SfnExecutionMeta.decode(world.record(handle).resource_meta).execution_arn
    )
    json.loads(execution["input"], parse_constant=lambda word: pytest.fail(f"not JSON: {word} in {execution['input']}"))
