"""The connectors this service ships with, registered in every deployment."""

from .echo import EchoConnector

BUILTIN_CONNECTORS = [EchoConnector]

__all__ = ["BUILTIN_CONNECTORS", "EchoConnector"]
