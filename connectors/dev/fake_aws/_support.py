"""Helpers the patch modules share: wrapping a moto method, and AWS-shaped errors."""

from __future__ import annotations

import functools
from typing import Any, Callable


def wraps_method(cls: type, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace ``cls.name`` by the decorated function, which receives the original first:
    ``fn(original, self, *args, **kwargs)``. Applied once, however often the module is imported."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        original = getattr(cls, name)
        if getattr(original, "__fake_aws__", False):
            return original

        @functools.wraps(original)
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            return fn(original, self, *args, **kwargs)

        patched.__fake_aws__ = True  # type: ignore[attr-defined]
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
