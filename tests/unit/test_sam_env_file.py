"""events/local/env.json, the `sam local invoke --env-vars` file, matches template.yaml and the docs.

Docker is not available here, so `sam local invoke` itself is not run; the SAM CLI's own code
(its venv, .tools/sam) resolves each function's container environment from the file instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.dev.events import EVENT_FUNCTIONS
from connectors.dev.invoke import DEFAULT_TABLE_NAME, load_template
from connectors.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
ENV_FILE = ROOT / "events" / "local" / "env.json"
DOCS = ROOT / "docs" / "local-invoke.md"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"

# What `make serve` runs: moto on 127.0.0.1:8000 (connectors/cli.py's --dynamodb-port default).
LOCAL_ENDPOINT = "http://host.docker.internal:8000"
ENDPOINT_VARIABLES = {"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"}
# Lambda reserves these; the SAM CLI sets them from its own session and ignores them in the file.
RESERVED = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY",
    "AWS_LAMBDA_FUNCTION_NAME",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
}


def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template()["Resources"].items()
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }


def declared(function: dict[str, Any]) -> set[str]:
    """The variables the function's environment defines: Globals' and its own."""
    globals_ = (template().get("Globals") or {}).get("Function") or {}
    names: set[str] = set()
    for source in (globals_, function.get("Properties") or {}):
        names |= set(((source.get("Environment") or {}).get("Variables")) or {})
    return names


def env_file() -> dict[str, dict[str, str]]:
    return json.loads(ENV_FILE.read_text())


def test_every_function_and_no_other_has_an_entry() -> None:
    assert set(env_file()) == set(functions())


def test_every_variable_is_declared_or_an_endpoint() -> None:
    for name, variables in env_file().items():
        allowed = declared(functions()[name]) | ENDPOINT_VARIABLES
        assert set(variables) <= allowed, f"{name}: {set(variables) - allowed} is not in its environment"
        assert not set(variables) & RESERVED, f"{name}: the SAM CLI ignores reserved variables in --env-vars"
        assert all(isinstance(value, str) for value in variables.values())


def test_it_points_at_make_serves_table_and_moto() -> None:
    serve_table = Settings().tasks_table
    assert serve_table == DEFAULT_TABLE_NAME == "connector-tasks"
    for name, variables in env_file().items():
        assert variables["TASKS_TABLE"] == serve_table, name
        assert {key: variables[key] for key in ENDPOINT_VARIABLES} == dict.fromkeys(ENDPOINT_VARIABLES, LOCAL_ENDPOINT)
    # make serve's moto listens on the CLI's default --dynamodb-port.
    assert '"DYNAMODB_PORT", "8000"' in (ROOT / "connectors" / "cli.py").read_text()


def documented_invocations() -> list[tuple[str, str]]:
    return re.findall(
        r"sam local invoke (\w+) -e (events/[\w./-]+\.json) --env-vars events/local/env\.json", DOCS.read_text()
    )


def test_the_docs_invoke_every_event_with_its_function() -> None:
    invocations = documented_invocations()
    for function, event in invocations:
        assert (ROOT / event).is_file(), event
        assert function in functions(), function
        assert EVENT_FUNCTIONS[Path(event).stem] == function, (function, event)
    assert {Path(event).stem for _, event in invocations} == set(EVENT_FUNCTIONS)
    assert {path.stem for path in (ROOT / "events").glob("*.json")} <= set(EVENT_FUNCTIONS)
    for path in re.findall(r"events/[\w./-]+\.json", DOCS.read_text()):
        assert (ROOT / path).is_file(), path


# --- what the SAM CLI makes of it ------------------------------------------------------------------

_RESOLVE = r"""
import json, os, sys
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

template_path, env_path = sys.argv[1], sys.argv[2]
stacks, _ = SamLocalStackProvider.get_stacks(template_path)
provider = SamFunctionProvider(stacks)
root = os.path.dirname(template_path)
runner = LocalLambdaRunner(local_runtime=None, function_provider=provider, cwd=root, real_path=root,
                           env_vars_values=json.load(open(env_path)))
print(json.dumps({f.name: runner._make_env_vars(f).resolve() for f in provider.get_all()}))
"""


@pytest.fixture(scope="module")
def container_environments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Each function's environment as `sam local invoke --env-vars events/local/env.json` sets it."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI venv (.tools/sam, `make lint-template`) is missing")
    home = tmp_path_factory.mktemp("home")  # no ~/.aws: the SAM CLI's own placeholder credentials
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", _RESOLVE, str(TEMPLATE_PATH), str(ENV_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_sam_cli_gives_every_function_make_serves_table(container_environments: dict[str, dict[str, str]]) -> None:
    assert set(container_environments) == set(functions())
    for name, environment in container_environments.items():
        assert environment["TASKS_TABLE"] == "connector-tasks", name
        assert environment["AWS_SAM_LOCAL"] == "true"


def test_the_sam_cli_points_every_function_at_moto(container_environments: dict[str, dict[str, str]]) -> None:
    for name, environment in container_environments.items():
        for variable in ENDPOINT_VARIABLES:
            assert environment.get(variable) == LOCAL_ENDPOINT, f"{name}: {variable}"
