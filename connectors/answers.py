"""What GetTask answers: a connector's Resource made into a flyteidl2 Resource that can be told.

Outputs are converted before the phase is stored: a SUCCEEDED whose outputs do not fit the
declared interface, that gives some declared outputs but not all (with none, the executor reads
``<output_prefix>/outputs.pb``), or whose answer is too large to carry, becomes FAILED with a message naming
why, so the executor fails the task at once and clearly (the job has finished either way). Other
parts that cannot be carried (custom_info that is not JSON, or too large) are left out and
logged: the phase is what matters to the executor.
"""

from __future__ import annotations

import json
import logging

from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.interface_pb2 import VariableMap
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from . import literals
from .connector import Resource
from .connector_calls import redact, redact_data
from .store import TaskRecord
from .store.budget import MESSAGE_BYTES, clip
from .store.log_links import decode_links

logger = logging.getLogger(__name__)

# Lambda answers API Gateway with at most 6 MB (6,291,456 bytes) of JSON, and a binary proto
# body travels base64-encoded in it (4/3 larger): 4 MiB of proto is 5.59 MB, leaving room for
# the headers and the Connect envelope. A JSON codec answer is checked again by the transport.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# The outputs alone, leaving the rest of the answer (message, links, custom_info) its room.
MAX_OUTPUTS_BYTES = MAX_ANSWER_BYTES - 64 * 1024


def answer_resource(record: TaskRecord, resource: Resource) -> pb.Resource:
    """The connector's report as it will be stored and told: its message whole text (a lone
    surrogate replaced), without the request's secrets, cut to what the record keeps."""
    phase = int(resource.phase)
    answer = pb.Resource(phase=phase, message=_text(resource.message or ""), log_links=resource.log_links or [])
    for link in answer.log_links:  # a console link (or its icon's) may carry a token: every text it has
        link.uri, link.name, link.icon_uri = redact(link.uri), redact(link.name), redact(link.icon_uri)
    if resource.custom_info:
        try:
            data = json.loads(json.dumps(resource.custom_info, default=str))  # JSON-safe, then cut secrets
            answer.custom_info.CopyFrom(json_format.ParseDict(redact_data(data), Struct()))
        except Exception as error:  # not JSON, too deep, not a mapping
            logger.warning("task %s: custom_info left out, it cannot be carried: %s", record.name, type(error).__name__)
    if phase == TaskExecution.SUCCEEDED and resource.outputs:
        declared = VariableMap.FromString(record.outputs_interface) if record.outputs_interface else None
        outputs = resource.outputs
        if declared is not None and declared.variables:  # the flyte SDK refuses outputs it did not declare
            names = {entry.key for entry in declared.variables}
            extra = sorted(str(name) for name in outputs if name not in names)
            if extra:
                logger.warning("task %s: undeclared outputs left out of the answer: %s", record.name, ", ".join(extra))
                outputs = {name: value for name, value in outputs.items() if name in names}
        try:
            answer.outputs.CopyFrom(literals.native_to_outputs(outputs, declared))
            outputs_bytes = answer.outputs.ByteSize()
        except Exception as error:  # LiteralConversionError, or a value no literal can hold
            return _failed(answer, _text(f"the job succeeded but its outputs do not fit the task's interface: {error}"))
        if outputs_bytes > MAX_OUTPUTS_BYTES:
            return _failed(
                answer,
                f"the job succeeded but its outputs take {outputs_bytes} bytes, more than the "
                f"{MAX_OUTPUTS_BYTES} an answer through API Gateway and Lambda can carry: return "
                "large values as files (FileRef, DirRef, DataFrameRef) instead",
            )
        missing = [entry.key for entry in declared.variables if entry.key not in outputs] if declared else []
        if missing:  # some outputs but not all: no outputs.pb to fall back on, a task that cannot finish
            return _failed(
                answer,
                _text(
                    f"the job succeeded but gave no value for the declared output(s) "
                    f"{', '.join(repr(name) for name in missing)}"
                ),
            )
    if answer.ByteSize() > MAX_ANSWER_BYTES and answer.HasField("custom_info"):
        logger.warning("task %s: custom_info left out, the answer would be %d bytes", record.name, answer.ByteSize())
        answer.ClearField("custom_info")
    if answer.ByteSize() > MAX_ANSWER_BYTES:
        logger.warning("task %s: log links left out, the answer would be %d bytes", record.name, answer.ByteSize())
        del answer.log_links[:]
    return answer


def _text(text: str) -> str:
    """What a record and an answer can hold: valid UTF-8, no secrets, cut to the stored size."""
    return clip(redact(text.encode("utf-8", "replace").decode("utf-8")), MESSAGE_BYTES)


def _failed(answer: pb.Resource, message: str) -> pb.Resource:
    return pb.Resource(phase=TaskExecution.FAILED, message=message, log_links=answer.log_links[:100])


def stored_resource(record: TaskRecord, fresh: pb.Resource | None) -> pb.Resource:
    """The answer from a record (no poll may move it, or this poll did not read the job): its
    stored phase and message, with the outputs, custom_info and links of this poll's report when
    both tell the same phase, else with the links the record keeps from the last read."""
    answer = pb.Resource(phase=record.phase, message=record.message)
    if fresh is not None and fresh.phase == record.phase:
        answer.log_links.extend(fresh.log_links)
        if fresh.HasField("outputs"):
            answer.outputs.CopyFrom(fresh.outputs)
        if fresh.HasField("custom_info"):
            answer.custom_info.CopyFrom(fresh.custom_info)
    else:
        answer.log_links.extend(decode_links(record.log_links))
    return answer


__all__ = ["MAX_ANSWER_BYTES", "MAX_OUTPUTS_BYTES", "answer_resource", "stored_resource"]
