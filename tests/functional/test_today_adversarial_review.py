"""Adversarial review of two changes: GetTask answers from the record carry the log links last read
(e7790c4, 4ec456d), and databricksConf fields refused unless DatabricksAllowedSubmitFields lists
them (a73dc74, 4d3f723). Each test failed before its fix; its docstring says how.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from google.protobuf import json_format

from connectors import Resource
from connectors.errors import Code
from tests.fake_databricks import FakeDatabricks
from tests.functional.flyteplugins import test_databricks as databricks
from tests.functional.test_lifecycle_adversarial import SECRET
from tests.functional.test_lifecycle_adversarial_2 import World2, stored_text

# == Change 1: the record keeps the log links a read reported ==============================================


@pytest.fixture
def world(dynamodb_client, tmp_path) -> Iterator[World2]:
    with World2(dynamodb_client, tmp_path / "ledger.json") as w:
        yield w


def test_a_secret_in_a_links_icon_uri_is_neither_stored_nor_answered(world):
    """A TaskLog has a third text a connector may fill, ``icon_uri`` (shown by the UI beside the
    link). answer_resource cut the request's secrets from a link's uri and name only, so a
    connector that echoed its token in the icon's URL had it answered, and since 4ec456d also
    written to the task table in ``log_links`` (kept for every later answer)."""
    handle = world.create("icon-leak-run", 0)
    world.connector.reports["job-1"] = Resource(
        phase=TaskExecution.RUNNING,
        message="running",
        log_links=[
            TaskLog(
                name="console",
                uri="https://console.example.com/jobs/1",
                icon_uri=f"https://console.example.com/icon.svg?token={SECRET}",
            )
        ],
    )
    answer = world.poll_with(handle, {"api_key": SECRET})
    assert SECRET not in json_format.MessageToJson(answer), "the secret is answered in a link's icon_uri"
    assert SECRET not in stored_text(world), "the secret is stored in the record's log_links"
    assert [link.icon_uri for link in answer.log_links] == ["https://console.example.com/icon.svg?token=***"]


# == Change 2: databricksConf may not set what the deployment keeps ========================================

ALLOWED = "DATABRICKS_ALLOWED_SUBMIT_FIELDS"
WEBHOOK = {"on_start": [{"id": "0481e838-attacker-destination"}]}


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=databricks.TOKEN) as served:
        monkeypatch.setenv("SSL_CERT_FILE", served.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", served.instance)
        monkeypatch.delenv(ALLOWED, raising=False)
        yield served


@pytest.fixture
def dbx(aws_world, fake, monkeypatch) -> Any:
    return databricks.databricks_world(aws_world, monkeypatch)


def _request(dbx: Any, fake: FakeDatabricks, conf: dict[str, Any]) -> Any:
    return databricks.request(dbx, databricks.template(databricks.databricks_custom(conf, fake.instance)))


def test_allowed_tasks_may_not_hide_notifications_in_a_for_each_task(dbx, fake, monkeypatch):
    """With ``tasks`` allowed and notifications not, a task's own ``webhook_notifications`` is
    refused, but a ``for_each_task`` holds a whole task (SubmitTask.for_each_task.task) with its
    own notifications: only the top level of each task was looked at, so the nested one was
    submitted, sending the run's details to the template's destination."""
    monkeypatch.setenv(ALLOWED, "tasks")
    nested = {"task_key": "inner", "webhook_notifications": WEBHOOK, "notebook_task": {"notebook_path": "/x"}}
    task = {"task_key": "loop", "for_each_task": {"inputs": "[1, 2]", "task": nested}}
    error = dbx.error(dbx.create, _request(dbx, fake, {**databricks.NEW_CLUSTER, "tasks": [task]}))
    assert error.code == Code.INVALID_ARGUMENT, error.message
    assert "tasks[0].for_each_task.task.webhook_notifications" in error.message, error.message
    assert fake.requests == []


@pytest.mark.parametrize("spelling", ["run_a\u017f", "\uff52\uff55\uff4e\uff3f\uff41\uff53", "RUN_A\u017f"])
def test_run_as_in_a_unicode_spelling_is_refused(dbx, fake, spelling):
    """``folded`` lower-cased and then dropped every non-ASCII character, so a name that a Unicode-
    aware case-insensitive reader takes for ``run_as`` (U+017F, LATIN SMALL LETTER LONG S, upper-
    cases to ``S``; fullwidth letters are ``run_as`` under NFKC) folded to something else
    (``runa``, or nothing) and was submitted. Folded as NFKC and casefold first, it is refused."""
    conf = {**databricks.NEW_CLUSTER, spelling: {"service_principal_name": "admin-sp"}}
    error = dbx.error(dbx.create, _request(dbx, fake, conf))
    assert error.code == Code.INVALID_ARGUMENT and "'run_as'" in error.message, error.message
    assert fake.requests == []


@pytest.mark.parametrize(
    "field",
    [
        ("git_source", "gitSource"),
        ("spark_python_task", "sparkPythonTask"),
        ("idempotency_token", "idempotencyToken"),
    ],
)
def test_the_connectors_own_fields_are_not_sent_in_another_spelling(dbx, fake, field):
    """The connector replaces ``git_source``, ``spark_python_task`` and ``idempotency_token`` with
    its own, by their exact names only: a template's ``gitSource`` (camelCase, which the change's
    own premise says a protobuf JSON reader takes) stayed in the body beside the connector's,
    after it in the JSON when the template also wrote the exact name, so a last-wins reader took
    the template's code source, entry point or idempotency token (another run's, to adopt it)."""
    exact, other = field
    hostile = {"url": "https://attacker.example/repo", "provider": "gitHub"} if exact == "git_source" else "x"
    conf = {**databricks.NEW_CLUSTER, exact: hostile, other: hostile}
    dbx.create(_request(dbx, fake, conf))
    (call,) = fake.calls("runs/submit")
    spelled = [key for key in call.body if key.replace("_", "").lower() == exact.replace("_", "").lower()]
    assert spelled == [exact], f"sent {spelled}"
    assert call.body[exact] != hostile
