"""Type fidelity end to end: SDK-made inputs through the running service to the echo connector.

Every case of the matrix (``tests/literal_cases.py``) becomes one input of a single CreateTask
for the echo connector, over the Connect API of the served app, in both the binary and the
JSON codec. The echo connector keeps the native values in its JSON ResourceMeta
(in DynamoDB) and returns them as outputs; the flyte SDK reads each output back and it must
equal the value the SDK sent.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from connectrpc.codec import proto_json_codec
from connectrpc.errors import ConnectError
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync
from flyteidl2.core import interface_pb2, tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.task import common_pb2

from connectors.errors import Code
from tests.flyte_requests import ECHO, execution_metadata
from tests.literal_cases import ROUND_TRIPS, assert_same, sdk_literal, sdk_value

CODECS = {"proto": None, "json": proto_json_codec()}
CASES = {param.id: param.values for param in ROUND_TRIPS}


def echo_task(inputs: dict[str, tuple[Any, Any]]) -> pb.CreateTaskRequest:
    """A CreateTask whose inputs and outputs are ``name: python_type``, with SDK-made literals."""
    literals, variables = [], []
    for name, (value, python_type) in inputs.items():
        literal, literal_type = sdk_literal(value, python_type)
        literals.append(common_pb2.NamedLiteral(name=name, value=literal))
        variables.append(interface_pb2.VariableEntry(key=name, value=interface_pb2.Variable(type=literal_type)))
    variable_map = interface_pb2.VariableMap(variables=variables)
    return pb.CreateTaskRequest(
        inputs=common_pb2.Inputs(literals=literals),
        template=tasks_pb2.TaskTemplate(
            type="echo", interface=interface_pb2.TypedInterface(inputs=variable_map, outputs=variable_map)
        ),
        output_prefix="s3://bucket/outputs/fidelity",
        task_execution_metadata=execution_metadata(),
    )


def run_to_success(client: AsyncConnectorServiceClientSync, request: pb.CreateTaskRequest) -> pb.Resource:
    handle = client.create_task(request).resource_meta
    deadline = time.monotonic() + 10
    while True:
        resource = client.get_task(pb.GetTaskRequest(resource_meta=handle, task_category=ECHO)).resource
        if resource.phase == TaskExecution.SUCCEEDED or time.monotonic() > deadline:
            assert resource.phase == TaskExecution.SUCCEEDED, resource.message
            return resource
        time.sleep(0.05)


@pytest.fixture(scope="module", params=sorted(CODECS))
def echoed(request, served) -> dict[str, Any]:
    """The outputs of one echo task carrying every case, as the SDK reads them, by case id."""
    client = AsyncConnectorServiceClientSync(served.url, codec=CODECS[request.param])
    names = {case_id: f"v{index:02d}" for index, case_id in enumerate(CASES)}
    resource = run_to_success(client, echo_task({names[case_id]: CASES[case_id] for case_id in CASES}))
    outputs = {named.name: named.value for named in resource.outputs.literals}
    assert [named.name for named in resource.outputs.literals] == sorted(names.values())
    return {case_id: sdk_value(outputs[names[case_id]], CASES[case_id][1]) for case_id in CASES}


@pytest.mark.parametrize("case_id", list(CASES))
def test_an_sdk_value_comes_back_equal_through_the_service(echoed, case_id):
    value, _ = CASES[case_id]
    assert_same(echoed[case_id], value)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_an_input_that_does_not_match_its_type_is_invalid_argument(served, codec):
    client = AsyncConnectorServiceClientSync(served.url, codec=CODECS[codec])
    request = echo_task({"count": (5, int)})
    _, str_type = sdk_literal("5", str)
    request.template.interface.inputs.variables[0].value.type.CopyFrom(str_type)
    with pytest.raises(ConnectError) as caught:
        client.create_task(request)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "input 'count'" in caught.value.message and "str" in caught.value.message


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_a_pickled_input_is_invalid_argument(served, codec):
    client = AsyncConnectorServiceClientSync(served.url, codec=CODECS[codec])
    with pytest.raises(ConnectError) as caught:
        client.create_task(echo_task({"raw": (b"pickled by flyte", bytes)}))
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "input 'raw'" in caught.value.message and "pickle" in caught.value.message
