"""Map the state words of remote job APIs to Flyte task phases, as the flyte SDK does."""

from __future__ import annotations

from flyteidl2.core.execution_pb2 import TaskExecution

_PHASE_BY_WORD = {
    **dict.fromkeys(["failed", "timeout", "timedout", "canceled", "cancelled", "skipped"], TaskExecution.FAILED),
    "internal_error": TaskExecution.RETRYABLE_FAILED,
    **dict.fromkeys(["done", "succeeded", "success", "completed"], TaskExecution.SUCCEEDED),
    **dict.fromkeys(["running", "terminating"], TaskExecution.RUNNING),
    "pending": TaskExecution.INITIALIZING,
}

TERMINAL_PHASES = frozenset({TaskExecution.SUCCEEDED, TaskExecution.ABORTED, TaskExecution.FAILED})
# RETRYABLE_FAILED ends the attempt too: the executor starts a new one, and this job is over.
ENDING_PHASES = TERMINAL_PHASES | {TaskExecution.RETRYABLE_FAILED}


def convert_to_flyte_phase(state: str) -> int:
    """The Flyte phase for a job-state word (case-insensitive); ValueError for an unknown word."""
    try:
        return _PHASE_BY_WORD[state.lower()]
    except KeyError:
        raise ValueError(f"Unrecognized state: {state}") from None


def is_terminal_phase(phase: int) -> bool:
    """True for SUCCEEDED, ABORTED and FAILED: the phases a task never leaves."""
    return phase in TERMINAL_PHASES


def ends_attempt(phase: int) -> bool:
    """True for a terminal phase and RETRYABLE_FAILED: the job of this attempt is over."""
    return phase in ENDING_PHASES


def phase_name(phase: int) -> str:
    return TaskExecution.Phase.Name(phase) if phase in TaskExecution.Phase.values() else str(phase)
