"""`connectors invoke <FunctionLogicalId> <event.json>`: what `sam local invoke` does, without Docker.

Reads the function's Handler and Environment from template.yaml (Globals merged with the
function's own), sets the environment for the call, imports the handler module in this process
and calls ``handler(event, context)`` with a minimal Lambda context.

Environment values resolve as SAM would without overrides: ``!Ref Parameter`` to the parameter's
Default, ``!Ref TasksTable`` (any DynamoDB table of the template) to ``$TASKS_TABLE`` or
``connector-tasks``, pseudo parameters to local stand-ins, ``!Sub`` by the same rules, ``!If`` by
the template's Conditions evaluated on those values. A variable
already set in the caller's environment is left alone, so ``TASKS_TABLE=... LOG_LEVEL=DEBUG
connectors invoke ...`` overrides the template, and ``AWS_ENDPOINT_URL_DYNAMODB`` points the
handler at a local DynamoDB.

``main`` prints the response as JSON; when its body is base64 (a binary proto, as API Gateway
carries it) it adds ``decodedBody``, the message decoded by the Connect procedure's response
type. It exits 0 for a status below 400, 1 otherwise, 2 when the function cannot be invoked. An
SQS batch (events/status/: a state-change event for the status-events function) is answered with
``batchItemFailures``: any there (a record the queue would deliver again) exits 1.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..connect_envelope import END_STREAM, read_all

DEFAULT_TABLE_NAME = "connector-tasks"
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"


# --- template.yaml -----------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) as data."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(template_path: str | os.PathLike[str]) -> dict[str, Any]:
    """template.yaml as plain data, short-form tags turned into their long form."""
    with open(template_path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ValueError(f"{template_path} is not a CloudFormation template (no Resources)")
    return template


class _Resolver:
    """Resolves intrinsic functions in environment values to local stand-ins."""

    def __init__(self, template: dict[str, Any], logical_id: str) -> None:
        self.parameters = template.get("Parameters") or {}
        self.conditions = template.get("Conditions") or {}
        self.resources = template["Resources"]
        self.logical_id = logical_id
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/local/local",
            "AWS::NoValue": None,
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            parameter = self.parameters[name] or {}
            if "Default" not in parameter:
                raise ValueError(f"parameter {name} has no Default: set the variable that uses it in the environment")
            default = parameter["Default"]
            return ",".join(map(str, default)) if isinstance(default, list) else default
        resource = self.resources.get(name)
        if resource is None:
            raise ValueError(f"!Ref {name}: no such parameter or resource in the template")
        if resource.get("Type") == "AWS::DynamoDB::Table":
            return os.environ.get("TASKS_TABLE") or DEFAULT_TABLE_NAME
        return name  # a local stand-in for a physical id

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                extra = {k: self.resolve(v) for k, v in extra.items()}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), extra)), text)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(self.resolve(i)) for i in self.resolve(items))
            if key == "Fn::GetAtt":
                resource, attribute = arg
                return f"{resource}.{attribute}"  # a local stand-in
            if key == "Fn::If":
                condition, if_true, if_false = arg
                return self.resolve(if_true if self.condition(condition) else if_false)
            raise ValueError(f"cannot resolve {key} locally")
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise ValueError(f"no condition {name} in the template")
        return self._holds(self.conditions[name])

    def _holds(self, value: Any) -> bool:
        ((key, arg),) = value.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self._holds(arg[0])
        if key == "Fn::And":
            return all(self._holds(item) for item in arg)
        if key == "Fn::Or":
            return any(self._holds(item) for item in arg)
        raise ValueError(f"cannot evaluate {key} locally")

    def _sub_var(self, name: str, extra: dict[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        if "." in name and name.split(".", 1)[0] in self.resources:
            return name  # ${Resource.Attribute}: a local stand-in
        return self.ref(name)


def _as_env_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def function_config(logical_id: str, template_path: str | os.PathLike[str] = "template.yaml") -> dict[str, Any]:
    """The function's handler, code directory, timeout, memory and resolved environment."""
    template = load_template(template_path)
    resource = template["Resources"].get(logical_id)
    functions = sorted(
        k
        for k, v in template["Resources"].items()
        if v.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    )
    if resource is None or resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        raise ValueError(f"{logical_id} is not a function in {template_path}; functions: {', '.join(functions)}")
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    properties = resource.get("Properties") or {}
    resolver = _Resolver(template, logical_id)

    def prop(name: str, default: Any = None) -> Any:
        return properties.get(name, globals_.get(name, default))

    handler = prop("Handler")
    if not handler or "." not in handler:
        raise ValueError(f"{logical_id} has no Handler of the form module.function")
    variables: dict[str, Any] = {}
    for source in (globals_, properties):
        variables.update(((source.get("Environment") or {}).get("Variables")) or {})
    environment = {}
    for name, value in variables.items():
        try:
            resolved = _as_env_value(resolver.resolve(value))
        except ValueError as e:
            if name in os.environ:  # the caller's value wins anyway
                continue
            raise ValueError(f"{logical_id}: environment variable {name}: {e}") from None
        if resolved is not None:
            environment[name] = resolved
    code_uri = prop("CodeUri", ".")
    code_dir = Path(template_path).resolve().parent / (code_uri if isinstance(code_uri, str) else ".")
    return {
        "handler": handler,
        "code_dir": code_dir,
        "environment": environment,
        "timeout": int(resolver.resolve(prop("Timeout", 3))),
        "memory": int(resolver.resolve(prop("MemorySize", 128))),
        "region": resolver.pseudo["AWS::Region"],
    }


# --- the invocation ------------------------------------------------------------------------------


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object that handlers use."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the variables the caller has not set; put the environment back afterwards."""
    added = [name for name in values if name not in os.environ]
    for name in added:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def invoke(logical_id: str, event_path: str, template_path: str = "template.yaml") -> dict:
    """Run the event in ``event_path`` through ``logical_id``'s handler in this process."""
    config = function_config(logical_id, template_path)
    with open(event_path, encoding="utf-8") as f:
        event = json.load(f)
    module_name, _, attribute = config["handler"].rpartition(".")
    code_dir = str(config["code_dir"])
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    lambda_env = {
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config["memory"]),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(config["timeout"]),
        "AWS_REGION": config["region"],
        "AWS_DEFAULT_REGION": config["region"],
        "_HANDLER": config["handler"],
    }
    # For people: text log lines, and no EMF documents mixed into the response printed on stdout
    # nor X-Ray subsegments without a daemon (the caller's environment may turn each on again).
    readable = {"LOG_FORMAT": "text", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
    with _environment({**lambda_env, **config["environment"], **readable}):
        # The module is imported (a cold start) inside the environment, as Lambda does.
        handler = getattr(importlib.import_module(module_name), attribute)
        context = LambdaContext(logical_id, config["memory"], config["timeout"], config["region"])
        return handler(event, context)


# --- showing the response ------------------------------------------------------------------------


def _output_type(path: str) -> Any:
    """The response message class of a Connect procedure path, e.g. /pkg.Service/Method."""
    match = re.fullmatch(r"/([\w.]+)\.(\w+)/(\w+)", path or "")
    if not match:
        return None
    package, service, method = match.groups()
    try:
        from google.protobuf import message_factory

        module = importlib.import_module(f"{package}.service_pb2")
        descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method].output_type
        return message_factory.GetMessageClass(descriptor)
    except Exception:  # decoding is a convenience only
        return None


def decode_body(response: dict, event: dict | None = None) -> Any:
    """A readable form of a binary (base64) proto body, or None when there is nothing to decode."""
    if not response.get("isBase64Encoded") or not isinstance(response.get("body"), str):
        return None
    raw = base64.b64decode(response["body"])
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    content_type = headers.get("content-type", "")
    path = (event or {}).get("rawPath") or ""
    message_class = _output_type(path)
    try:
        from google.protobuf import json_format
    except ImportError:  # pragma: no cover
        return None

    def as_dict(payload: bytes) -> Any:
        if message_class is None:
            return {"bytes": len(payload)}
        return json_format.MessageToDict(message_class.FromString(payload))

    try:
        if content_type.startswith("application/connect+proto"):
            parts = []
            for flags, payload in read_all(raw, headers.get("connect-content-encoding", "identity")):
                parts.append(json.loads(payload) if flags & END_STREAM else as_dict(payload))
            return parts
        if content_type.startswith(("application/proto", "application/grpc")):
            return as_dict(raw)
        if content_type.startswith(("application/json", "text/")):
            text = raw.decode("utf-8")
            try:
                return json.loads(text)
            except ValueError:
                return text
    except Exception as e:  # decoding is a convenience only
        return {"undecodable": f"{type(e).__name__}: {e}"}
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="connectors invoke", description="Run an event through a function's handler, as `sam local invoke` does."
    )
    parser.add_argument("function", help="the function's logical id in template.yaml, e.g. CreateTaskFunction")
    parser.add_argument("event", help="an event file: API Gateway HTTP API (payload 2.0), scheduled, or SQS")
    parser.add_argument("--template", default="template.yaml")
    args = parser.parse_args(argv)
    try:
        response = invoke(args.function, args.event, args.template)
    except (OSError, ValueError) as e:
        print(f"connectors invoke: {e}", file=sys.stderr)
        return 2
    with open(args.event, encoding="utf-8") as f:
        event = json.load(f)
    shown = dict(response) if isinstance(response, dict) else {"response": response}
    decoded = decode_body(shown, event)
    if decoded is not None:
        shown["decodedBody"] = decoded  # added for reading; not part of the Lambda response
    print(json.dumps(shown, indent=2, default=str))
    status = response.get("statusCode", 200) if isinstance(response, dict) else 200
    failed_records = response.get("batchItemFailures") if isinstance(response, dict) else None
    return 0 if isinstance(status, int) and status < 400 and not failed_records else 1


if __name__ == "__main__":
    sys.exit(main())
