"""The relay: a gRPC server for a stock Flyte executor that forwards each call, SigV4-signed, to the API.

A Flyte executor dials plain gRPC and signs nothing; API Gateway carries HTTPS only and this stack
requires SigV4 on every route. The relay runs next to the executor, serves
``flyteidl2.connector.AsyncConnectorService`` and ``ConnectorMetadataService`` over gRPC, and
sends each call to the API as a signed Connect request (binary proto), passing the call's
deadline on and answering the API's errors as gRPC status codes. It keeps no state. It signs
only for an https endpoint; an http one (a local ``make serve``) needs ``--unsigned``. It sends
again a call that failed in passing (an API blip), within the call's deadline; serves the
standard gRPC health service for probes; and Prometheus metrics on ``--metrics-listen``.

    connectors relay --listen 0.0.0.0:8000 --metrics-listen 0.0.0.0:9090 \
        --endpoint https://<api-id>.execute-api.<region>.amazonaws.com
"""

from .errors import RelayError, error_from_response, grpc_code_for_connect, grpc_code_for_http_status
from .forward import Forwarder
from .main import main
from .metrics import RelayMetrics
from .retry import RetryPolicy, retry_reason
from .server import AsyncConnectorRelay, ConnectorMetadataRelay, create_server, serve
from .signing import Signer, resolve_region

__all__ = [
    "AsyncConnectorRelay",
    "ConnectorMetadataRelay",
    "Forwarder",
    "RelayError",
    "RelayMetrics",
    "RetryPolicy",
    "Signer",
    "create_server",
    "error_from_response",
    "grpc_code_for_connect",
    "grpc_code_for_http_status",
    "main",
    "resolve_region",
    "retry_reason",
    "serve",
]
