"""The DynamoDB task store: records, handles, and the conditional writes that keep them whole."""

from .dynamodb import ACTIVE_INDEX, ClaimResult, RecordChanged, TaskStore, new_client
from .handle import TaskHandle, new_secret
from .record import CREATED, CREATING, TaskExecutionKey, TaskRecord

__all__ = [
    "ACTIVE_INDEX",
    "CREATED",
    "CREATING",
    "ClaimResult",
    "RecordChanged",
    "TaskExecutionKey",
    "TaskHandle",
    "TaskRecord",
    "TaskStore",
    "new_client",
    "new_secret",
]
