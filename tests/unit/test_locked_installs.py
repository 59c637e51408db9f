"""What is deployed is what was tested: the Lambda layer and the relay image are uv.lock's, by hash.

`make build-DependenciesLayer` (what `sam build` runs) installs `make -s layer-requirements`,
uv's export of uv.lock without the dev group. These tests walk uv.lock themselves, from the
project's own dependencies (and the extras a build chooses) through every package's locked
dependencies, and compare: the requirement list, then a real layer build (arm64 wheels for
CPython 3.12, from the registry through uv's cache) by the dist-info directories it holds.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "flyte-aws-connectors"
# The Lambda runtime the layer is built for: arm64 Amazon Linux 2023, CPython 3.12.
LAMBDA_ENV = {
    "python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "aarch64", "os_name": "posix", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "extra": "",
}  # fmt: skip


def lock() -> dict[str, Any]:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def runtime_closure(extras: list[str]) -> dict[str, str]:
    """name -> version of every package the runtime (plus ``extras``) needs, walking uv.lock."""
    packages = {p["name"]: p for p in lock()["package"]}
    project = packages[PROJECT]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {}).get(extra, [])
    found: dict[str, str] = {}
    while wanted:
        dep = wanted.pop()
        package = packages[dep["name"]]
        for extra in dep.get("extra", []):
            wanted += package.get("optional-dependencies", {}).get(extra, [])
        if dep["name"] in found:
            continue
        found[dep["name"]] = package["version"]
        wanted += package.get("dependencies", [])
    return found


def make(*arguments: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``make -s`` in the checkout, without what a calling make passes down (``make test
    FLYTE_CONNECTORS=all`` would otherwise reach these makes through MAKEFLAGS)."""
    env = {k: v for k, v in (env or os.environ).items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "--no-print-directory", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=timeout)  # fmt: skip


def layer_requirements(connectors: str = "") -> list[Requirement]:
    done = make("layer-requirements", f"FLYTE_CONNECTORS={connectors}")
    assert done.returncode == 0, done.stderr
    return parse_requirements(done.stdout)


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements of a hashed requirements file; every one must carry its hashes."""
    lines = [line.strip() for line in re.sub(r"\\\n\s*", " ", text).splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert all("--hash=sha256:" in line for line in lines), "every requirement has its hashes"
    return [Requirement(line.split(" --hash")[0]) for line in lines]


def pinned(requirements: list[Requirement]) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        found[canonicalize_name(requirement.name)] = spec.version
    return found


ALL = ["tracing", "databricks", "snowflake", "bigquery", "slurm"]


@pytest.mark.parametrize("connectors, extras", [
    ("", ["tracing"]),
    ("databricks slurm", ["tracing", "databricks", "slurm"]),
    ("databricks,slurm", ["tracing", "databricks", "slurm"]),
    ("all", ALL),
    ("all,slurm", ALL),
])  # fmt: skip
def test_the_layer_requirements_are_the_locks_runtime_versions(connectors: str, extras: list[str]) -> None:
    requirements = pinned(layer_requirements(connectors))
    assert requirements == runtime_closure(extras)
    assert "pytest" not in requirements and "moto" not in requirements and "flyte" not in requirements


@pytest.mark.parametrize("connectors", ["databricks,nope", "all nope", "Databricks"])
def test_an_unknown_flyte_connector_is_refused_by_name(connectors: str) -> None:
    done = make("layer-requirements", f"FLYTE_CONNECTORS={connectors}")
    assert done.returncode != 0 and connectors.split(",")[-1].split()[-1] in done.stderr


def test_a_build_target_without_artifacts_dir_writes_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARTIFACTS_DIR"}
    for target in ("build-DependenciesLayer", "build-CreateTaskFunction"):
        done = make(target, env=env)
        assert done.returncode != 0 and "ARTIFACTS_DIR is not set" in done.stderr


def test_the_built_layer_holds_exactly_the_locked_versions(tmp_path: Path) -> None:
    done = make("build-DependenciesLayer", f"ARTIFACTS_DIR={tmp_path}", "FLYTE_CONNECTORS=", timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    installed = {}
    for info in (tmp_path / "python").glob("*.dist-info"):
        name, version = info.name[: -len(".dist-info")].rsplit("-", 1)
        installed[canonicalize_name(name)] = version
    requirements = layer_requirements()
    versions = pinned(requirements)
    for_lambda = {
        name: versions[name]
        for name, r in ((canonicalize_name(r.name), r) for r in requirements)
        if r.marker is None or Marker(str(r.marker)).evaluate(LAMBDA_ENV)
    }
    assert installed == for_lambda
    assert installed["botocore"] == runtime_closure(["tracing"])["botocore"]
    # arm64 wheels: a compiled module of the layer is an aarch64 ELF, never the build machine's.
    compiled = next((tmp_path / "python").glob("pydantic_core/_pydantic_core*.so"))
    assert compiled.read_bytes()[18] == 183, f"{compiled.name} is not an aarch64 ELF (e_machine 183)"


def test_the_relay_images_requirements_are_the_locks(tmp_path: Path) -> None:
    """deploy/relay/requirements.txt (what the Dockerfile installs) is today's export of uv.lock:
    `make relay-requirements` after a lock refresh, or this fails."""
    committed = (ROOT / "deploy" / "relay" / "requirements.txt").read_text()
    fresh = tmp_path / "requirements.txt"
    done = make("relay-requirements", f"RELAY_REQUIREMENTS={fresh}")
    assert done.returncode == 0, done.stderr
    assert fresh.read_text() == committed, "deploy/relay/requirements.txt is not uv.lock's: run make relay-requirements"
    requirements = pinned(parse_requirements(committed))
    assert requirements == {**runtime_closure(["relay"]), "setuptools": build_setuptools()}


def build_setuptools() -> str:
    (spec,) = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["build"]
    return str(Requirement(spec).specifier).removeprefix("==")


def test_the_editable_builds_use_the_locked_setuptools() -> None:
    uv = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert uv["build-constraint-dependencies"] == [f"setuptools=={build_setuptools()}"]
    locked = {p["name"]: p["version"] for p in lock()["package"]}
    assert locked["setuptools"] == build_setuptools()
