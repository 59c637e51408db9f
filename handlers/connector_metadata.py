"""Lambda entry point for GetConnector and ListConnectors, and GET /healthz."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["GetConnector", "ListConnectors"], health=True)
