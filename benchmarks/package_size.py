"""Package size: each function's code and the dependencies layer as `make sam-build` builds them,
unzipped and zipped, beside Lambda's limits and the part the AWS connectors add.

    make sam-build && .venv/bin/python benchmarks/package_size.py
    .venv/bin/python benchmarks/package_size.py --per-connector   # what each of flyte's connectors adds

``--per-connector`` builds the layer as `sam build` does (`make build-DependenciesLayer`, from
uv.lock, arm64 CPython 3.12) alone and then with each optional connector's extra
(FLYTE_CONNECTORS), and prints what each extra adds to the layer.

Lambda allows 250 MB unzipped for a function and its layers together, and 50 MB zipped for a
direct upload (SAM uploads through S3, where the zipped limit does not apply). The baseline in
the same run is the same function code less connectors/builtin/aws/.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_UNZIPPED = 250 * 1024 * 1024


def measure(root: Path, skip: str | None = None) -> tuple[int, int]:
    """(unzipped bytes, zipped bytes) of the files under ``root``, less those under ``skip``."""
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or (skip and relative.startswith(skip)):
                continue
            unzipped += path.stat().st_size
            archive.write(path, relative)
    return unzipped, len(buffer.getvalue())


def install(connectors: str, target: Path) -> int:
    """Unzipped bytes (less the build's .pyc) of the layer `make build-DependenciesLayer` builds
    from uv.lock with ``FLYTE_CONNECTORS=connectors``: what `sam build` deploys."""
    import os
    import subprocess

    target.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    subprocess.run(
        ["make", "-s", "--no-print-directory", "build-DependenciesLayer", f"ARTIFACTS_DIR={target}",
         f"FLYTE_CONNECTORS={connectors}"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    return sum(path.stat().st_size for path in target.rglob("*") if path.is_file() and path.suffix != ".pyc")


def per_connector() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = install("", Path(tmp) / "base")
        print(f"{'layer (less .pyc)':<34}{'unzipped MB':>12}{'adds MB':>9}")
        print(f"{'runtime dependencies (baseline)':<34}{mb(base):>12}{'':>9}")
        for extra in ("databricks", "snowflake", "bigquery", "slurm"):
            size = install(extra, Path(tmp) / extra)
            print(f"{'+ ' + extra:<34}{mb(size):>12}{mb(size - base):>9}")
        size = install("all", Path(tmp) / "all")
        print(f"{'+ all four':<34}{mb(size):>12}{mb(size - base):>9}")


def mb(size: int) -> str:
    return f"{size / 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--per-connector", action="store_true", help="what each optional connector adds")
    args = parser.parse_args()
    if args.per_connector:
        per_connector()
        return
    if not (args.build_dir / "DependenciesLayer").is_dir():
        raise SystemExit(f"no build in {args.build_dir}: run `make sam-build` first")
    layer = measure(args.build_dir / "DependenciesLayer")
    print(f"{'part':<34}{'unzipped MB':>12}{'zipped MB':>11}")
    print(f"{'DependenciesLayer':<34}{mb(layer[0]):>12}{mb(layer[1]):>11}")
    largest = 0
    for function in sorted(p for p in args.build_dir.iterdir() if p.is_dir() and p.name.endswith("Function")):
        size = measure(function)
        largest = max(largest, size[0])
        print(f"{function.name:<34}{mb(size[0]):>12}{mb(size[1]):>11}")
    create = args.build_dir / "CreateTaskFunction"
    without = measure(create, skip="connectors/builtin/aws/")
    with_aws = measure(create)
    print(f"{'baseline: CreateTask less AWS':<34}{mb(without[0]):>12}{mb(without[1]):>11}")
    print(
        f"the AWS connectors add {mb(with_aws[0] - without[0])} MB unzipped, "
        f"{mb(with_aws[1] - without[1])} MB zipped to each function"
    )
    total = layer[0] + largest
    print(
        f"largest function + layer: {mb(total)} MB of Lambda's 250 MiB ({mb(LIMIT_UNZIPPED)} MB) unzipped "
        f"({100 * total / LIMIT_UNZIPPED:.0f}%)"
    )


if __name__ == "__main__":
    main()
