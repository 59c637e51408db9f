"""The one error every literal conversion raises."""

from __future__ import annotations

__all__ = ["LiteralConversionError"]


class LiteralConversionError(ValueError):
    """A value or literal that cannot cross the border between Flyte literals and Python values.

    ``where`` names the input or output (and the position inside it, e.g. ``input 'xs'[3]``),
    ``type_name`` the declared (or inferred) Flyte type, ``problem`` what was wrong. The service
    answers it with ``invalid_argument``.
    """

    def __init__(self, where: str, type_name: str, problem: str) -> None:
        self.where = where
        self.type_name = type_name
        self.problem = problem
        super().__init__(f"{where}: {problem} (type: {type_name})")
