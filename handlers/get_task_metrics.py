"""Lambda entry point for GetTaskMetrics: a task's metrics."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["GetTaskMetrics"])
