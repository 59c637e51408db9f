"""`connectors invoke StatusEventsFunction <event>`: a state-change event, as the status-events queue
hands it to the function (an SQS batch whose records' bodies are EventBridge events), run through
handlers/status_events.py like the other functions' events; events/status/ holds one per service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from flyteidl2.core.execution_pb2 import TaskExecution

from connectors.builtin.aws.batch import AwsBatchJobConnector
from connectors.dev.invoke import load_template
from connectors.dev.status_event_samples import SAMPLES, all_samples, eventbridge_event, sqs_event
from tests.aws_world import STR
from tests.conftest import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = ROOT / "events" / "status"
FUNCTION = "StatusEventsFunction"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml; until it has the status-events function, a copy with that function's
    handler (its queue, rules and permissions are the template's to add, not this test's)."""
    real = load_template(ROOT / "template.yaml")
    if FUNCTION in real["Resources"]:
        return ROOT / "template.yaml"
    real["Resources"][FUNCTION] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": "handlers.status_events.handler", "CodeUri": str(ROOT)},
    }
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(yaml.safe_dump(real, sort_keys=False))
    return path


def invoke(template: Path, event: Path, table: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env |= {"TASKS_TABLE": table, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "connectors.cli", "invoke", FUNCTION, str(event), "--template", str(template)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sample_files_are_current() -> None:
    """events/status/ is what connectors.dev.status_event_samples builds (python -m connectors.dev.events)."""
    for name, event in all_samples().items():
        assert json.loads((SAMPLES_DIR / f"{name}.json").read_text()) == event, name
    assert {path.stem for path in SAMPLES_DIR.glob("*.json")} == set(SAMPLES)


def test_one_sample_per_aws_connector_with_its_documented_event() -> None:
    from connectors.builtin.aws import AWS_CONNECTORS, aws_connector_class

    assert set(SAMPLES) == set(AWS_CONNECTORS)
    for name, event in all_samples().items():
        (record,) = event["Records"]
        told = json.loads(record["body"])
        assert record["eventSource"] == "aws:sqs" and told["source"].startswith("aws."), name
        assert told["detail-type"].endswith(("State Change", "Status Change")), name
        connector = aws_connector_class(name)()
        if connector.job_events is not None:  # the connector keys its tasks by what the detail carries
            assert (told["source"], told["detail-type"]) == (
                connector.job_events.source,
                connector.job_events.detail_type,
            ), name
            assert connector.job_events.key(told["detail"]), name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_sample_runs_through_the_handler(name: str, lambda_environment: str) -> None:
    from handlers import status_events

    event = json.loads((SAMPLES_DIR / f"{name}.json").read_text())
    # About a job no task of the table has: nothing to apply, nothing to deliver again.
    assert status_events.handler(event, LambdaContext()) == {"batchItemFailures": []}


def batch_running_event(job: dict[str, Any]) -> dict[str, Any]:
    running = {**job, "status": "RUNNING"}
    return sqs_event([eventbridge_event("aws.batch", "Batch Job State Change", running, [job["jobArn"]])])


def test_invoke_applies_a_state_change_to_its_task(aws_world: Any, template: Path, tmp_path: Path) -> None:
    world = aws_world(AwsBatchJobConnector())
    world.hold("batch::job")  # only the event moves the record
    try:
        handle = world.create(
            world.request(
                "aws_batch_job",
                {"job_queue": "flyte-example", "job_definition": "flyte-example"},
                inputs={"day": (STR, "monday")},
            )
        )
        job_id = world.record(handle).job_key.split("#", 1)[1]
        job = world.boto("batch").describe_jobs(jobs=[job_id])["jobs"][0]
        event = tmp_path / "running.json"
        event.write_text(json.dumps(batch_running_event(job)))

        result = invoke(template, event, world.settings.tasks_table)

        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout) == {"batchItemFailures": []}
        assert world.record(handle).phase == TaskExecution.RUNNING
    finally:
        world.release("batch::job")


def test_invoke_exits_1_when_a_record_would_be_delivered_again(template: Path, tmp_path: Path, dynamodb: Any) -> None:
    sample = SAMPLES_DIR / "aws_batch_job.json"
    result = invoke(template, sample, "no-such-table")  # the store fails: the queue would try again
    assert result.returncode == 1, result.stdout + result.stderr
    (failed,) = json.loads(result.stdout)["batchItemFailures"]
    assert failed["itemIdentifier"] == json.loads(sample.read_text())["Records"][0]["messageId"]
