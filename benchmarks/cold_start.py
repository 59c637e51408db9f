"""Cold start: the import time of each Lambda handler module next to a bare FastAPI+Mangum+boto3 app.

Each measurement is a fresh interpreter (a cold start has nothing imported) that times, with
perf_counter, the import of the module: for a handler that includes building its settings,
registry, FastAPI app and Mangum adapter, which the handlers do at import. The store's DynamoDB
client is built on first use (the column says whether the import built one): never in the
metadata function, on the first request in the others (a SnapStart restore builds it again too).
The baseline, measured in the same run, is what any FastAPI-on-Lambda function pays:

    import boto3, fastapi, mangum
    Mangum(FastAPI(), lifespan="off"); boto3.client("dynamodb", region_name="us-east-1")

Interpreter start-up is left out of both. One unmeasured run first writes the .pyc files (a
deployed package ships them), then the minimum of --runs runs is reported.
Target: no handler above 1.3x the baseline.

    .venv/bin/python benchmarks/cold_start.py [--runs 5] [--target 1.3] [--strict] [--explain]

--explain adds, per handler, where its time beyond the baseline goes: the self time
(``-X importtime``) of the modules it imports that the baseline does not, by top-level package
(the handler module's own code, which builds the client and app as the baseline does, left out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = """
import boto3
import fastapi
import mangum
mangum.Mangum(fastapi.FastAPI(), lifespan="off")
boto3.client("dynamodb", region_name="us-east-1")
"""

TIMER = """
import json, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
code = sys.argv[1]
start = time.perf_counter()
exec(compile(code, "<measured>", "exec"), {"__name__": "__measured__"})
elapsed = time.perf_counter() - start
runtime = sys.modules.get("connectors.runtime")
built = None  # the baseline: not the service's client
if runtime is not None and runtime.default_service.cache_info().currsize:
    built = getattr(runtime.default_service().store._client, "built", True)
print(json.dumps({"seconds": elapsed, "modules": len(sys.modules), "dynamodb_client": built}))
"""

# Dummy values: enough for the handlers to build their clients at import; nothing is called.
ENVIRONMENT = {
    "TASKS_TABLE": "cold-start-benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "CONNECTOR_MODULES": "",
    "LOG_LEVEL": "WARNING",
    # The Lambda package has no flyte SDK; this dev venv does (the test oracle): measure without it.
    "FLYTE_SDK_CONNECTORS": "none",
}


def handler_modules() -> list[str]:
    return sorted(f"handlers.{p.stem}" for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__")


def measure(python: str, code: str, runs: int) -> tuple[float, int, bool | None]:
    """The minimum import time over ``runs`` fresh interpreters, the modules it loaded, and whether
    the import built the store's DynamoDB client (None: no service was built)."""
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(ROOT)}
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    times, modules, client = [], 0, None
    for attempt in range(runs + 1):
        result = subprocess.run(
            [python, "-c", TIMER, code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"measuring {code.strip()!r} failed:\n{result.stderr}")
        sample = json.loads(result.stdout.strip().splitlines()[-1])
        if attempt:  # the first run writes .pyc files: not a Lambda cold start
            times.append(sample["seconds"])
            modules, client = sample["modules"], sample.get("dynamodb_client")
    return min(times), modules, client


def import_profile(python: str, code: str) -> dict[str, int]:
    """Self import time (microseconds) of every module ``code`` imports, from ``-X importtime``."""
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [python, "-X", "importtime", "-W", "ignore", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    profile = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            profile[match.group(2)] = int(match.group(1))
    return profile


def explain(python: str, module: str, baseline: dict[str, int], top: int = 6) -> str:
    """The packages ``module`` imports beyond the baseline, by self time."""
    extra: dict[str, int] = {}
    for name, micros in import_profile(python, f"import {module}").items():
        # The handler module's own time is mostly its DynamoDB client and app, which the
        # baseline builds too (outside any module, so not in its profile): leave it out.
        if name not in baseline and name != module:
            package = name.split(".")[0]
            extra[package] = extra.get(package, 0) + micros
    ranked = sorted(extra.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{package} {micros / 1000:.0f}" for package, micros in ranked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per module (the minimum is kept)")
    parser.add_argument("--target", type=float, default=1.3, help="largest acceptable handler/baseline ratio")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure with")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a handler misses the target")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show the packages (ms of self import time) each handler adds to the baseline",
    )
    args = parser.parse_args(argv)

    modules = handler_modules()
    if not modules:
        print("no handler modules under handlers/", file=sys.stderr)
        return 2
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"cold start: import time, min of {args.runs} fresh Python {version} processes; target <= {args.target}x baseline"
    )
    baseline, baseline_modules, _ = measure(args.python, BASELINE, args.runs)
    width = max(len(m) for m in [*modules, "baseline (FastAPI+Mangum+boto3)"])
    print(f"{'module':<{width}}  {'import ms':>9}  {'modules':>7}  {'ratio':>5}  {'DynamoDB client':>15}")
    print(
        f"{'baseline (FastAPI+Mangum+boto3)':<{width}}  {baseline * 1000:9.1f}  {baseline_modules:7d}  {1:5.2f}  "
        f"{'built':>15}"
    )
    baseline_profile = import_profile(args.python, BASELINE) if args.explain else {}
    failed = []
    for module in modules:
        seconds, count, client = measure(args.python, f"import {module}", args.runs)
        ratio = seconds / baseline
        verdict = "PASS" if ratio <= args.target else "FAIL"
        if verdict == "FAIL":
            failed.append(module)
        # The store's client is built on first use (connectors.runtime.LazyClient): at import only
        # where something calls the store; the metadata function never does.
        shown = {True: "built", False: "not built", None: "-"}[client]
        print(f"{module:<{width}}  {seconds * 1000:9.1f}  {count:7d}  {ratio:5.2f}  {shown:>15}  {verdict}")
        if args.explain:
            print(f"{'':<{width}}    beyond baseline (ms): {explain(args.python, module, baseline_profile)}")
    print("all handlers within target" if not failed else f"over target: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
