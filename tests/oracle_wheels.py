"""The flyte-sdk plugin wheels the differential tests load by file (their package ``__init__``
imports what this project does not install: pyspark, pandas).

They are locked with their hashes in tools/oracle-wheels.txt, and `make install` downloads them
into .venv/wheels with ``--require-hashes``. A test run without them (pytest called directly on a
venv made otherwise) downloads them the same way, never a version or a file the lock does not name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "tools" / "oracle-wheels.txt"
WHEELS = ROOT / ".venv" / "wheels"


def locked_version(project: str) -> str:
    found = re.search(rf"^{re.escape(project)}==(\S+)", LOCK.read_text(), re.MULTILINE)
    assert found, f"{project} is not in {LOCK.relative_to(ROOT)}"
    return found.group(1)


def oracle_wheel(project: str) -> Path:
    """The locked wheel of ``project`` (``flyteplugins-databricks``...), fetched by hash if missing."""
    pattern = f"{project.replace('-', '_')}-{locked_version(project)}-*.whl"
    if not sorted(WHEELS.glob(pattern)):
        WHEELS.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
        command += ["--require-hashes", "-r", str(LOCK), "-d", str(WHEELS)]
        done = subprocess.run(
            command, env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(
                f"the locked oracle wheels could not be fetched (make install fetches them): {done.stderr[-500:]}"
            )
    (wheel,) = sorted(WHEELS.glob(pattern))
    return wheel
