"""The runs/submit fields a ``databricks`` template may not set: the deployment's, not a task's.

The connector sends ``databricksConf`` to Databricks' Jobs API ``runs/submit`` with the deployment's
token, so whatever the body says, the deployment's principal asks for it. The fields below change
who the run acts as, who may see or manage it, where its details are sent, whom it bills, or what
it runs besides the task's container; each is ``invalid_argument`` before any call unless the
deployment lists it in ``DatabricksAllowedSubmitFields`` (docs/security.md, "What a task may
change"). Names are compared without case or anything but letters and digits (``runAs`` and
``RUN_AS`` are ``run_as``): a JSON reader that takes protobuf's camelCase names would read them so;
NFKC-normalised and case-folded first, so that a Unicode spelling (fullwidth letters, U+017F for
``s``) is compared as the name a Unicode-aware reader would take it for. A task in an allowed
``tasks`` is looked at whole, the task a ``for_each_task`` holds included.

Left to the task, as the flyte SDK's connector sends them: the cluster (``new_cluster``,
``existing_cluster_id``), ``libraries``, ``run_name``, ``timeout_seconds``, ``queue``, ``health``,
``environments`` and ``notification_settings`` (which only mutes alerts of skipped or cancelled runs
for the destinations above). ``spark_python_task``, ``git_source`` and ``idempotency_token`` are
the connector's own: a template's, in any spelling, is dropped before the connector sets them
(:func:`drop_connector_fields`), never sent beside them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from ...settings import DATABRICKS_SUBMIT_FIELDS
from ..aws.fields import refuse_unless_listed

TASK_TYPE = "databricks"
_SENDS = "sends the run's details (its name, state, links) outside the workspace"

# runs/submit's top-level fields the deployment keeps, each with why (Jobs API 2.1/2.2, SubmitRunRequest).
DEPLOYMENT_FIELDS = {
    "run_as": "chooses the user or service principal the run acts as (without it, the deployment token's own identity)",
    "access_control_list": "grants permissions on the run to the users, groups and service principals it names",
    "email_notifications": f"{_SENDS}, to the e-mail addresses it names",
    "webhook_notifications": f"{_SENDS}, to the notification destinations it names",
    "budget_policy_id": "chooses the budget policy the run's cost is attributed to",
    "usage_policy_id": "chooses the usage policy the run's cost is attributed to",
    "tasks": (
        "replaces the one task the connector builds with tasks of the template's own "
        "(run_job_task and pipeline_task start jobs and pipelines that run as their own identity)"
    ),
}
# What each task of an allowed ``tasks`` may not set either (SubmitTask; and the task its
# for_each_task runs, which is a SubmitTask too).
TASK_FIELDS = ("email_notifications", "webhook_notifications")
# What the connector sets in the body itself (databricks.py): a template's is never sent.
CONNECTOR_FIELDS = ("spark_python_task", "git_source", "idempotency_token")


def folded(name: str) -> str:
    """A field's name as compared: NFKC-normalised, case-folded, ASCII letters and digits only."""
    name = unicodedata.normalize("NFKC", name).casefold()
    return "".join(char for char in name if char.isascii() and char.isalnum())


_KEPT = {folded(name): name for name in DEPLOYMENT_FIELDS}


def refuse_deployment_fields(job: dict[str, Any]) -> None:
    """``invalid_argument`` for the first field of :data:`DEPLOYMENT_FIELDS` in ``job`` (the
    template's ``databricksConf``), or of :data:`TASK_FIELDS` in one of its ``tasks``, that
    ``DatabricksAllowedSubmitFields`` does not list."""
    for key in job:
        name = _KEPT.get(folded(str(key)))
        if name is not None:
            _refuse_unless_listed(f"template.custom.databricksConf.{key}", name, DEPLOYMENT_FIELDS[name])
            if name == "tasks" and isinstance(job[key], list):
                _refuse_task_fields(key, job[key])


def _refuse_task_fields(key: str, tasks: list[Any]) -> None:
    for index, task in enumerate(tasks):
        _refuse_in_task(f"template.custom.databricksConf.{key}[{index}]", task)


def _refuse_in_task(where: str, task: Any) -> None:
    """The fields of :data:`TASK_FIELDS` in one task, and in the task its ``for_each_task`` runs."""
    per_task = {folded(name): name for name in TASK_FIELDS}
    for field in task if isinstance(task, dict) else ():
        name = per_task.get(folded(str(field)))
        if name is not None:
            _refuse_unless_listed(f"{where}.{field}", name, DEPLOYMENT_FIELDS[name])
        if folded(str(field)) == "foreachtask" and isinstance(task[field], dict):
            for inner in task[field]:
                if folded(str(inner)) == "task":
                    _refuse_in_task(f"{where}.{field}.{inner}", task[field][inner])


def drop_connector_fields(job: dict[str, Any]) -> None:
    """Remove from ``job`` every key that names one of :data:`CONNECTOR_FIELDS` in any spelling:
    the connector sets them by their exact names after, and a ``gitSource`` left beside its
    ``git_source`` would be the template's to a reader that takes camelCase and the last."""
    own = {folded(name) for name in CONNECTOR_FIELDS}
    for key in [key for key in job if folded(str(key)) in own]:
        del job[key]


def _refuse_unless_listed(where: str, name: str, why: str) -> None:
    refuse_unless_listed(TASK_TYPE, where, name, why, DATABRICKS_SUBMIT_FIELDS, same=folded)
