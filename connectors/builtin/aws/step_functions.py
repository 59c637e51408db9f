"""``sfn_execution``: an AWS Step Functions execution; its JSON output gives the task's outputs.

| | |
|---|---|
| create | StartExecution of ``state_machine_arn``, name = ``<run>-<action>-<token>`` (80 characters at most), input = the JSON object of ``input`` with the task's inputs over it; ExecutionAlreadyExists (the name is this attempt's: a retried create) adopts that execution, whose ARN is the state machine's with ``:execution:`` for ``:stateMachine:`` and ``:<name>`` added |
| get | DescribeExecution: RUNNING -> RUNNING, PENDING_REDRIVE -> QUEUED, SUCCEEDED, FAILED and TIMED_OUT -> FAILED (message: error and cause), ABORTED -> ABORTED |
| delete | StopExecution (an execution that has ended stays as it ended) |
| outputs | each declared output is the key of that name of the execution's JSON output object (a missing key leaves the output out); with exactly one output declared and an output that is not an object holding it, the whole output |
| custom_info | execution ARN, name, status, start and stop dates, redrive count |
| events | "Step Functions Execution Status Change" (aws.states), keyed by ``executionArn`` (STANDARD workflows send them: the only kind it starts) |
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from flyteidl2.core.execution_pb2 import TaskExecution

from ...connector import Resource, ResourceMeta
from ...errors import Code, ConnectError, invalid_argument
from ...job_events import JobEvents, detail_field, detail_status
from .base import (
    AwsConnector,
    IamActions,
    PhaseTable,
    console_url,
    error_code,
    inputs_json,
    json_data,
    log_link,
    output_names,
    stem_of,
    token_name,
)

PHASES = PhaseTable(
    "stepfunctions",
    {
        "PENDING_REDRIVE": TaskExecution.QUEUED,  # redriven, about to run again
        "RUNNING": TaskExecution.RUNNING,
        "SUCCEEDED": TaskExecution.SUCCEEDED,
        "FAILED": TaskExecution.FAILED,
        "TIMED_OUT": TaskExecution.FAILED,
        "ABORTED": TaskExecution.ABORTED,
    },
)
# arn:<partition>:states:<region>:<account>:stateMachine:<name>[:<version or alias>]
_MACHINE = re.compile(r"(arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}):stateMachine:([^:\s]+)(:[^:\s]+)?")


@dataclass
class SfnExecutionMeta(ResourceMeta):
    execution_arn: str
    outputs: list[str] = field(default_factory=list)  # the declared outputs, in order


class SfnExecutionConnector(AwsConnector[SfnExecutionMeta]):
    name = "AWS Step Functions Connector"
    task_type_name = "sfn_execution"
    task_type_version = 0
    metadata_type = SfnExecutionMeta
    service = "stepfunctions"
    job_events = JobEvents("aws.states", "Step Functions Execution Status Change", detail_field("executionArn"))
    iam_actions: ClassVar[IamActions] = {
        "create": ("states:DescribeStateMachine", "states:StartExecution", "states:DescribeExecution"),
        "get": ("states:DescribeExecution",),
        "delete": ("states:StopExecution", "states:DescribeExecution"),
    }
    # An execution's name is refused for 90 days after the execution closes (STANDARD machines;
    # EXPRESS ones are refused): counted from the first create, 90 days is within that.
    replay_window = timedelta(days=90)

    def replay_hint(self, task_template, idempotency_token, task_execution_metadata) -> str:
        machine = self.fields(task_template).required("state_machine_arn")
        name = _execution_name(idempotency_token, task_execution_metadata)
        return f"the execution {name} of state machine {machine}"

    async def create(
        self,
        task_template,
        output_prefix,
        inputs=None,
        task_execution_metadata=None,
        idempotency_token: str = "",
        **kwargs: Any,
    ) -> SfnExecutionMeta:
        fields = self.fields(task_template)
        machine = fields.required("state_machine_arn")
        found = _MACHINE.fullmatch(machine)
        if not found:
            raise invalid_argument(
                f"sfn_execution: template.custom.state_machine_arn must be a state machine ARN "
                f"(arn:aws:states:<region>:<account>:stateMachine:<name>), got {machine!r}"
            )
        document = {**fields.optional("input", dict, {}), **inputs_json(inputs)}
        for key, value in document.items():
            try:
                json.dumps(value, allow_nan=False)
            except ValueError:
                where = f"input {key!r}" if key in (inputs or {}) else f"template.custom.input.{key}"
                raise invalid_argument(
                    f"sfn_execution: {where} holds a NaN or infinite number, which JSON cannot carry"
                ) from None
        described = await self.aws("describe_state_machine", stateMachineArn=machine)
        if described.get("type") == "EXPRESS":
            # The model: StartExecution "isn't idempotent for EXPRESS workflows", and neither
            # DescribeExecution nor StopExecution supports them: it could start twice, never be
            # polled, never be stopped. Refused before anything starts.
            raise invalid_argument(
                f"sfn_execution: {machine} is an EXPRESS state machine: Step Functions cannot start one "
                f"exactly once, report its status or stop it (StartExecution is not idempotent for it, "
                f"DescribeExecution and StopExecution do not support it); use a STANDARD state machine"
            )
        name = _execution_name(idempotency_token, task_execution_metadata)
        declared = output_names(task_template)
        try:
            started = await self.aws(
                "start_execution",
                stateMachineArn=machine,
                name=name,
                input=json.dumps(document, separators=(",", ":"), allow_nan=False),
            )
        except ConnectError as error:
            if error_code(error) != "ExecutionAlreadyExists":
                raise
            # The name is this attempt's alone: a create retried after a crash finds the
            # execution its first try started (AWS answers this once that one has closed).
            arn = f"{found.group(1)}:execution:{found.group(2)}:{name}"
            await self.aws("describe_execution", executionArn=arn)
            return SfnExecutionMeta(execution_arn=arn, outputs=declared)
        return SfnExecutionMeta(execution_arn=started["executionArn"], outputs=declared)

    async def get(self, resource_meta: SfnExecutionMeta, **kwargs: Any) -> Resource:
        return self.execution_resource(
            await self.aws("describe_execution", executionArn=resource_meta.execution_arn), resource_meta
        )

    def job_key(self, resource_meta: SfnExecutionMeta) -> str:
        return resource_meta.execution_arn

    def resource_from_event(self, detail: Mapping[str, Any], resource_meta: SfnExecutionMeta) -> Resource | None:
        """The detail, as the Step Functions developer guide documents it ("Automating Step
        Functions event delivery with EventBridge"): executionArn, stateMachineArn, name, status,
        startDate, stopDate (epoch milliseconds), input, inputDetails, output, outputDetails,
        error, cause (and the redrive fields): DescribeExecution's names and values, so it is
        mapped as ``get`` maps the execution. None only for a status word it does not know."""
        if detail_status(detail, "status", PHASES.phases) is None:
            return None
        return self.execution_resource(detail, resource_meta)

    def execution_resource(self, found: Mapping[str, Any], resource_meta: SfnExecutionMeta) -> Resource:
        """The task's report from an execution as DescribeExecution (or its event) describes it."""
        status = found.get("status", "")
        phase = PHASES.phase(status)
        reason = ": ".join(part for part in (found.get("error"), found.get("cause")) if part)
        message = reason or f"Step Functions execution {status.lower().replace('_', ' ')}"
        outputs = None
        if phase == TaskExecution.SUCCEEDED and resource_meta.outputs:
            outputs = _outputs(found.get("output"), resource_meta.outputs)
        info = {
            "execution_arn": resource_meta.execution_arn,
            "name": found.get("name"),
            "status": status,
            "start_date": json_data(found.get("startDate")),
            "stop_date": json_data(found.get("stopDate")),
            "redrive_count": found.get("redriveCount", 0),
        }
        link = console_url(f"states/home?region={{region}}#/v2/executions/details/{resource_meta.execution_arn}")
        return Resource(
            phase=phase,
            message=message,
            outputs=outputs,
            custom_info=info,
            log_links=[log_link("Step Functions execution", link)],
        )

    async def delete(self, resource_meta: SfnExecutionMeta, **kwargs: Any) -> None:
        try:
            await self.aws("stop_execution", executionArn=resource_meta.execution_arn)
        except ConnectError as error:
            if error.code == Code.NOT_FOUND:  # an execution AWS no longer knows: nothing to stop
                return
            # A stop of an execution that has ended is no failure: it stays as it ended.
            found = await self.aws("describe_execution", executionArn=resource_meta.execution_arn)
            if found.get("status") not in PHASES.terminal:
                raise


def _outputs(text: str | None, declared: list[str]) -> dict[str, Any]:
    """The declared outputs found in the execution's JSON output."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # not JSON: only a single declared output can take it, whole
    if isinstance(value, dict) and any(name in value for name in declared):
        return {name: value[name] for name in declared if name in value}
    return {declared[0]: value} if len(declared) == 1 else {}


def _execution_name(token: str, task_execution_metadata: Any) -> str:
    """The attempt's execution name: ``<run>-<action>-<token>``, cut to Step Functions' 80."""
    return token_name(token, 80, stem=stem_of(task_execution_metadata), allowed="A-Za-z0-9_-")
