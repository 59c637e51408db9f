"""examples/sfn_execution.json: the state machine ``flyte-example`` (STANDARD), run by the role
``flyte-sfn-example``; its output object holds the example's declared outputs ``summary``,
``rows`` and ``mode``."""

import json
from collections.abc import Callable
from typing import Any

from . import ACCOUNT, REGION, ensure_role

NAME = "flyte-example"
ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{NAME}"
DEFINITION = {
    "Comment": "Reports what it was given: the day, the rows and the mode.",
    "StartAt": "Report",
    "States": {
        "Report": {
            "Type": "Pass",
            "Parameters": {
                "summary.$": "States.Format('{} rows on {}', $.rows, $.day)",
                "rows.$": "$.rows",
                "mode.$": "$.mode",
            },
            "End": True,
        },
    },
}


def create(clients: Callable[[str], Any]) -> None:
    role = ensure_role(clients, "flyte-sfn-example", "states.amazonaws.com")
    sfn = clients("stepfunctions")
    if NAME not in [machine["name"] for machine in sfn.list_state_machines()["stateMachines"]]:
        sfn.create_state_machine(name=NAME, definition=json.dumps(DEFINITION), roleArn=role, type="STANDARD")
