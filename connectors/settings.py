"""Service settings, read once per process from the environment (template.yaml sets them)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"environment variable {name} must be a finite number, not negative, got {raw!r}")
    return value


# Below the executor's 30 s resync, so one executor's polls each read; AWS Batch's DescribeJobs
# budget (about 50 calls/s per account) then serves 250 tasks polled by any number of pollers.
DEFAULT_STATUS_READ_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    tasks_table: str = "connector-tasks"
    # Every connector call runs under this deadline: below the executor's 10 s CreateTask deadline.
    connector_timeout_seconds: float = 8.0
    # A CreateTask claim older than this is taken to belong to a dead invocation and is resumed.
    create_claim_seconds: float = 60.0
    # How long a finished task's record is kept (DynamoDB TTL on expires_at).
    terminal_retention_days: float = 30.0
    # How long an active task's record is kept after its last poll.
    active_retention_days: float = 30.0
    # A task no executor has polled for this long is cancelled by the reaper.
    abandoned_after_minutes: float = 60.0
    # Larger request bodies answer resource_exhausted (Lambda's own limit is 6 MB).
    max_request_bytes: int = 4 * 1024 * 1024
    # Mixed into every idempotency token (template.yaml: the stack's name), so that two
    # deployments sharing an AWS account never find each other's jobs for the same run name.
    token_salt: str = ""
    # GetTask answers the stored phase while status reads fail in passing (throttled, unavailable,
    # a deadline), and the failure only once none has succeeded for this long: longer than AWS's
    # throttling storms and regional blips usually last, short enough that a job the service can
    # no longer reach is failed within the hour (polling.py).
    status_stale_after_minutes: float = 30.0
    # A task's remote status is read at most once per this many seconds, however many pollers ask
    # (two executors in a rollout, a relay retry, an operator); polls in between answer the stored
    # phase from one DynamoDB read. 0: every poll reads (a Settings made in code; the functions'
    # environment always names it, DEFAULT_STATUS_READ_INTERVAL_SECONDS when unset).
    status_read_interval_seconds: float = 0.0
    # How long after an attempt's first create a create whose answer was lost may be replayed with
    # its token to find the job, for a connector whose remote documents no window for the key
    # (Athena, Redshift Data, EMR Serverless, Databricks, a connector that declares none;
    # replay.py). AWS documents nothing here: this is the deployment's bound, not AWS's promise.
    # 180: the reaper's first pass comes at abandoned_after_minutes (60) plus one schedule period
    # (5), and its back-off retries (1, 2, 4... minutes) add about an hour more over six failures.
    replay_window_minutes: float = 180.0
    # With state-change events delivered (template.yaml: the status-events queue and function;
    # make serve: its consumer), a poll of a task whose connector has events answers the record
    # while its status is younger than ``status_safety_read_minutes``: an event keeps it current,
    # and a lost one is caught by the read that comes after this long (connectors/event_receiver.py).
    # 0: no events are delivered, every poll reads as above.
    status_safety_read_minutes: float = 0.0
    # TaskRoleArnPattern: each task's AWS calls signed as its project's role (connectors/task_roles.py;
    # the pattern itself: connectors/task_role_pattern.py); empty: as the service's own role.
    task_role_arn_pattern: str = ""

    def __post_init__(self) -> None:
        if self.task_role_arn_pattern:  # a malformed pattern fails the function's cold start
            from .task_role_pattern import parse_pattern

            parse_pattern(self.task_role_arn_pattern)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            tasks_table=os.environ.get("TASKS_TABLE", "").strip() or cls.tasks_table,
            connector_timeout_seconds=_number("CONNECTOR_TIMEOUT_SECONDS", cls.connector_timeout_seconds),
            create_claim_seconds=_number("CREATE_CLAIM_SECONDS", cls.create_claim_seconds),
            terminal_retention_days=_number("TERMINAL_RETENTION_DAYS", cls.terminal_retention_days),
            active_retention_days=_number("ACTIVE_RETENTION_DAYS", cls.active_retention_days),
            abandoned_after_minutes=_number("ABANDONED_AFTER_MINUTES", cls.abandoned_after_minutes),
            max_request_bytes=int(_number("MAX_REQUEST_BYTES", cls.max_request_bytes)),
            token_salt=os.environ.get("IDEMPOTENCY_TOKEN_SALT", "").strip(),
            status_stale_after_minutes=_number("STATUS_STALE_AFTER_MINUTES", cls.status_stale_after_minutes),
            status_read_interval_seconds=_number("STATUS_READ_INTERVAL_SECONDS", DEFAULT_STATUS_READ_INTERVAL_SECONDS),
            replay_window_minutes=_number("REPLAY_WINDOW_MINUTES", cls.replay_window_minutes),
            task_role_arn_pattern=os.environ.get("TASK_ROLE_ARN_PATTERN", "").strip(),
            status_safety_read_minutes=_number("STATUS_SAFETY_READ_MINUTES", cls.status_safety_read_minutes),
        )


# -- what the deployment lets a task reach (docs/security.md) --------------------------------------


@dataclass(frozen=True)
class DeploymentList:
    """A comma-separated list the deployment sets: a template.yaml parameter, given to the
    functions as an environment variable. Read at each use (one ``os.environ`` lookup), so that
    what a connector allows is always the function's current configuration. Empty: nothing listed,
    and what the list would allow is refused."""

    parameter: str  # template.yaml's name for it
    variable: str  # the environment variable the template sets from it

    def values(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in os.environ.get(self.variable, "").split(",") if part.strip())

    @property
    def named(self) -> str:
        """How a refusal names it: the parameter an operator sets, and the variable it becomes."""
        return f"the {self.parameter} parameter ({self.variable})"


# Run-level Glue arguments that choose the job's code, where it writes or its access controls,
# which a task may set (connectors/builtin/aws/glue.py). Names, with or without their "--".
GLUE_CODE_ARGUMENTS = DeploymentList("GlueAllowedCodeArguments", "GLUE_ALLOWED_CODE_ARGUMENTS")
# What aws_batch_job's template may override beyond resources: "command", "environment" (any variable).
BATCH_OVERRIDES = DeploymentList("BatchAllowedOverrides", "BATCH_ALLOWED_OVERRIDES")
# The database users redshift_query's template may name as db_user.
REDSHIFT_DB_USERS = DeploymentList("RedshiftDbUsers", "REDSHIFT_ALLOWED_DB_USERS")
# The runs/submit fields the databricks connector's databricksConf may set though the deployment
# keeps them: run_as, access_control_list, notifications, budget policies, tasks
# (connectors/builtin/flyteplugins/databricks_submit_fields.py).
DATABRICKS_SUBMIT_FIELDS = DeploymentList("DatabricksAllowedSubmitFields", "DATABRICKS_ALLOWED_SUBMIT_FIELDS")
# The hosts each of Flyte's own connectors may send a credential to (connectors/secrets.py).
DATABRICKS_INSTANCES = DeploymentList("DatabricksInstances", "FLYTE_DATABRICKS_ALLOWED_INSTANCES")
SNOWFLAKE_ACCOUNTS = DeploymentList("SnowflakeAccounts", "FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS")
SLURM_HOSTS = DeploymentList("SlurmHosts", "FLYTE_SLURM_ALLOWED_HOSTS")
