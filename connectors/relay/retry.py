"""When the relay sends a failed call again, and how long it waits first.

A Flyte executor fails a task for good after more than five GetTask errors in the task's whole
life (its counter is never reset), so one blip of the API must not reach it. Every call the
relay forwards is idempotent (the service de-duplicates CreateTask by its task execution id;
the rest read, or delete what may already be gone), so a failure that says "try again" is tried
again here, with full-jitter exponential backoff, at most ``max_attempts`` times in all, and
only while the call's own deadline leaves room for another attempt.

What says "try again" (:func:`retry_reason`):

- a Connect ``unavailable`` from the service (its store or a connector's remote was unreachable);
- HTTP 429 without a Connect code (API Gateway or Lambda throttling);
- a 5xx without a Connect code (API Gateway's 500/502/503/504: the function crashed, timed out,
  or could not be invoked);
- no answer at all (a refused or reset connection, a failed credential refresh): decided where
  the request is sent.

Never retried: any other Connect code (``resource_exhausted`` from the service is a limit it
set on purpose; ``deadline_exceeded`` has used the time up), and a 4xx with a Connect code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["DEFAULT_MAX_ATTEMPTS", "RetryPolicy", "retry_reason"]

DEFAULT_MAX_ATTEMPTS = 4


def retry_reason(status: int, connect_code: str | None) -> str | None:
    """Why an answer with HTTP ``status`` and Connect error code ``connect_code`` (None: the body
    had none) is worth sending again, as a metric label; None when it is not."""
    if connect_code is not None:
        return "unavailable" if connect_code.strip().lower() == "unavailable" else None
    if status == 429:
        return "throttled"
    if 500 <= status <= 599:
        return f"http_{status}"
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` sends of one call (1: no retries). Before attempt n+1 the relay
    waits a uniformly random time in [0, min(max_delay, base_delay * 2**(n-1))] ("full jitter":
    relays that failed together do not come back together), and only if at least ``margin``
    seconds of the call's deadline remain after that wait."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = 0.1
    max_delay: float = 2.0
    margin: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (1: no retries), not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.margin < 0:
            raise ValueError("retry delays and margin must not be negative")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 30))
        return self.rng.uniform(0, ceiling)

    def next_delay(self, attempt: int, remaining: float) -> tuple[float | None, str]:
        """After failed attempt ``attempt`` with ``remaining`` seconds to the call's deadline: the
        seconds to wait before the next attempt, or None and why not ("attempts" or "deadline")."""
        if attempt >= self.max_attempts:
            return None, "attempts"
        delay = self.backoff(attempt)
        if remaining - delay < self.margin:
            return None, "deadline"
        return delay, ""
