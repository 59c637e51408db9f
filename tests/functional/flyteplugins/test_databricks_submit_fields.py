"""Issue 18, the ``databricks`` port reviewed as a hostile task author: what ``databricksConf`` may
put in the runs/submit body the deployment's token sends, through the served app against the
loopback HTTPS Databricks fake (tests/fake_databricks.py).

Before the fix, ``databricksConf`` went to Databricks as written: a template could name ``run_as``
(the run acts as another user or service principal, one the token's principal may use), grant
itself or anyone permissions on the run (``access_control_list``), send the run's details to
addresses of its choosing (``email_notifications``, ``webhook_notifications``), bill another
budget (``budget_policy_id``, ``usage_policy_id``) or replace the one task the connector builds
with tasks of its own (``tasks``: ``run_job_task`` starts another job, which runs as that job's
own identity). Each was submitted. Now each is ``invalid_argument`` before any call, naming the
field and the ``DatabricksAllowedSubmitFields`` parameter, which widens it on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import Code
from tests.fake_databricks import FakeDatabricks
from tests.functional.flyteplugins import test_databricks as databricks

ALLOWED = "DATABRICKS_ALLOWED_SUBMIT_FIELDS"
PARAMETER = "DatabricksAllowedSubmitFields"

# A value a hostile template could give each field the deployment keeps.
KEPT = {
    "run_as": {"service_principal_name": "6f1c0b1e-admin-service-principal"},
    "access_control_list": [{"group_name": "users", "permission_level": "CAN_MANAGE"}],
    "email_notifications": {"on_start": ["someone@attacker.example"], "on_success": ["someone@attacker.example"]},
    "webhook_notifications": {"on_start": [{"id": "0481e838-attacker-destination"}]},
    "budget_policy_id": "another-teams-budget-policy",
    "usage_policy_id": "another-teams-usage-policy",
    "tasks": [{"task_key": "other", "run_job_task": {"job_id": 1234}}],
}


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=databricks.TOKEN) as served:
        monkeypatch.setenv("SSL_CERT_FILE", served.cafile)
        monkeypatch.setenv("FLYTE_DATABRICKS_ALLOWED_INSTANCES", served.instance)
        monkeypatch.delenv(ALLOWED, raising=False)  # the parameter's default: nothing allowed
        yield served


@pytest.fixture
def world(aws_world, fake, monkeypatch) -> Any:
    return databricks.databricks_world(aws_world, monkeypatch)


def submit(world: Any, fake: FakeDatabricks, conf: dict[str, Any]) -> Any:
    tpl = databricks.template(databricks.databricks_custom(conf, fake.instance))
    return world.create(databricks.request(world, tpl))


def refused(world: Any, fake: FakeDatabricks, conf: dict[str, Any]) -> Any:
    tpl = databricks.template(databricks.databricks_custom(conf, fake.instance))
    return world.error(world.create, databricks.request(world, tpl))


@pytest.mark.parametrize("field", sorted(KEPT))
def test_a_field_the_deployment_keeps_is_refused_before_any_call(world, fake, field):
    error = refused(world, fake, {**databricks.NEW_CLUSTER, field: KEPT[field]})
    assert error.code == Code.INVALID_ARGUMENT, error.message
    assert f"databricksConf.{field}" in error.message, error.message
    assert PARAMETER in error.message and ALLOWED in error.message, error.message
    assert fake.requests == []


@pytest.mark.parametrize("spelling", ["runAs", "RUN_AS", "Run-As"])
def test_run_as_in_another_spelling_is_refused_too(world, fake, spelling):
    """Databricks' JSON reader may take a field's camelCase name as well (protobuf's JSON mapping
    does): every spelling that folds to ``run_as`` is refused."""
    error = refused(world, fake, {**databricks.NEW_CLUSTER, spelling: KEPT["run_as"]})
    assert error.code == Code.INVALID_ARGUMENT and f"databricksConf.{spelling}" in error.message, error.message
    assert "'run_as'" in error.message and PARAMETER in error.message, error.message
    assert fake.requests == []


def test_a_listed_field_is_sent_as_written(world, fake, monkeypatch):
    monkeypatch.setenv(ALLOWED, "run_as, access_control_list")
    conf = {**databricks.NEW_CLUSTER, "run_as": KEPT["run_as"], "access_control_list": KEPT["access_control_list"]}
    submit(world, fake, conf)
    (call,) = fake.calls("runs/submit")
    assert call.body["run_as"] == KEPT["run_as"]
    assert call.body["access_control_list"] == KEPT["access_control_list"]


def test_listing_one_field_allows_no_other(world, fake, monkeypatch):
    monkeypatch.setenv(ALLOWED, "run_as")
    error = refused(world, fake, {**databricks.NEW_CLUSTER, "webhook_notifications": KEPT["webhook_notifications"]})
    assert error.code == Code.INVALID_ARGUMENT and "databricksConf.webhook_notifications" in error.message
    assert fake.requests == []


def test_allowed_tasks_still_keep_their_own_notifications_to_the_deployment(world, fake, monkeypatch):
    """A task of ``tasks`` has its own ``email_notifications`` and ``webhook_notifications``: allowing
    ``tasks`` does not allow them."""
    monkeypatch.setenv(ALLOWED, "tasks")
    task = {"task_key": "t", "webhook_notifications": KEPT["webhook_notifications"]}
    error = refused(world, fake, {**databricks.NEW_CLUSTER, "tasks": [task]})
    assert error.code == Code.INVALID_ARGUMENT, error.message
    assert "databricksConf.tasks[0].webhook_notifications" in error.message, error.message
    assert fake.requests == []
    monkeypatch.setenv(ALLOWED, "tasks, webhook_notifications")
    submit(world, fake, {**databricks.NEW_CLUSTER, "tasks": [task]})
    (call,) = fake.calls("runs/submit")
    assert call.body["tasks"] == [task]


def test_what_sends_nothing_and_acts_as_no_one_else_is_still_the_tasks(world, fake):
    """``notification_settings`` only mutes alerts for skipped or cancelled runs (to destinations
    the deployment allowed), ``queue``, ``health`` and ``run_name`` change nothing of who or where:
    sent as written, as the flyte SDK's connector sends them."""
    conf = {
        **databricks.NEW_CLUSTER,
        "notification_settings": {"no_alert_for_skipped_runs": True},
        "queue": {"enabled": True},
        "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}]},
    }
    submit(world, fake, conf)
    (call,) = fake.calls("runs/submit")
    for field in ("notification_settings", "queue", "health", "run_name", "timeout_seconds"):
        assert call.body[field] == conf[field], field
