"""The AWS connectors' shared base: errors by kind, names from tokens, template fields, phases."""

from __future__ import annotations

import datetime
import re

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ParamValidationError
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.tasks_pb2 import TaskTemplate
from google.protobuf.struct_pb2 import Struct
from hypothesis import given
from hypothesis import strategies as st

from connectors import literals
from connectors.builtin.aws.base import Fields, PhaseTable, aws_error, input_text, inputs_json, token_name
from connectors.errors import Code, ConnectError

TOKEN = "0123456789abcdef0123456789abcdef"


def client_error(code: str, status: int, message: str = "the message") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "StartJob"
    )


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("ValidationException", 400, Code.INVALID_ARGUMENT),
        ("InvalidRequestException", 400, Code.INVALID_ARGUMENT),
        ("ClientException", 400, Code.INVALID_ARGUMENT),  # Batch's validation error
        ("AccessDeniedException", 400, Code.PERMISSION_DENIED),
        ("AccessDenied", 403, Code.PERMISSION_DENIED),
        ("InvalidClientTokenId", 403, Code.PERMISSION_DENIED),  # credentials before "Invalid"
        ("ThrottlingException", 400, Code.RESOURCE_EXHAUSTED),
        ("TooManyRequestsException", 429, Code.RESOURCE_EXHAUSTED),
        ("ResourceLimitExceeded", 400, Code.RESOURCE_EXHAUSTED),
        ("ResourceNotFoundException", 400, Code.NOT_FOUND),
        ("StateMachineDoesNotExist", 400, Code.NOT_FOUND),
        ("EntityNotFoundException", 400, Code.NOT_FOUND),
        ("ExecutionAlreadyExists", 400, Code.FAILED_PRECONDITION),
        ("ConflictException", 409, Code.FAILED_PRECONDITION),
        ("IdempotentParameterMismatch", 400, Code.FAILED_PRECONDITION),
        ("InternalServerException", 500, Code.UNAVAILABLE),
        # Redshift Data's quotas (HTTP 400 in the service model): a quota is resource_exhausted
        ("ActiveStatementsExceededException", 400, Code.RESOURCE_EXHAUSTED),
        ("ActiveSessionsExceededException", 400, Code.RESOURCE_EXHAUSTED),
        # Glue's "The operation timed out" (any of 233 operations): the call may have taken effect,
        # so an outcome unknown (unavailable: the lifecycle looks the job up), never a refusal
        ("OperationTimeoutException", 400, Code.UNAVAILABLE),
        ("RequestTimeout", 400, Code.UNAVAILABLE),
        ("ServiceUnavailable", 503, Code.UNAVAILABLE),
        ("SomethingNew", 400, Code.INVALID_ARGUMENT),
        ("SomethingNew", 418, Code.FAILED_PRECONDITION),
    ],
)
def test_aws_errors_map_by_kind_and_keep_awss_code_and_message(code, status, expected):
    mapped = aws_error(client_error(code, status), "batch SubmitJob")
    assert mapped.code == expected
    assert mapped.message == f"batch SubmitJob: {code}: the message"


def test_errors_that_are_not_aws_answers():
    assert aws_error(ParamValidationError(report="jobName is missing"), "batch SubmitJob").code == Code.INVALID_ARGUMENT
    assert aws_error(NoCredentialsError(), "x Y").code == Code.UNAUTHENTICATED
    assert aws_error(EndpointConnectionError(endpoint_url="https://batch"), "x Y").code == Code.UNAVAILABLE
    own = ConnectError(Code.NOT_FOUND, "mine")
    assert aws_error(own, "x Y") is own
    with pytest.raises(KeyError):  # a bug is not an AWS failure: the service reports it as internal
        aws_error(KeyError("k"), "x Y")


@given(stem=st.text(max_size=200), limit=st.integers(min_value=33, max_value=128))
def test_a_token_name_fits_keeps_the_whole_token_and_only_allowed_characters(stem, limit):
    name = token_name(TOKEN, limit, stem=stem)
    assert len(name) <= limit and name.endswith(TOKEN)
    assert re.fullmatch(r"[A-Za-z0-9-]+", name) and not name.startswith("-") and "--" not in name[: -len(TOKEN)]
    assert token_name(TOKEN, limit, stem=stem) == name  # the same attempt, the same name


def test_a_token_name_reads_as_its_run_and_action():
    assert token_name(TOKEN, 63, stem="my_run.v2--n0") == f"my-run-v2-n0-{TOKEN}"
    assert token_name(TOKEN, 128, stem="my_run", allowed="A-Za-z0-9_-") == f"my_run-{TOKEN}"
    assert token_name(TOKEN, 32, stem="long stem") == TOKEN


def test_a_token_name_refuses_what_is_not_a_token():
    with pytest.raises(ConnectError) as caught:
        token_name("../../etc", 63)
    assert caught.value.code == Code.INTERNAL


def fields(**custom) -> Fields:
    struct = Struct()
    struct.update(custom)
    return Fields("some_task", TaskTemplate(custom=struct))


def test_fields_name_the_field_that_is_missing_or_of_the_wrong_kind():
    data = fields(name="x", count=3, ratio=0.5, env={"A": "1"}, bad_env={"A": 1}, uri="/tmp")
    assert data.required("name") == "x" and data.required("count", int) == 3 and data.optional("ratio", float) == 0.5
    assert data.optional("absent", int, 7) == 7 and data.string_map("env") == {"A": "1"}
    for call, needle in [
        (lambda: data.required("absent"), "template.custom.absent is required"),
        (lambda: data.required("name", int), "template.custom.name must be a whole number"),
        (lambda: data.optional("ratio", int), "template.custom.ratio must be a whole number"),
        (lambda: data.string_map("bad_env"), "template.custom.bad_env.A must be a string"),
        (lambda: data.s3_uri("uri"), "template.custom.uri must be an s3:// URI"),
        (lambda: data.one_of("name", "count"), "exactly one of name, count"),
    ]:
        with pytest.raises(ConnectError) as caught:
            call()
        assert caught.value.code == Code.INVALID_ARGUMENT and needle in caught.value.message, caught.value.message


def test_an_unknown_status_word_is_a_poll_error_never_a_guessed_phase():
    table = PhaseTable("batch", {"RUNNING": TaskExecution.RUNNING, "FAILED": TaskExecution.FAILED})
    assert table.phase("RUNNING") == TaskExecution.RUNNING and table.terminal == {"FAILED"}
    with pytest.raises(ConnectError) as caught:
        table.phase("HIBERNATING")
    assert caught.value.code == Code.INTERNAL and "HIBERNATING" in caught.value.message


def test_inputs_become_the_text_aws_parameters_take():
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    assert [input_text(v) for v in (True, 3, 1.5, "s", when, literals.FileRef("s3://b/k"), [1, {"a": None}])] == [
        "true",
        "3",
        "1.5",
        "s",
        "2026-01-02T00:00:00+00:00",
        "s3://b/k",
        '[1,{"a":null}]',
    ]
    assert inputs_json({"d": literals.DataFrameRef("s3://b/p"), "n": 1}) == {"d": "s3://b/p", "n": 1}


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),  # the documented local run sets only this
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-1"),  # Lambda sets both
        ({"AWS_DEFAULT_REGION": "us-east-2"}, "us-east-2"),
    ],
)
def test_the_clients_call_the_region_the_links_name(monkeypatch, env, expected):
    """botocore alone reads AWS_DEFAULT_REGION, never AWS_REGION: a client built without a region
    failed ("You must specify a region") where the console links named AWS_REGION's."""
    from connectors.builtin.aws import base

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no profile region from the machine
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    base.reset_clients()
    try:
        assert base.client("athena").meta.region_name == expected
        assert base.console_url("athena/home?region={region}").startswith(f"https://{expected}.console")
    finally:
        base.reset_clients()
