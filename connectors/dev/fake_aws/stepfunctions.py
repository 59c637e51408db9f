"""Step Functions: fates applied to executions (moto runs the state machines themselves).

moto's Step Functions (``execute_state_machine``: its ASL interpreter) runs each execution to the
end its definition gives: SUCCEEDED, FAILED (a Fail state's error and cause), TIMED_OUT (the
machine's TimeoutSeconds), ABORTED (StopExecution). An execution never ends in a way its
definition does not lead to, so here:

- A fate (service ``stepfunctions``, job = the execution's ARN or name) ends it so: ``status`` one
  of the model's ExecutionStatus (``RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED |
  PENDING_REDRIVE``), ``error`` and ``reason`` as DescribeExecution's ``error`` ("The error string
  if the state machine execution failed") and ``cause`` ("The cause string if the state machine
  execution failed"). An execution still running is stopped first (its interpreter no longer
  runs), and stopDate is set; one that has ended is rewritten as if it had ended that way. An
  ``ABORTED`` fate is an execution stopped by someone else than this service (the console, a
  person's StopExecution, a parent workflow).
- EXPRESS state machines: moto keeps CreateStateMachine's ``type`` and DescribeStateMachine
  answers it ("The type of the state machine (STANDARD or EXPRESS)"), of a version ARN too, which
  is what the connector refuses an EXPRESS machine by. Nothing to patch; moto does not refuse
  DescribeExecution or StopExecution of an EXPRESS execution as AWS does ("Executions of an
  EXPRESS state machine aren't supported by DescribeExecution", "This API action is not supported
  by EXPRESS state machines"), which the connector never sends.
"""

from __future__ import annotations

import datetime
import time
import weakref
from typing import Any

from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import ExecutionStatus

from . import fate_of
from ._support import wraps_method

STOP_WAIT_SECONDS = 2.0  # how long the interpreter may take to notice it was stopped

_APPLIED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


@wraps_method(StepFunctionBackend, "describe_execution")
def _describe(original: Any, self: StepFunctionBackend, execution_arn: str) -> Any:
    execution = original(self, execution_arn)
    apply_fate(execution, execution_arn)
    return execution


def apply_fate(execution: Any, arn: str | None = None) -> None:
    """End ``execution`` as a fate set for it says, once (as DescribeExecution finds it)."""
    arn = str(arn or getattr(execution, "exec_arn", None) or getattr(execution, "execution_arn", ""))
    fate = fate_of("stepfunctions", arn) or fate_of("stepfunctions", execution.name)
    if fate and _APPLIED.get(execution) != fate:
        _APPLIED[execution] = fate
        _end(execution, fate)


def _end(execution: Any, fate: dict[str, str]) -> None:
    error, cause = fate.get("error") or None, fate.get("reason") or None
    now = datetime.datetime.now(tz=datetime.UTC)
    if fate["status"] != "RUNNING" and execution.status == "RUNNING":
        execution.stop(stop_date=now, error=error, cause=cause)
        ends = time.monotonic() + STOP_WAIT_SECONDS
        while execution.status == "RUNNING" and time.monotonic() < ends:  # its worker writes ABORTED
            time.sleep(0.01)
    if hasattr(execution, "exec_status"):  # the interpreter's execution (execute_state_machine)
        execution.exec_status = _status(fate["status"])
    else:
        execution.status = fate["status"]
    execution.error, execution.cause = error, cause
    if execution.stop_date is None and fate["status"] != "RUNNING":
        execution.stop_date = now


class _Unknown(str):
    """A status word the model does not have (a test of a status AWS may add): answered as is."""

    @property
    def value(self) -> str:
        return str(self)


def _status(word: str) -> Any:
    try:
        return ExecutionStatus(word)
    except ValueError:
        return _Unknown(word)
