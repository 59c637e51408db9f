"""Builders for real flyteidl2 requests, as the Flyte executor sends them."""

from __future__ import annotations

import uuid
from typing import Any

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from flyteidl2.task import common_pb2
from google.protobuf.struct_pb2 import Struct

INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)
STR = types_pb2.LiteralType(simple=types_pb2.STRING)


def int_literal(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value)))


def str_literal(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value)))


def execution_metadata(run: str | None = None, action: str = "a0", attempt: int = 0) -> pb.TaskExecutionMetadata:
    return pb.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=action,
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project="flytesnacks", domain="development", name=run or f"r{uuid.uuid4().hex[:12]}"
                ),
            ),
            retry_attempt=attempt,
        )
    )


def echo_request(
    *,
    x: int = 42,
    name: str = "hello",
    custom: dict[str, Any] | None = None,
    run: str | None = None,
    action: str = "a0",
    attempt: int = 0,
    task_type: str = "echo",
    secrets: dict[str, str] | None = None,
    configs: dict[str, str] | None = None,
) -> pb.CreateTaskRequest:
    """A CreateTask for the echo connector: inputs x:int and name:str, outputs of the same names."""
    variables = [
        interface_pb2.VariableEntry(key="x", value=interface_pb2.Variable(type=INT)),
        interface_pb2.VariableEntry(key="name", value=interface_pb2.Variable(type=STR)),
    ]
    struct = Struct()
    struct.update(custom or {})
    return pb.CreateTaskRequest(
        inputs=common_pb2.Inputs(
            literals=[
                common_pb2.NamedLiteral(name="x", value=int_literal(x)),
                common_pb2.NamedLiteral(name="name", value=str_literal(name)),
            ]
        ),
        template=tasks_pb2.TaskTemplate(
            type=task_type,
            interface=interface_pb2.TypedInterface(
                inputs=interface_pb2.VariableMap(variables=variables),
                outputs=interface_pb2.VariableMap(variables=variables),
            ),
            custom=struct,
        ),
        output_prefix="s3://bucket/outputs/prefix",
        task_execution_metadata=execution_metadata(run, action, attempt),
        connection={"secrets": secrets or {}, "configs": configs or {}},
    )


ECHO = pb.TaskCategory(name="echo", version=0)
