"""``sfn_execution``: an AWS Step Functions state machine execution."""

from __future__ import annotations

from typing import Any

from ._task import AwsTask, required

__all__ = ["StepFunctionsTask"]


class StepFunctionsTask(AwsTask):
    """Start a Step Functions execution (StartExecution; its name is derived from the token).

    The execution's input is a JSON object of the task's inputs, merged over ``input``. Each
    declared output is read from the execution's JSON output by name (a single declared output
    takes the whole output when it is not an object holding that key).

    ```python
    enrich = StepFunctionsTask(name="enrich", state_machine_arn="arn:aws:states:...:stateMachine:enrich",
                               input={"mode": "full"}, inputs={"day": str}, outputs={"rows": int})
    ```
    """

    _TASK_TYPE = "sfn_execution"
    _CONNECTOR = "connectors.builtin.aws.step_functions:SfnExecutionConnector"

    def __init__(
        self,
        name: str,
        *,
        state_machine_arn: str,
        input: dict[str, Any] | None = None,
        inputs: dict[str, type] | None = None,
        outputs: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        required(type(self).__name__, state_machine_arn=state_machine_arn)
        super().__init__(name, {"state_machine_arn": state_machine_arn, "input": input}, inputs, outputs, **kwargs)
