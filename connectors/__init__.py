"""A serverless Flyte v2 connector service: the connector framework and the service behind it.

Connector authors need only this package's top level, the same names as ``flyte.connectors``::

    from connectors import AsyncConnector, ConnectorRegistry, Resource, ResourceMeta
"""

from .connector import AsyncConnector, Resource, ResourceMeta
from .phase import convert_to_flyte_phase, is_terminal_phase
from .registry import ConnectorNotFound, ConnectorRegistry

__all__ = [
    "AsyncConnector",
    "ConnectorNotFound",
    "ConnectorRegistry",
    "Resource",
    "ResourceMeta",
    "convert_to_flyte_phase",
    "is_terminal_phase",
]
