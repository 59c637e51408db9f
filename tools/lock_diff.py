"""Print which packages moved between two uv.lock files: ``python tools/lock_diff.py OLD NEW``.

`make test-latest` prints this before it runs the suite against the newest releases, so a failure
can be read against what changed.
"""

from __future__ import annotations

import sys
import tomllib


def versions(path: str) -> dict[str, str]:
    with open(path, "rb") as lock:
        packages = tomllib.load(lock).get("package", [])
    found: dict[str, set[str]] = {}
    for package in packages:
        found.setdefault(package["name"], set()).add(str(package.get("version", "(source)")))
    return {name: ", ".join(sorted(vs)) for name, vs in found.items()}


def main(old_path: str, new_path: str) -> int:
    old, new = versions(old_path), versions(new_path)
    moved = [
        (name, old.get(name, "-"), new.get(name, "-"))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]
    print(f"{new_path}: {len(moved)} of {len(new)} packages moved from {old_path}")
    for name, before, after in moved:
        print(f"  {name:40} {before:>16} -> {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
