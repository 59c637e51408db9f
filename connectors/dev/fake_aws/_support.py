"""Helpers the patch modules share: wrapping a moto method, and AWS-shaped errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def wraps_method(cls: type, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace ``cls.name`` by the decorated function, which receives the method it wraps first:
    ``fn(original, self, *args, **kwargs)``. Two modules may wrap the same method (each wraps what
    is there); one patch is applied once, however often its module is imported."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        original = getattr(cls, name)
        patch_id = f"{fn.__module__}.{fn.__qualname__}"
        applied: frozenset[str] = getattr(original, "__fake_aws__", frozenset())
        if patch_id in applied:
            return original

        @functools.wraps(original)
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            return fn(original, self, *args, **kwargs)

        patched.__fake_aws__ = applied | {patch_id}  # type: ignore[attr-defined]
        setattr(cls, name, patched)
        return patched

    return decorate


def adds_method(cls: type, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``cls.name`` (a call moto has not implemented); leave moto's own if it has one now."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not hasattr(cls, name):
            setattr(cls, name, fn)
        return fn

    return decorate
