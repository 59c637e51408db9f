"""Lambda entry point for DeleteTask: cancel a task."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["DeleteTask"])
