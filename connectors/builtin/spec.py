"""How a built-in connector is registered before its module is imported."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConnectorSpec:
    """Where a built-in connector's class is, and what the registry tells before importing it (a
    unit test checks name and settle time against the class)."""

    path: str  # "module:Class" in the package of its table
    name: str  # the class's ``name``, as ListConnectors shows it
    replay_settle_seconds: float = 0.0  # the class's own
    # Modules its dependencies provide: a build that leaves them out (an optional connector not
    # chosen) does not serve it.
    requires: tuple[str, ...] = ()

    def load_class(self, package: str) -> type[Any]:
        module, _, name = self.path.partition(":")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def available(self) -> bool:
        """Whether this build holds the connector's dependencies (found without importing them)."""
        for module in self.requires:
            try:
                if importlib.util.find_spec(module) is None:
                    return False
            except (ImportError, ValueError):  # a parent package missing
                return False
        return True


__all__ = ["ConnectorSpec"]
