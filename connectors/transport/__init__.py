"""Transports: how requests reach the service core (Connect and REST over one ASGI app)."""

from .app import ALL_OPERATIONS, create_app

__all__ = ["ALL_OPERATIONS", "create_app"]
