"""Review of issue 16 item 5: ``required_secrets`` answered ``unauthenticated`` before any call.

SecretResolver.complete now raises before the service looks at what it is asked to do. Three
places where that is wrong, through the served app (moto over HTTP, the Snowflake fake):

1. The reaper cannot end a record whose create was *refused* when the credential came with the
   request (the executor's) and is not in AWS: the canceller fails before its replay, so the
   record is never ended and is retried for ever (an error log and a failed reaper pass each time).
2. GetTask of a task that already ended (FAILED / ABORTED: nothing to call) answers
   ``unauthenticated`` once the secret is gone, instead of the stored phase.
3. A request whose connection carries an empty string for the credential is refused, although
   Secrets Manager holds it: the empty value stops the look-up and then counts as absent.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution
from snowflake.connector import errors

from connectors.builtin.flyteplugins import snowflake as port
from connectors.builtin.flyteplugins import snowflake_connections
from connectors.errors import Code
from connectors.store import ENDED
from tests.fake_snowflake import FakeSnowflake
from tests.functional.flyteplugins.test_snowflake import CUSTOM, TYPE, request, rsa_pem


@pytest.fixture
def fake(monkeypatch) -> Any:
    fake = FakeSnowflake()
    monkeypatch.setattr(snowflake_connections, "snowflake_connect", fake.connect)
    monkeypatch.setenv("FLYTE_SNOWFLAKE_ALLOWED_ACCOUNTS", CUSTOM["account"])  # the deployment lists the account
    snowflake_connections._connections.clear()
    yield fake
    snowflake_connections._connections.clear()


@pytest.fixture
def prefix(monkeypatch) -> str:
    made = f"flyte-review16-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SECRETS_PREFIX", made)
    return made


def test_reaper_ends_a_refused_create_whose_key_came_with_the_request(aws_world, fake, prefix):
    """Finding 1. The executor sends the key (connection.secrets); nothing is stored in AWS. The
    remote refuses the query (a SQL error: invalid_argument), so the claim is released with
    create_error=invalid_argument and no job. The reaper must be able to end it: a refused replay
    proves there is no job. With required_secrets the canceller raises unauthenticated before
    it replays anything, and the record stays (retried every back-off, for ever)."""
    world = aws_world(port.SnowflakeConnector())
    run = f"refused-{uuid.uuid4().hex[:6]}"
    fake.submit_error = errors.ProgrammingError(
        msg="SQL compilation error: syntax error line 1", errno=1003, sqlstate="42000", send_telemetry=False
    )
    made = request(run=run, secrets={"snowflake_private_key": rsa_pem()})
    assert world.error(world.create, made).code == Code.INVALID_ARGUMENT
    record = world.records(run)[0]
    assert record.resource_meta is None and record.create_error == "invalid_argument"

    # What the real driver answers a connect without a key ("251006: Password is empty"):
    fake.connect_error = errors.ProgrammingError(msg="Password is empty", errno=251006, send_telemetry=False)
    fake.submit_error = errors.ProgrammingError(
        msg="SQL compilation error: syntax error line 1", errno=1003, sqlstate="42000", send_telemetry=False
    )
    report = world.reap(now=time.time() + 3 * 3600)
    after = world.records(run)[0]
    assert after.state == ENDED, (
        f"the refused create's record is not ended by the reaper: failed={report.failed} "
        f"message={after.message!r} notes={after.notes}"
    )


def test_a_task_that_already_failed_is_answered_from_its_record_without_the_key(aws_world, fake, prefix):
    """Finding 2. The query failed and GetTask recorded FAILED. The key is then removed (moved to
    SSM under another name, a rotation by delete and re-create, SECRETS_PREFIX changed in a
    deploy). A GetTask of the ended task needs no connector call; it now answers unauthenticated."""
    world = aws_world(port.SnowflakeConnector())
    sm = world.boto("secretsmanager")
    name = f"{prefix}/{TYPE}/snowflake_private_key"
    sm.create_secret(Name=name, SecretString=rsa_pem())
    fake.fail_with = "Numeric value 'abc' is not recognized"
    handle = world.create(request())
    assert world.wait(handle, TYPE).phase == TaskExecution.FAILED
    assert world.record(handle).state == ENDED

    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    world.service.secrets.reset()  # the cache's max age has passed, or a new sandbox
    resource = world.poll(handle, TYPE)  # raises ConnectError unauthenticated today
    assert resource.phase == TaskExecution.FAILED


def test_an_empty_key_in_the_request_is_completed_from_secrets_manager(aws_world, fake, prefix):
    """Finding 3 (weak). An executor (or a relay) that sends the secret's name with an empty
    value: the look-up is skipped (the name is present) and the check then finds it absent."""
    world = aws_world(port.SnowflakeConnector())
    world.boto("secretsmanager").create_secret(Name=f"{prefix}/{TYPE}/snowflake_private_key", SecretString=rsa_pem())
    handle = world.create(request(secrets={"snowflake_private_key": ""}))
    assert handle
