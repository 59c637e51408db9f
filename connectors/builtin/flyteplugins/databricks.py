"""``databricks``: a one-time Databricks job run, the flyte SDK's Databricks connector ported.

The same calls as ``flyteplugins.databricks.connector`` (flyte-sdk 2.12.1), over httpx instead of
aiohttp (about 1.7 MB with httpcore, h11 and certifi, beside the runtime's anyio and idna; aiohttp
and its compiled dependencies are about 13 MB):

| | |
|---|---|
| create | POST ``https://<instance>/api/2.1/jobs/runs/submit`` with the job spec built from the template's ``databricksConf`` (its ``new_cluster`` completed with the container image, ``sparkConf`` and the container's environment), a ``spark_python_task`` running flytetools' entrypoint with the container's arguments, and ``git_source``; plus ``idempotency_token`` (the attempt's token: Databricks answers a resent submit with the run it already started) |
| get | GET ``runs/get?run_id=``: ``life_cycle_state``, or ``result_state`` once TERMINATED, as a Flyte phase; ``state_message``; a "Databricks Console" link |
| delete | POST ``runs/cancel`` (a no-op for an ended run; a run Databricks does not know is quiet too) |

The token is the ``databricks_token`` secret (a keyword argument, as with the flyte SDK), sent as
``Authorization: Bearer``. The instance is ``databricksInstance`` in the template, else the
``FLYTE_DATABRICKS_INSTANCE`` environment variable; the token goes only to a workspace the
deployment lists (DatabricksInstances, or FLYTE_DATABRICKS_INSTANCE's), for every call.
``databricksConf`` may not set what changes who the run acts as, who may manage it, where its
details are sent, whom it bills or what it runs (``run_as``, ``access_control_list``,
notifications, ``tasks``...) unless DatabricksAllowedSubmitFields lists it
(:mod:`.databricks_submit_fields`).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Any

from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl2.core.tasks_pb2 import TaskTemplate
from google.protobuf.json_format import MessageToDict

from ...connector import AsyncConnector, Resource, ResourceMeta
from ...errors import Code, ConnectError, internal, invalid_argument
from ...phase import convert_to_flyte_phase
from ...secrets import require_listed_host
from ...settings import DATABRICKS_INSTANCES
from .databricks_submit_fields import drop_connector_fields, refuse_deployment_fields

DATABRICKS_API_ENDPOINT = "/api/2.1/jobs"
DEFAULT_DATABRICKS_INSTANCE_ENV_KEY = "FLYTE_DATABRICKS_INSTANCE"


def require_listed_instance(instance: str) -> None:
    """The token goes only to a workspace the deployment lists: DatabricksInstances
    (FLYTE_DATABRICKS_ALLOWED_INSTANCES), or the one FLYTE_DATABRICKS_INSTANCE names. Neither set:
    ``failed_precondition``; another host: ``permission_denied``; both before any connection."""
    require_listed_host(
        "databricks",
        instance,
        DATABRICKS_INSTANCES,
        kind="workspace",
        credential="databricks_token",
        shown=f"databricksInstance {instance!r}",
        also=[os.getenv(DEFAULT_DATABRICKS_INSTANCE_ENV_KEY, "")],
    )


# flytetools' entrypoint, at the commit the flyte SDK pins: it runs the task's container args.
ENTRYPOINT = "flyteplugins/databricks/entrypoint.py"
GIT_SOURCE = {
    "git_url": "https://github.com/flyteorg/flytetools",
    "git_provider": "gitHub",
    "git_commit": "194364210c47c49ce66c419e8fb68d6f9c06fd7e",
}
IDEMPOTENCY_TOKEN_LIMIT = 64  # Databricks' limit on runs/submit's idempotency_token

# States the flyte SDK's convert_to_flyte_phase does not know (it raises, and its server answers
# INTERNAL on every poll): what they mean for a one-time run.
_MORE_PHASES = {
    "QUEUED": TaskExecution.QUEUED,  # waiting for a concurrency slot (runs/submit's queue setting)
    "BLOCKED": TaskExecution.QUEUED,  # blocked on an upstream dependency
    "WAITING_FOR_RETRY": TaskExecution.QUEUED,  # Databricks retries it itself
    "SUCCESS_WITH_FAILURES": TaskExecution.SUCCEEDED,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": TaskExecution.FAILED,  # never ran
    "EXCLUDED": TaskExecution.FAILED,
    "UPSTREAM_FAILED": TaskExecution.FAILED,
    "UPSTREAM_CANCELED": TaskExecution.FAILED,
    "DISABLED": TaskExecution.FAILED,
}


@dataclass
class DatabricksJobMetadata(ResourceMeta):
    databricks_instance: str
    run_id: str


def databricks_job_spec(task_template: TaskTemplate) -> dict[str, Any]:
    """The runs/submit body the flyte SDK's connector builds from a template (without the token)."""
    custom = _custom(task_template)
    container = task_template.container
    env = {entry.key: entry.value for entry in container.env}
    job = custom.get("databricksConf")
    if job is None:
        raise invalid_argument("Missing Databricks job configuration in task template.")
    if not isinstance(job, dict):
        raise invalid_argument(f"databricksConf must be an object, got {job!r}")
    refuse_deployment_fields(job)  # run_as, access_control_list, notifications...: the deployment's
    drop_connector_fields(job)  # spark_python_task, git_source, idempotency_token: set below, in any spelling
    if job.get("existing_cluster_id") is None:
        cluster = job.get("new_cluster")
        if cluster is None:
            raise invalid_argument("Either existing_cluster_id or new_cluster must be specified")
        if not isinstance(cluster, dict):
            raise invalid_argument(f"databricksConf.new_cluster must be an object, got {cluster!r}")
        if not cluster.get("docker_image"):
            cluster["docker_image"] = {"url": container.image}
        if not cluster.get("spark_conf"):
            cluster["spark_conf"] = custom.get("sparkConf", {})
        if not cluster.get("spark_env_vars"):
            cluster["spark_env_vars"] = env
        elif isinstance(cluster["spark_env_vars"], dict):
            cluster["spark_env_vars"].update(env)  # the container's environment wins, as in the SDK
        else:
            raise invalid_argument(
                f"databricksConf.new_cluster.spark_env_vars must be an object, got {cluster['spark_env_vars']!r}"
            )
    job["spark_python_task"] = {"python_file": ENTRYPOINT, "parameters": list(container.args), "source": "GIT"}
    job["git_source"] = dict(GIT_SOURCE)
    return job


def _custom(task_template: TaskTemplate) -> dict[str, Any]:
    try:
        data = MessageToDict(task_template.custom)
    except ValueError as error:  # a NaN or infinite number
        raise invalid_argument(f"databricks: template.custom is not JSON: {error}") from None
    return _whole_numbers(data)


def _whole_numbers(value: Any) -> Any:
    """A Struct holds every number as a float; Databricks' integer fields (num_workers,
    autoscale...) get ints, as the user wrote them."""
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def phase_of(state: dict[str, Any]) -> int:
    """The Flyte phase of a run's ``state``: its ``result_state`` once TERMINATED, else its
    ``life_cycle_state``, by the flyte SDK's words, then Databricks' other states."""
    life_cycle_state = state.get("life_cycle_state")
    word = state.get("result_state") if life_cycle_state == "TERMINATED" else life_cycle_state
    if not isinstance(word, str):
        missing = "result_state" if life_cycle_state == "TERMINATED" else "life_cycle_state"
        raise internal(f"Databricks answered a run state without {missing}: {state}")
    try:
        return convert_to_flyte_phase(word)
    except ValueError:
        if word.upper() in _MORE_PHASES:
            return _MORE_PHASES[word.upper()]
        raise internal(f"Unrecognized state: {word.lower()}") from None


def get_header(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "content-type": "application/json"}


# -- HTTP ----------------------------------------------------------------------------------

_ssl_contexts: dict[str, ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """The verifying context, built once per CA bundle (SSL_CERT_FILE, else certifi's)."""
    cafile = os.environ.get("SSL_CERT_FILE") or ""
    found = _ssl_contexts.get(cafile)
    if found is None:
        with _ssl_lock:
            if cafile not in _ssl_contexts:
                if not cafile:
                    import certifi

                    _ssl_contexts[cafile] = ssl.create_default_context(cafile=certifi.where())
                else:
                    _ssl_contexts[cafile] = ssl.create_default_context(cafile=cafile)
            found = _ssl_contexts[cafile]
    return found


def _timeout() -> Any:
    import httpx

    seconds = float(os.environ.get("CONNECTOR_TIMEOUT_SECONDS", "") or 8.0)
    return httpx.Timeout(seconds, connect=min(3.0, seconds))


async def _call(method: str, url: str, token: str | None, what: str, body: dict[str, Any] | None = None) -> dict:
    """One Databricks REST call; its JSON answer, or a Connect error by Databricks' status."""
    import httpx

    if not token:
        raise ConnectError(Code.UNAUTHENTICATED, f"{what}: no databricks_token secret was given")
    content = json.dumps(body) if body is not None else None
    try:
        async with httpx.AsyncClient(verify=_ssl_context(), timeout=_timeout(), trust_env=False) as client:
            answer = await client.request(method, url, headers=get_header(token), content=content)
    except httpx.HTTPError as error:
        raise ConnectError(Code.UNAVAILABLE, f"{what}: Databricks did not answer: {error!r}") from None
    if answer.status_code == 200:
        try:
            return answer.json()
        except ValueError:
            raise ConnectError(Code.UNAVAILABLE, f"{what}: Databricks answered {answer.text[:200]!r}") from None
    raise databricks_error(answer.status_code, answer.text, what)


def databricks_error(status: int, text: str, what: str) -> ConnectError:
    """A Connect error for a Databricks error answer, with its error_code and message."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("message") or body.get("error_code")):
        detail = ": ".join(str(part) for part in (body.get("error_code"), body.get("message")) if part)
    else:
        detail = f"HTTP {status}: {text[:500]}"
    message = f"{what} with error: {detail}"
    if status == 401:
        return ConnectError(Code.UNAUTHENTICATED, message)
    if status == 403:
        return ConnectError(Code.PERMISSION_DENIED, message)
    if status == 404 or _does_not_exist(body):
        return ConnectError(Code.NOT_FOUND, message)
    if status == 429:
        return ConnectError(Code.RESOURCE_EXHAUSTED, message)
    if status >= 500 or status < 400:
        return ConnectError(Code.UNAVAILABLE, message)
    return invalid_argument(message)


def _does_not_exist(body: Any) -> bool:
    """Databricks' answer for an unknown run: 400 INVALID_PARAMETER_VALUE "Run 5 does not exist."
    (or RESOURCE_DOES_NOT_EXIST)."""
    if not isinstance(body, dict):
        return False
    return body.get("error_code") == "RESOURCE_DOES_NOT_EXIST" or (
        body.get("error_code") == "INVALID_PARAMETER_VALUE" and "does not exist" in str(body.get("message", ""))
    )


# -- the connector -------------------------------------------------------------------------


class DatabricksConnector(AsyncConnector[DatabricksJobMetadata]):
    name = "Databricks Connector"
    task_type_name = "databricks"
    task_type_version = 0
    metadata_type = DatabricksJobMetadata
    secret_names: tuple[str, ...] = ("databricks_token",)
    required_secrets: tuple[str, ...] = ("databricks_token",)
    # replay_window: None. Databricks documents no time window for runs/submit's idempotency_token
    # (it answers "an active run" with that token): the deployment's REPLAY_WINDOW_MINUTES bounds a replay.

    def replay_hint(self, task_template: TaskTemplate, idempotency_token: str, task_execution_metadata: Any) -> str:
        return f"a Databricks run submitted with idempotency_token {idempotency_token[:IDEMPOTENCY_TOKEN_LIMIT]}"

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str = "",
        inputs: dict | None = None,
        task_execution_metadata: Any = None,
        databricks_token: str | None = None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> DatabricksJobMetadata:
        spec = databricks_job_spec(task_template)
        instance = _custom(task_template).get("databricksInstance", os.getenv(DEFAULT_DATABRICKS_INSTANCE_ENV_KEY))
        if not instance:
            raise invalid_argument(
                f"Missing databricks instance. Please set the value through the task config or"
                f" set the {DEFAULT_DATABRICKS_INSTANCE_ENV_KEY} environment variable in the connector."
            )
        if not isinstance(instance, str):
            raise invalid_argument(f"databricksInstance must be a host name, got {instance!r}")
        require_listed_instance(instance)
        if idempotency_token:
            spec["idempotency_token"] = idempotency_token[:IDEMPOTENCY_TOKEN_LIMIT]
        answer = await _call(
            "POST",
            f"https://{instance}{DATABRICKS_API_ENDPOINT}/runs/submit",
            databricks_token,
            "Failed to create databricks job",
            spec,
        )
        if "run_id" not in answer:
            raise ConnectError(Code.UNAVAILABLE, f"Failed to create databricks job: no run_id in {answer}")
        return DatabricksJobMetadata(databricks_instance=instance, run_id=str(answer["run_id"]))

    async def get(
        self, resource_meta: DatabricksJobMetadata, databricks_token: str | None = None, **kwargs: Any
    ) -> Resource:
        instance, run_id = resource_meta.databricks_instance, resource_meta.run_id
        require_listed_instance(instance)  # a record made before the deployment listed its workspaces
        answer = await _call(
            "GET",
            f"https://{instance}{DATABRICKS_API_ENDPOINT}/runs/get?run_id={run_id}",
            databricks_token,
            f"Failed to get databricks job {run_id}",
        )
        phase, message = TaskExecution.UNDEFINED, ""
        state = answer.get("state")
        if state:
            phase = phase_of(state)
            message = state.get("state_message")
        link = TaskLog(uri=f"https://{instance}/#job/{answer.get('job_id')}/run/{run_id}", name="Databricks Console")
        return Resource(phase=phase, message=message, log_links=[link])

    async def delete(
        self, resource_meta: DatabricksJobMetadata, databricks_token: str | None = None, **kwargs: Any
    ) -> None:
        run_id = resource_meta.run_id
        require_listed_instance(resource_meta.databricks_instance)
        try:  # Databricks answers 200 for a run that has ended already
            await _call(
                "POST",
                f"https://{resource_meta.databricks_instance}{DATABRICKS_API_ENDPOINT}/runs/cancel",
                databricks_token,
                f"Failed to cancel databricks job {run_id}",
                {"run_id": run_id},
            )
        except ConnectError as error:
            if error.code != Code.NOT_FOUND:  # a run Databricks no longer knows: nothing to cancel
                raise
