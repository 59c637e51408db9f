"""Lambda entry point for GetTaskLogs: stream a task's logs."""

from connectors.runtime import lambda_handler

handler = lambda_handler(["GetTaskLogs"])
