"""Lambda entry point for GetTask: report a task's phase and outputs."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["GetTask"])
