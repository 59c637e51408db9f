"""bigquery_query_job_task: the port (connectors/builtin/flyteplugins/bigquery.py) through the served
app against a loopback BigQuery (tests/fake_bigquery.py, reached by google-cloud-bigquery through
BIGQUERY_EMULATOR_HOST, with a service account key whose token endpoint is the fake's), and the
same task sent through flyte-sdk 2.12.1's own connector module, compared at the HTTP boundary.

Tasks are built with the plugin's own ``BigQueryTask`` and serialized by the flyte SDK. The
original modules (``connector.py``, ``task.py``) come from the flyteplugins-bigquery 2.12.1 wheel
(.venv/wheels/, else ``pip download --no-deps`` once per session) and are imported alone by file
path: the package's ``__init__`` imports pandas, which is not installed.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import importlib.util
import json
import logging
import pathlib
import sys
import uuid
import zipfile
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format

from connectors import literals
from connectors.builtin.flyteplugins.bigquery import BigQueryConnector, BigQueryMetadata
from connectors.errors import Code
from connectors.polling import TRANSIENT
from tests.aws_world import DATAFRAME
from tests.fake_bigquery import FakeBigQuery
from tests.flyte_requests import execution_metadata
from tests.oracle_wheels import oracle_wheel

TYPE = "bigquery_query_job_task"
ROOT = pathlib.Path(__file__).resolve().parents[3]
WHEEL = "flyteplugins-bigquery==2.12.1"
UTC = datetime.UTC


# -- the original plugin, from its wheel ---------------------------------------------------------


def _load(name: str, path: pathlib.Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def original(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """flyteplugins.bigquery's connector and task modules, each imported alone."""
    wheels = [oracle_wheel("flyteplugins-bigquery")]
    unpacked = tmp_path_factory.mktemp("flyteplugins_bigquery")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(unpacked)
    package = unpacked / "flyteplugins" / "bigquery"
    return SimpleNamespace(
        connector=_load("_flyte_sdk_bigquery_connector", package / "connector.py"),
        task=_load("_flyte_sdk_bigquery_task", package / "task.py"),
    )


class _Context:
    """A grpc ServicerContext as flyte's servicer uses it: code and details of a failure."""

    code: Any = None
    details: str = ""

    def set_code(self, code: Any) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


class OriginalService:
    """flyte-sdk's own AsyncConnectorService, called in-process (its connector is registered by
    importing the original module)."""

    def __init__(self) -> None:
        from flyte.connectors._server import AsyncConnectorService

        self.service = AsyncConnectorService()

    def _call(self, method: str, request: Any) -> Any:
        context = _Context()
        answer = asyncio.run(getattr(self.service, method)(request, context))
        assert context.code is None, context.details
        return answer

    def create(self, request: pb.CreateTaskRequest) -> bytes:
        return self._call("CreateTask", request).resource_meta

    def poll(self, handle: bytes, connection: Any) -> pb.Resource:
        return self._call(
            "GetTask",
            pb.GetTaskRequest(resource_meta=handle, connection=connection, task_category=pb.TaskCategory(name=TYPE)),
        ).resource

    def delete(self, handle: bytes, connection: Any) -> None:
        self._call(
            "DeleteTask",
            pb.DeleteTaskRequest(resource_meta=handle, connection=connection, task_category=pb.TaskCategory(name=TYPE)),
        )


# -- tasks and requests --------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeBigQuery() as fake:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", fake.url)
        yield fake


def request_for(
    original: SimpleNamespace,
    fake: FakeBigQuery,
    *,
    inputs: dict[str, tuple[type, Any]] | None = None,
    dataframe: bool = True,
    location: str | None = "US",
    query: str = "select * from `p.d.t` where a = @a",
    key: str | None = None,
    run: str | None = None,
    **config: Any,
) -> pb.CreateTaskRequest:
    """A CreateTaskRequest for a BigQueryTask as the flyte SDK serializes it, with its inputs
    converted by the SDK and the service account key as the connection secret."""
    import flyte
    from flyte._internal.runtime.convert import convert_from_native_to_inputs
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.io import DataFrame
    from flyte.models import SerializationContext

    inputs = inputs or {}
    task = original.task.BigQueryTask(
        name=f"bq_{uuid.uuid4().hex[:8]}",
        query_template=query,
        plugin_config=original.task.BigQueryConfig(ProjectID="flyte-project", Location=location, **config),
        inputs={name: kind for name, (kind, _) in inputs.items()} or None,
        output_dataframe_type=DataFrame if dataframe else None,
    )
    flyte.TaskEnvironment.from_task(f"bq_{uuid.uuid4().hex[:8]}", task)
    template = get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain="development"))
    values = {name: value for name, (_, value) in inputs.items()}
    proto_inputs = asyncio.run(convert_from_native_to_inputs(task.native_interface, **values)).proto_inputs
    return pb.CreateTaskRequest(
        inputs=proto_inputs,
        template=template,
        output_prefix="s3://flyte-examples/outputs/prefix",
        task_execution_metadata=execution_metadata(run or f"r{uuid.uuid4().hex[:12]}"),
        connection={"secrets": {"google_application_credentials": key or fake.service_account_json()}},
    )


TYPED_INPUTS = {
    "a": (int, 7),
    "b": (float, 2.5),
    "c": (str, "it's"),
    "d": (bool, True),
    "e": (datetime.datetime, datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
    "f": (datetime.date, datetime.date(2026, 2, 3)),
}


def inserted(fake: FakeBigQuery) -> list[Any]:
    return [r for r in fake.api_calls() if r.method == "POST" and r.path.endswith("/jobs")]


def poll(world: Any, handle: bytes, request: pb.CreateTaskRequest) -> pb.Resource:
    """GetTask as the executor sends it: with the connection (the secret) it decodes from the template."""
    return world.client.get_task(
        pb.GetTaskRequest(resource_meta=handle, task_category=pb.TaskCategory(name=TYPE), connection=request.connection)
    ).resource


def wait(world: Any, handle: bytes, request: pb.CreateTaskRequest) -> pb.Resource:
    for _ in range(50):
        resource = poll(world, handle, request)
        if resource.phase in (TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED):
            return resource
    raise AssertionError(f"still {TaskExecution.Phase.Name(resource.phase)}")


def delete(world: Any, handle: bytes, request: pb.CreateTaskRequest) -> None:
    world.client.delete_task(
        pb.DeleteTaskRequest(
            resource_meta=handle, task_category=pb.TaskCategory(name=TYPE), connection=request.connection
        )
    )


def meta_of(world: Any, handle: bytes) -> BigQueryMetadata:
    return BigQueryMetadata.decode(world.record(handle).resource_meta)


# -- the port through the served app -------------------------------------------------------------


def test_a_query_job_runs_to_success_with_typed_parameters_and_its_table_as_a_dataframe(aws_world, fake, original):
    world = aws_world(BigQueryConnector())
    request = request_for(original, fake, inputs=TYPED_INPUTS)
    handle = world.create(request)
    job_id = f"flyte_{world.token(request)}"
    [insert] = inserted(fake)
    assert insert.body["jobReference"] == {"jobId": job_id, "projectId": "flyte-project", "location": "US"}
    assert insert.body["configuration"] == {
        "query": {
            "query": "select * from `p.d.t` where a = @a",
            "useLegacySql": False,
            "parameterMode": "NAMED",
            "queryParameters": [
                {"name": "a", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "7"}},
                {"name": "b", "parameterType": {"type": "FLOAT64"}, "parameterValue": {"value": 2.5}},
                {"name": "c", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "it's"}},
                {"name": "d", "parameterType": {"type": "BOOL"}, "parameterValue": {"value": "true"}},
                {
                    "name": "e",
                    "parameterType": {"type": "DATETIME"},
                    "parameterValue": {"value": "2026-01-02T03:04:05.678901"},
                },
                {
                    "name": "f",
                    "parameterType": {"type": "DATETIME"},
                    "parameterValue": {"value": "2026-02-03T00:00:00.000000"},
                },
            ],
        }
    }
    assert insert.headers["authorization"].removeprefix("Bearer ") in fake.tokens
    assert insert.headers["user-agent"].startswith("Flyte/2.12.1 (GPN:Union;development) ")
    assert meta_of(world, handle) == BigQueryMetadata(
        job_id=job_id, project="flyte-project", location="US", user_agent="Flyte/2.12.1 (GPN:Union;development)"
    )

    first = poll(world, handle, request)
    assert (first.phase, first.message) == (TaskExecution.RUNNING, "RUNNING")
    resource = wait(world, handle, request)
    assert (resource.phase, resource.message) == (TaskExecution.SUCCEEDED, "DONE")
    assert world.outputs(resource, {"results": DATAFRAME}) == {
        "results": literals.DataFrameRef(uri=f"bq://flyte-project:_fake_anon.anon_{job_id}")
    }
    assert list(resource.log_links) == [
        TaskLog(
            uri=f"https://console.cloud.google.com/bigquery?project=flyte-project&j=bq:US:{job_id}&page=queryresults",
            name="BigQuery Console",
            ready=True,
            link_type=TaskLog.DASHBOARD,
        )
    ]
    gets = [r for r in fake.api_calls() if r.method == "GET"]
    assert gets and all(
        r.path == f"/bigquery/v2/projects/flyte-project/jobs/{job_id}" and r.query["location"] == ["US"] for r in gets
    )

    delete(world, handle, request)  # a finished task: nothing to cancel, the job stays as it ended
    assert "errors" not in fake.jobs[f"flyte-project.{job_id}"]["status"]
    assert world.error(world.logs, handle, TYPE).code == Code.UNIMPLEMENTED


def test_a_running_job_is_cancelled_by_delete_and_a_job_bigquery_forgot_deletes_quietly(aws_world, fake, original):
    world = aws_world(BigQueryConnector())
    fake.plan(states=["PENDING"] + ["RUNNING"] * 100)
    request = request_for(original, fake, dataframe=False)
    handle = world.create(request)
    assert poll(world, handle, request).phase == TaskExecution.RUNNING
    delete(world, handle, request)
    job = fake.jobs[f"flyte-project.flyte_{world.token(request)}"]
    assert job["status"]["state"] == "DONE" and job["status"]["errorResult"]["reason"] == "stopped"
    delete(world, handle, request)  # again: BigQuery accepts it, nothing changes

    other = request_for(original, fake, dataframe=False)
    handle = world.create(other)
    fake.jobs.clear()  # BigQuery no longer knows the job: jobs.cancel answers 404
    delete(world, handle, other)
    assert fake.api_calls()[-1].path.endswith("/cancel")


def test_a_failed_job_is_failed_with_bigquerys_errors_as_the_message(aws_world, fake, original):
    world = aws_world(BigQueryConnector())
    errors = [{"reason": "invalidQuery", "location": "query", "message": "Syntax error: Unexpected end of script"}]
    fake.plan(states=["PENDING", "DONE"], errors=errors)
    request = request_for(original, fake)
    resource = wait(world, world.create(request), request)
    assert resource.phase == TaskExecution.FAILED
    assert resource.message == str(errors) and not resource.outputs.literals
    assert resource.log_links[0].name == "BigQuery Console"


def test_a_create_retried_after_its_answer_was_lost_adopts_the_job_it_started(aws_world, fake, original):
    connector = BigQueryConnector()
    world = aws_world(connector)
    request = request_for(original, fake, inputs={"a": (int, 1)})
    secrets = dict(request.connection.secrets)
    inputs = {"a": 1}
    first = asyncio.run(
        connector.create(
            request.template,
            request.output_prefix,
            inputs,
            request.task_execution_metadata,
            idempotency_token=world.token(request),
            **secrets,
        )
    )
    handle = world.create(request)  # the executor's retry of the same attempt
    assert len(inserted(fake)) == 2 and len(fake.jobs) == 1  # the second insert met "Already Exists"
    assert meta_of(world, handle) == first
    assert wait(world, handle, request).phase == TaskExecution.SUCCEEDED

    newer = pb.CreateTaskRequest()
    newer.CopyFrom(request)  # the same task: a newer attempt of another one is refused (issue 18)
    newer.task_execution_metadata.task_execution_id.retry_attempt = 1
    world.create(newer)  # a new attempt is a new job
    assert len(fake.jobs) == 2


@pytest.mark.parametrize(
    "method, path, status, reason, code",
    [
        ("POST", r"/jobs$", 400, "invalid", Code.INVALID_ARGUMENT),
        ("POST", r"/jobs$", 401, "unauthorized", Code.UNAUTHENTICATED),
        ("POST", r"/jobs$", 403, "accessDenied", Code.PERMISSION_DENIED),
        ("POST", r"/jobs$", 403, "rateLimitExceeded", Code.RESOURCE_EXHAUSTED),  # retried, then given up
        ("POST", r"/jobs$", 403, "quotaExceeded", Code.RESOURCE_EXHAUSTED),
        ("POST", r"/jobs$", 404, "notFound", Code.NOT_FOUND),
        ("POST", r"/jobs$", 429, "tooManyRequests", Code.RESOURCE_EXHAUSTED),
        ("POST", r"/jobs$", 503, "backendError", Code.UNAVAILABLE),  # retried, then given up
        ("POST", r"/jobs$", 500, "internalError", Code.UNAVAILABLE),
    ],
)
def test_a_refused_create_answers_the_code_of_bigquerys_error_with_its_message(
    aws_world, fake, original, method, path, status, reason, code
):
    connector = BigQueryConnector()
    connector.retry_seconds = 0.5
    world = aws_world(connector)
    fake.fail(method, path, status, f"BigQuery says no ({reason})", reason, times=1000)
    error = world.error(world.create, request_for(original, fake))
    assert error.code == code, error.message
    assert f"BigQuery says no ({reason})" in error.message and "jobs.insert" in error.message


@pytest.mark.parametrize(
    "status, reason, code",
    [
        (404, "notFound", Code.NOT_FOUND),
        (403, "accessDenied", Code.PERMISSION_DENIED),
        (503, "backendError", Code.UNAVAILABLE),
        (400, "invalid", Code.INVALID_ARGUMENT),
    ],
)
def test_a_failed_poll_answers_the_code_of_bigquerys_error(aws_world, fake, original, status, reason, code):
    connector = BigQueryConnector()
    connector.retry_seconds = 0.5
    world = aws_world(connector)
    request = request_for(original, fake)
    handle = world.create(request)
    fake.fail("GET", r"/jobs/", status, f"poll refused ({reason})", reason, times=1000)
    if code in TRANSIENT:  # a status read failing in passing answers the stored phase, saying so (polling.py)
        answer = poll(world, handle, request)
        assert code.value in answer.message and "poll refused" in answer.message and "jobs.get" in answer.message
        return
    error = world.error(poll, world, handle, request)
    assert error.code == code and "poll refused" in error.message and "jobs.get" in error.message


def test_a_transient_failure_is_retried_by_the_client(aws_world, fake, original):
    world = aws_world(BigQueryConnector())
    fake.fail("POST", r"/jobs$", 503, "try again", "backendError", times=1)
    request = request_for(original, fake)
    handle = world.create(request)
    assert len(inserted(fake)) == 2 and len(fake.jobs) == 1
    assert wait(world, handle, request).phase == TaskExecution.SUCCEEDED


def test_the_key_comes_from_secrets_manager_when_the_executor_sends_none(aws_world, fake, original, monkeypatch):
    """The deployed path: the open-source executor resolves no connection secrets, so the service
    reads ``<prefix>/bigquery_query_job_task/google_application_credentials`` for every call."""
    pytest.importorskip("connectors.secrets")
    prefix = f"flyte-test-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SECRETS_PREFIX", prefix)
    world = aws_world(BigQueryConnector())
    world.boto("secretsmanager").create_secret(
        Name=f"{prefix}/{TYPE}/google_application_credentials", SecretString=fake.service_account_json()
    )
    fake.plan(states=["PENDING"] + ["RUNNING"] * 100)
    request = request_for(original, fake)
    request.ClearField("connection")
    handle = world.create(request)
    assert world.poll(handle, TYPE).phase == TaskExecution.RUNNING
    world.delete(handle, TYPE)
    assert [r.path.rsplit("/", 1)[-1] for r in fake.api_calls()] == ["jobs", f"flyte_{world.token(request)}", "cancel"]
    assert all(r.headers["authorization"].removeprefix("Bearer ") in fake.tokens for r in fake.api_calls())


def test_without_the_secret_anywhere_the_call_is_unauthenticated(aws_world, fake, original, monkeypatch):
    monkeypatch.setenv("SECRETS_PREFIX", f"flyte-test-{uuid.uuid4().hex[:6]}")  # nothing stored there
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # no Google metadata server to ask
    world = aws_world(BigQueryConnector())
    request = request_for(original, fake)
    request.ClearField("connection")
    error = world.error(world.create, request)
    assert error.code == Code.UNAUTHENTICATED and "no google_application_credentials secret" in error.message
    assert not fake.requests


def test_a_key_the_token_endpoint_refuses_is_unauthenticated(aws_world, fake, original):
    world = aws_world(BigQueryConnector())
    key = dict(fake.service_account_info(), private_key_id="revoked-key")
    error = world.error(world.create, request_for(original, fake, key=json.dumps(key)))
    assert error.code == Code.UNAUTHENTICATED and "refused" in error.message
    assert not fake.api_calls()


@pytest.mark.parametrize(
    "case, wants",
    [
        ("not json", "not a service account key"),
        ("no project", "ProjectID is required"),
        ("empty query", "sql.statement is empty"),
        ("a duration input", "input 'a' is declared DURATION"),
        ("a list input", "input 'a' is declared collection_type"),
        ("an optional input", "input 'a' is declared union_type"),
    ],
)
def test_a_task_the_port_cannot_send_is_invalid_argument_before_any_call(aws_world, fake, original, case, wants):
    world = aws_world(BigQueryConnector())
    if case == "a duration input":
        request = request_for(original, fake, inputs={"a": (datetime.timedelta, datetime.timedelta(seconds=3))})
    elif case == "a list input":
        request = request_for(original, fake, inputs={"a": (list[int], [1, 2])})
    elif case == "an optional input":
        request = request_for(original, fake, inputs={"a": (int | None, 3)})
    else:
        request = request_for(original, fake, key="{not json" if case == "not json" else None)
    if case == "no project":
        del request.template.custom.fields["ProjectID"]
    if case == "empty query":
        request.template.sql.statement = " "
    error = world.error(world.create, request)
    assert error.code == Code.INVALID_ARGUMENT and wants in error.message, error.message
    assert not fake.api_calls()


def test_the_port_declares_what_the_original_does(original):
    theirs, ours = original.connector.BigQueryConnector, BigQueryConnector
    assert (ours.name, ours.task_type_name, ours.task_type_version) == (theirs.name, theirs.task_type_name, 0)
    assert [f.name for f in ours.metadata_type.__dataclass_fields__.values()] == [
        f.name for f in theirs.metadata_type.__dataclass_fields__.values()
    ]
    assert ours.secret_names == ("google_application_credentials",)


# -- the port against the original ---------------------------------------------------------------


SCENARIOS: dict[str, dict[str, Any]] = {
    "typed inputs to success": {"inputs": TYPED_INPUTS},
    "no inputs, no location, config the original ignores": {"location": None, "dataframe": False, "query": "select 1"},
    "a failed job": {
        "plan": {
            "states": ["PENDING", "RUNNING", "DONE"],
            "errors": [{"reason": "accessDenied", "message": "Access Denied: Table p:d.t"}],
        }
    },
    "a running job cancelled": {"plan": {"states": ["PENDING"] + ["RUNNING"] * 50}, "polls": 2},
}


def _normalize(text: str, job_id: str) -> str:
    return text.replace(job_id, "<job>")


def _calls(fake: FakeBigQuery, start: int, job_id: str, end: int) -> list[tuple[Any, ...]]:
    calls = []
    for r in fake.requests[start:end]:
        if r.path == "/token":
            continue
        body = json.loads(_normalize(json.dumps(r.body), job_id)) if r.body is not None else None
        if body and "queryParameters" in body["configuration"]["query"]:
            # Named parameters: their order means nothing to BigQuery. The original's is the order
            # in which flyte's TypeEngine finished converting the inputs; the port's is the declared.
            body["configuration"]["query"]["queryParameters"].sort(key=lambda item: item["name"])
        calls.append(
            (
                r.method,
                _normalize(r.path, job_id),
                r.query,
                body,
                r.headers.get("user-agent"),
                r.headers.get("x-goog-api-client"),
                r.headers.get("authorization", "").removeprefix("Bearer ") in fake.tokens,
            )
        )
    return calls


def _resource(resource: pb.Resource, job_id: str) -> dict[str, Any]:
    return json.loads(_normalize(json_format.MessageToJson(resource), job_id))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_port_sends_and_answers_what_the_original_does(aws_world, fake, original, scenario, monkeypatch):
    from google.cloud import bigquery

    # The original logs a failed job with logger.error("...:", errors), a message without a %s
    # for its argument; logging reports that on stderr and goes on, pytest's log capture raises.
    monkeypatch.setattr(logging, "raiseExceptions", False)
    # Handlers and filters that flyte.init installed in earlier tests format records outside the
    # handler's error handling: give the original a logger of its own that formats nothing.
    quiet = logging.getLogger("tests.bigquery.original")
    quiet.propagate, quiet.handlers = False, [logging.NullHandler()]
    monkeypatch.setattr(original.connector, "logger", quiet)
    spec = dict(SCENARIOS[scenario])
    plan, polls = spec.pop("plan", None), spec.pop("polls", None)
    if scenario.startswith("no inputs"):  # the task writes these keys; the original never reads them
        spec["QueryJobConfig"] = bigquery.QueryJobConfig(maximum_bytes_billed=1000, use_query_cache=False)
    request = request_for(original, fake, **spec)
    runs = {}
    for who in ("original", "port"):
        if plan:
            fake.plan(**plan)
        start = len(fake.requests)
        if who == "original":
            service = OriginalService()
            handle = service.create(request)
            job_id = json.loads(handle)["job_id"]
            poll_it = functools.partial(service.poll, handle, request.connection)
            delete_it = functools.partial(service.delete, handle, request.connection)
        else:
            world = aws_world(BigQueryConnector())
            handle = world.create(request)
            job_id = meta_of(world, handle).job_id
            assert job_id == f"flyte_{world.token(request)}"
            poll_it = functools.partial(poll, world, handle, request)
            delete_it = functools.partial(delete, world, handle, request)
        resources = []
        for _ in range(polls or 10):
            resources.append(_resource(poll_it(), job_id))
            if resources[-1].get("phase") in ("SUCCEEDED", "FAILED") and not polls:
                break
        before_delete = len(fake.requests)
        delete_it()
        if polls:  # cancelled (a poll of a deleted task is the service's own answer: ABORTED)
            assert fake.jobs[f"flyte-project.{job_id}"]["status"]["errorResult"]["reason"] == "stopped"
        runs[who] = SimpleNamespace(
            calls=_calls(fake, start, job_id, before_delete),
            resources=resources,
            cancels=_calls(fake, before_delete, job_id, len(fake.requests)),
        )
    assert runs["port"].calls == runs["original"].calls
    assert runs["port"].resources == runs["original"].resources
    if polls:  # a running job: both cancel it the same way
        assert runs["port"].cancels == runs["original"].cancels
        assert [call[1] for call in runs["port"].cancels][:1] == [
            "/bigquery/v2/projects/flyte-project/jobs/<job>/cancel"
        ]
    else:  # a finished task: the original cancels the done job (a no-op); the service answers the delete itself
        assert [call[1] for call in runs["original"].cancels] == [
            "/bigquery/v2/projects/flyte-project/jobs/<job>/cancel"
        ]
        assert runs["port"].cancels == []
    assert runs["port"].resources[-1]["phase"] == (
        "RUNNING" if polls else "SUCCEEDED" if "success" in scenario or "no inputs" in scenario else "FAILED"
    )
