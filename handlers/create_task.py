"""Lambda entry point for CreateTask: start a connector task."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["CreateTask"])
