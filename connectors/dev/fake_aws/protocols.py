"""Route every path of a service whose botocore speaks a REST protocol that moto's server does not.

AWS moves services from JSON 1.1 (one ``POST /`` with an ``X-Amz-Target`` header) to rest-json
(``POST /query-executions``, ``GET /query-executions/{id}``...), and the SDK follows: botocore
1.44.18 moved Athena. moto's server routes a service's requests by the ``url_paths`` of its
``urls`` module, which for a JSON 1.1 service is only ``/``: every rest-json call answered 404,
whatever the model said. Past that routing, moto finds the operation and parses its parameters
with botocore's own model (its service router and protocol parsers), so a route from every path
to the service's dispatcher is all it lacks.

:data:`SERVICES` names the services the connectors and the examples' resources call (botocore's
name: moto's module). For each whose locked botocore model is a REST protocol and whose moto
routes only ``/``, every path is routed to the same dispatcher. A service moto already routes
(Batch, EMR Serverless, S3) is left as it is. ``tests/functional/aws/test_fake_aws_protocols.py``
sends every operation the connectors and the examples call with the locked botocore's clients,
so the next move is caught the day the lock is refreshed.
"""

from __future__ import annotations

import importlib
from typing import Any

import botocore.session

SERVICES = {
    "athena": "athena",
    "batch": "batch",
    "emr-serverless": "emrserverless",
    "glue": "glue",
    "iam": "iam",
    "logs": "logs",
    "redshift-data": "redshiftdata",
    "s3": "s3",
    "sagemaker": "sagemaker",
    "secretsmanager": "secretsmanager",
    "ssm": "ssm",
    "stepfunctions": "stepfunctions",
    "sts": "sts",
}
REST_PROTOCOLS = ("rest-json", "rest-xml")
EVERY_PATH = "{0}/(?P<fake_aws_rest_path>.+)$"
ROOT_PATHS = ("{0}/$", "{0}/")


def rest_protocol_services() -> dict[str, str]:
    """The services of :data:`SERVICES` that the installed botocore calls over a REST protocol."""
    session = botocore.session.get_session()
    return {
        name: module for name, module in SERVICES.items() if session.get_service_model(name).protocol in REST_PROTOCOLS
    }


def route_every_path() -> dict[str, str]:
    """Add the every-path route where moto routes only ``/``. Each REST service -> who routes its
    paths: ``"moto"`` (its own url_paths) or ``"fake_aws"`` (the route added here)."""
    routed = {}
    for name, module in rest_protocol_services().items():
        urls: Any = importlib.import_module(f"moto.{module}.urls")
        paths: dict[str, Any] = urls.url_paths
        if EVERY_PATH in paths:
            routed[name] = "fake_aws"
        elif paths and set(paths) <= set(ROOT_PATHS):
            paths[EVERY_PATH] = next(iter(paths.values()))
            routed[name] = "fake_aws"
        elif paths:
            routed[name] = "moto"
    return routed


ROUTED = route_every_path()
