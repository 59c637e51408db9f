"""examples/sfn_execution.json: the state machine ``flyte-example`` (STANDARD), run by the role
``flyte-sfn-example``; its output object holds the example's declared outputs ``summary``,
``rows`` and ``mode``. Not tagged: a deployment names it (StateMachineArns), or sfn_execution
stays off.

Two more, for showing how an execution can end (docs/aws-connectors.md, "Ending a job the ways
AWS documents"): ``flyte-example-wait`` (STANDARD) waits an hour, so it runs until something
stops it; ``flyte-example-express`` is an EXPRESS state machine, which the connector refuses."""

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


WAITS = {"Comment": "Runs an hour: until something stops it.", "StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}  # fmt: skip
MACHINES = {  # name -> (type, definition)
    NAME: ("STANDARD", DEFINITION),
    f"{NAME}-wait": ("STANDARD", WAITS),
    f"{NAME}-express": ("EXPRESS", DEFINITION),
}


def create(clients: Callable[[str], Any]) -> None:
    role = ensure_role(clients, "flyte-sfn-example", "states.amazonaws.com")
    sfn = clients("stepfunctions")
    made = {machine["name"] for machine in sfn.list_state_machines()["stateMachines"]}
    for name, (kind, definition) in MACHINES.items():
        if name not in made:
            sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role, type=kind)
