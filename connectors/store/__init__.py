"""The DynamoDB task store: records, handles, and the lifecycle's conditional writes."""

from .budget import MAX_NOTES, check_fits
from .dynamodb import ACTIVE_INDEX, JOB_INDEX, AttemptOwner, RecordChanged, StaleTask, TaskTable, new_client
from .handle import TaskHandle, new_secret
from .lifecycle import ClaimResult, TaskStore
from .record import ACTIVE, CANCELLING, CLAIMED, ENDED, TaskExecutionKey, TaskRecord

__all__ = [
    "ACTIVE",
    "ACTIVE_INDEX",
    "CANCELLING",
    "CLAIMED",
    "ENDED",
    "JOB_INDEX",
    "MAX_NOTES",
    "AttemptOwner",
    "ClaimResult",
    "RecordChanged",
    "StaleTask",
    "TaskExecutionKey",
    "TaskHandle",
    "TaskRecord",
    "TaskStore",
    "TaskTable",
    "check_fits",
    "new_client",
    "new_secret",
]
