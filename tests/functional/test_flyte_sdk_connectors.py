"""Flyte SDK connectors served where the SDK is installed (connectors/flyte_sdk.py).

The flyte-sdk Databricks connector module, unchanged from the flyteplugins-databricks 2.12.1
wheel, is found through a ``flyte.connectors`` entry point (a distribution laid out in a tmp dir,
since the plugin package's ``__init__`` imports pyspark) and served through the app to SUCCEEDED
against the fake Databricks Jobs API on loopback HTTPS. SDK connectors defined here check the
adaptation: flyte.io values in and out, only the keyword arguments a method takes, misses
catchable as ``FlyteConnectorNotFound``, ``FLYTE_SDK_CONNECTORS``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import logging
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_connect import ConnectorMetadataServiceClientSync
from flyteidl2.core import literals_pb2, tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl2.logs.dataplane import payload_pb2

from connectors import literals
from connectors import registry as registry_module
from connectors.connector import AsyncConnector, Resource, ResourceMeta
from connectors.flyte_sdk import (
    FlyteSdkConnector,
    from_flyte_io,
    load_entry_points,
    load_flyte_sdk_connectors,
    to_flyte_io,
)
from connectors.literals import DataFrameRef, DirRef, FileRef
from connectors.registry import ConnectorNotFound, ConnectorRegistry
from connectors.settings import Settings
from connectors.transport import create_app
from tests.aws_world import DATAFRAME, DIR, FILE, STR, AwsWorld, task_request, variable_map
from tests.conftest import ServedApp, make_service, make_table
from tests.fake_databricks import FakeDatabricks
from tests.oracle_wheels import oracle_wheel

flyte_connectors = pytest.importorskip("flyte.connectors")
flyte_io = pytest.importorskip("flyte.io")
FlyteConnectorNotFound = pytest.importorskip("flyte.connectors._connector").FlyteConnectorNotFound

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".venv" / "wheels"
WHEEL_MEMBER = "flyteplugins/databricks/connector.py"
MODULE = "flyte_sdk_databricks_connector"  # the wheel's connector module, copied unchanged under this name


# -- the unchanged flyte-sdk Databricks connector, as an installed entry point ----------------------


def databricks_wheel() -> Path:
    """flyteplugins-databricks, as tools/oracle-wheels.txt locks it (in .venv/wheels/)."""
    return oracle_wheel("flyteplugins-databricks")


@pytest.fixture(scope="module")
def databricks_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A site dir with the wheel's connector module and a dist-info whose entry point names it."""
    pytest.importorskip("aiohttp")  # the original's own HTTP client
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(databricks_wheel()) as wheel:
        (site / f"{MODULE}.py").write_bytes(wheel.read(WHEEL_MEMBER))
    dist = site / "flyte_sdk_databricks_fixture-2.12.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flyte-sdk-databricks-fixture\nVersion: 2.12.1\n")
    (dist / "entry_points.txt").write_text(f"[flyte.connectors]\ndatabricks = {MODULE}:DatabricksConnector\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    importlib.invalidate_caches()


@pytest.fixture(autouse=True)
def sdk_registry() -> Iterator[Any]:
    """flyte's process-wide ConnectorRegistry, emptied for each test and given back as it was
    (other tests register there too); our miss class likewise."""
    sdk = flyte_connectors.ConnectorRegistry
    saved = dict(sdk._REGISTRY), {name: copy.deepcopy(meta) for name, meta in sdk._METADATA.items()}
    not_found = registry_module.not_found_class
    # Empty: earlier tests (flyteplugins-aws's local runs, the plugins' own imports) register there.
    sdk._REGISTRY.clear()
    sdk._METADATA.clear()
    yield sdk
    sdk._REGISTRY.clear()
    sdk._REGISTRY.update(saved[0])
    sdk._METADATA.clear()
    sdk._METADATA.update(saved[1])
    registry_module.not_found_class = not_found
    sys.modules.pop(MODULE, None)


class SdkWorld(AwsWorld):
    """AwsWorld's client and helpers, serving a registry the test built."""

    def __init__(self, dynamodb_client: Any, registry: ConnectorRegistry) -> None:
        self.dynamodb_client = dynamodb_client
        self.settings = Settings(tasks_table=make_table(dynamodb_client), connector_timeout_seconds=10.0)
        self.service = make_service(self.settings, dynamodb_client, registry)
        self.server = ServedApp(create_app(self.service))
        self.secrets: dict[str, str] = {}  # sent on every GetTask and DeleteTask, as the executor does

    def poll(self, handle: bytes, task_type: str) -> pb.Resource:
        return self.client.get_task(
            pb.GetTaskRequest(
                resource_meta=handle,
                task_category=pb.TaskCategory(name=task_type),
                connection={"secrets": self.secrets},
            )
        ).resource

    def delete(self, handle: bytes, task_type: str) -> None:
        self.client.delete_task(
            pb.DeleteTaskRequest(
                resource_meta=handle,
                task_category=pb.TaskCategory(name=task_type),
                connection={"secrets": self.secrets},
            )
        )


@pytest.fixture
def world(dynamodb_client: Any) -> Iterator[Any]:
    worlds: list[SdkWorld] = []

    def make(registry: ConnectorRegistry) -> SdkWorld:
        worlds.append(SdkWorld(dynamodb_client, registry).__enter__())
        return worlds[-1]

    yield make
    for served in worlds:
        served.__exit__(None, None, None)


def trust(cafile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make aiohttp (the original's client) trust the fake's self-signed certificate: SSL_CERT_FILE,
    and aiohttp's default context, which it builds once when imported."""
    monkeypatch.setenv("SSL_CERT_FILE", cafile)
    import aiohttp.connector

    aiohttp.connector._SSL_CONTEXT_VERIFIED.load_verify_locations(cafile=cafile)


def databricks_request(instance: str, token: str) -> pb.CreateTaskRequest:
    """The template flyteplugins-databricks's task class writes (custom_config: the SparkJob as a
    dict, databricksConf/databricksInstance, the secret's name), the token as a connection secret."""
    custom = {
        "sparkConf": {"spark.driver.memory": "1000M"},
        "mainApplicationFile": "local:///usr/local/bin/entrypoint.py",
        "executorPath": "/usr/bin/python3",
        "applicationType": "PYTHON",
        "databricksConf": {
            "run_name": "flyte databricks plugin",
            "timeout_seconds": 3600,
            "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m6i.large", "num_workers": 1},
        },
        "databricksInstance": instance,
        "secrets": {"databricks_token": "databricks-token"},
    }
    request = task_request("databricks", custom, secrets={"databricks_token": token})
    request.template.container.CopyFrom(
        tasks_pb2.Container(
            image="ghcr.io/flyteorg/flyte:py3.12",
            args=["a0", "--inputs", "s3://bucket/inputs.pb"],
            env=[literals_pb2.KeyValuePair(key="FLYTE_INTERNAL_EXECUTION_ID", value="r1")],
        )
    )
    return request


def test_the_unchanged_sdk_databricks_connector_is_served_from_its_entry_point_to_succeeded(
    databricks_site: Path, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with zipfile.ZipFile(databricks_wheel()) as wheel:
        original = hashlib.sha256(wheel.read(WHEEL_MEMBER)).hexdigest()
    assert hashlib.sha256((databricks_site / f"{MODULE}.py").read_bytes()).hexdigest() == original

    registry = ConnectorRegistry()  # no built-in databricks here: the SDK's connector serves it
    assert load_flyte_sdk_connectors(registry, "databricks") == ["databricks"]
    adapter = registry.get_connector("databricks")
    assert isinstance(adapter, FlyteSdkConnector) and type(adapter.sdk_connector).__module__ == MODULE
    assert adapter.metadata_type is sys.modules[MODULE].DatabricksJobMetadata
    served = world(registry)
    metadata = ConnectorMetadataServiceClientSync(served.server.url).list_connectors(pb.ListConnectorsRequest())
    assert [(c.name, [t.name for t in c.supported_task_categories]) for c in metadata.connectors] == [
        ("Databricks Connector", ["databricks"])
    ]

    with FakeDatabricks(token="dapi-sdk-token") as fake:
        trust(fake.cafile, monkeypatch)
        served.secrets = {"databricks_token": fake.token}
        handle = served.create(databricks_request(fake.instance, fake.token))
        resource = served.wait(handle, "databricks")
        assert resource.phase == TaskExecution.SUCCEEDED, resource
        (submit,) = fake.calls("runs/submit")
        assert submit.headers["authorization"] == "Bearer dapi-sdk-token"
        assert submit.body["spark_python_task"] == {
            "python_file": "flyteplugins/databricks/entrypoint.py",
            "parameters": ["a0", "--inputs", "s3://bucket/inputs.pb"],
            "source": "GIT",
        }
        assert submit.body["new_cluster"]["docker_image"] == {"url": "ghcr.io/flyteorg/flyte:py3.12"}
        assert "idempotency_token" not in submit.body  # the original sends none; the service's token is ignored
        run = fake.runs[max(fake.runs)]
        assert list(resource.log_links) == [
            TaskLog(name="Databricks Console", uri=f"https://{fake.instance}/#job/{run.job_id}/run/{run.run_id}")
        ]
        stored = adapter.metadata_type.decode(served.record(handle).resource_meta)
        assert (stored.databricks_instance, stored.run_id) == (fake.instance, str(run.run_id))

        fake.default_script = [("RUNNING", None)]  # a run that keeps going, then is cancelled
        second = served.create(databricks_request(fake.instance, fake.token))
        served.delete(second, "databricks")
        assert [call.body for call in fake.calls("runs/cancel")] == [{"run_id": str(max(fake.runs))}]
        assert served.poll(second, "databricks").phase == TaskExecution.ABORTED
        assert served.error(served.logs, handle, "databricks").code.value == "unimplemented"  # it offers none


class BuiltinDatabricks(AsyncConnector[ResourceMeta]):
    name = "Databricks Connector"
    task_type_name = "databricks"
    metadata_type = ResourceMeta

    async def create(self, *args: Any, **kwargs: Any) -> ResourceMeta:
        return ResourceMeta()

    async def get(self, resource_meta: ResourceMeta, **kwargs: Any) -> Resource:
        return Resource(phase=TaskExecution.SUCCEEDED)

    async def delete(self, resource_meta: ResourceMeta, **kwargs: Any) -> None:
        return None


def test_a_built_in_for_the_task_type_wins_over_the_sdk_connector(
    databricks_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builtin = BuiltinDatabricks()
    registry = ConnectorRegistry([builtin])
    with caplog.at_level(logging.INFO, logger="connectors.flyte_sdk"):
        assert load_flyte_sdk_connectors(registry, "databricks") == []
    assert registry.get_connector("databricks") is builtin and len(registry) == 1
    assert MODULE in sys.modules  # its entry point was loaded, its connector not served
    assert "not served for task type databricks (version 0): this service serves that task type already" in caplog.text


def test_flyte_sdk_connectors_none_loads_no_entry_point(databricks_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_SDK_CONNECTORS", "none")
    registry = ConnectorRegistry()
    assert "databricks" not in load_flyte_sdk_connectors(registry)
    assert MODULE not in sys.modules and ("databricks", 0) not in registry
    monkeypatch.setenv("FLYTE_SDK_CONNECTORS", "databricks, nope")
    with pytest.raises(ValueError, match="FLYTE_SDK_CONNECTORS names nope, which no installed package offers"):
        load_entry_points()
    assert MODULE not in sys.modules
    monkeypatch.setenv("FLYTE_SDK_CONNECTORS", " databricks ")
    assert load_entry_points() == ["databricks"] and MODULE in sys.modules


# -- SDK connectors defined here: flyte.io values, keyword arguments, misses ------------------------


@dataclass
class IoMeta(flyte_connectors.ResourceMeta):
    job: str
    seen: dict


class SdkIoConnector(flyte_connectors.AsyncConnector):
    """Takes only what its signatures name: no **kwargs anywhere, so any extra argument would fail."""

    name = "SDK IO Connector"
    task_type_name = "sdk_io"
    metadata_type = IoMeta
    calls: ClassVar[list[tuple[str, dict]]] = []

    async def create(
        self, task_template: Any, inputs: dict | None = None, output_prefix: str = "", api_key: str = ""
    ) -> IoMeta:
        type(self).calls.append(("create", {"inputs": inputs, "output_prefix": output_prefix, "api_key": api_key}))
        seen = {
            name: [type(value).__name__, value if isinstance(value, str) else value.model_dump()]
            for name, value in (inputs or {}).items()
        }
        return IoMeta(job="j-1", seen=seen)

    async def get(self, resource_meta: IoMeta, api_key: str = "") -> Any:
        type(self).calls.append(("get", {"api_key": api_key}))
        return flyte_connectors.Resource(
            phase=TaskExecution.SUCCEEDED,
            message="done",
            outputs={
                "report": flyte_io.File(path="s3://out/report.csv", format="csv"),
                "folder": flyte_io.Dir(path="s3://out/folder/"),
                "table": flyte_io.DataFrame(uri="s3://out/table.parquet", format="parquet"),
                "parts": [flyte_io.File(path="s3://out/p0"), flyte_io.File(path="s3://out/p1")],
            },
            custom_info={"job": resource_meta.job},
        )

    async def delete(self, resource_meta: IoMeta) -> None:
        type(self).calls.append(("delete", {}))

    async def get_metrics(self, resource_meta: IoMeta) -> pb.GetTaskMetricsResponse:
        type(self).calls.append(("get_metrics", {}))
        return pb.GetTaskMetricsResponse()

    async def get_logs(self, resource_meta: IoMeta, token: str = ""):
        type(self).calls.append(("get_logs", {"token": token}))
        for text in ("line one", f"job {resource_meta.job}"):
            yield pb.GetTaskLogsResponse(body=pb.GetTaskLogsResponseBody(lines=[payload_pb2.LogLine(message=text)]))


class SdkPlainConnector(flyte_connectors.AsyncConnector):
    name = "SDK Plain Connector"
    task_type_name = "sdk_plain"
    metadata_type = IoMeta

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> IoMeta:
        return IoMeta(job="plain", seen=sorted(kwargs))  # type: ignore[arg-type]

    async def get(self, resource_meta: IoMeta, **kwargs: Any) -> Any:
        return flyte_connectors.Resource(phase=TaskExecution.SUCCEEDED)

    async def delete(self, resource_meta: IoMeta, **kwargs: Any) -> None:
        return None


def test_flyte_io_in_and_out_and_only_the_keyword_arguments_each_method_takes(world: Any, sdk_registry: Any) -> None:
    sdk_registry.register(SdkIoConnector())  # as a CONNECTOR_MODULES module of flyte SDK connectors would
    sdk_registry.register(SdkPlainConnector())
    SdkIoConnector.calls.clear()
    registry = ConnectorRegistry()
    assert sorted(load_flyte_sdk_connectors(registry, "none")) == ["sdk_io", "sdk_plain"]
    served = world(registry)
    outputs = {"report": FILE, "folder": DIR, "table": DATAFRAME, "parts": _list_of(FILE)}
    request = task_request(
        "sdk_io",
        {},
        secrets={"api_key": "k-123456"},
        outputs=outputs,
        inputs={
            "data": (FILE, FileRef("s3://in/data.json", "json")),
            "where": (DIR, DirRef("s3://in/dir/")),
            "frame": (DATAFRAME, DataFrameRef("s3://in/frame.parquet", "parquet")),
            "label": (STR, "x"),
        },
    )
    served.secrets = {"api_key": "k-123456"}
    handle = served.create(request)
    stored = IoMeta.decode(served.record(handle).resource_meta)  # the SDK's own dataclass, encoded as it does
    assert {
        name: [kind, value if kind == "str" else (value.get("path") or value["uri"], value["format"])]
        for name, (kind, value) in stored.seen.items()
    } == {
        "data": ["File", ("s3://in/data.json", "json")],
        "where": ["Dir", ("s3://in/dir/", "")],
        "frame": ["DataFrame", ("s3://in/frame.parquet", "parquet")],
        "label": ["str", "x"],
    }
    resource = served.wait(handle, "sdk_io")
    assert (resource.phase, resource.message) == (TaskExecution.SUCCEEDED, "done")
    assert served.outputs(resource, outputs) == {
        "report": FileRef("s3://out/report.csv", "csv"),
        "folder": DirRef("s3://out/folder/"),
        "table": DataFrameRef("s3://out/table.parquet", "parquet"),
        "parts": [FileRef("s3://out/p0"), FileRef("s3://out/p1")],
    }
    assert served.logs(handle, "sdk_io") == ["line one", "job j-1"]
    served.client.get_task_metrics(
        pb.GetTaskMetricsRequest(resource_meta=handle, task_category=pb.TaskCategory(name="sdk_io"))
    )
    assert [name for name, _ in SdkIoConnector.calls][:2] == ["create", "get"]
    assert {name for name, _ in SdkIoConnector.calls} == {"create", "get", "get_logs", "get_metrics"}
    create = dict(SdkIoConnector.calls)["create"]
    assert (create["output_prefix"], create["api_key"]) == (request.output_prefix, "k-123456")

    plain = served.create(task_request("sdk_plain", {}, secrets={"api_key": "k-123456"}))
    # **kwargs takes all: the connection's secret and the service's own arguments
    assert IoMeta.decode(served.record(plain).resource_meta).seen == [
        "api_key",
        "idempotency_token",
        "task_execution_metadata",
    ]
    # No get_logs/get_metrics of its own: unimplemented, as for any connector without them.
    assert served.error(served.logs, plain, "sdk_plain").code.value == "unimplemented"
    running = served.create(task_request("sdk_io", {}, secrets={"api_key": "k-123456"}, run="r-cancelled"))
    served.delete(running, "sdk_io")  # delete takes no api_key: it is not given one
    assert SdkIoConnector.calls[-1] == ("delete", {})
    assert served.poll(running, "sdk_io").phase == TaskExecution.ABORTED


def _list_of(item: Any) -> Any:
    from flyteidl2.core import types_pb2

    return types_pb2.LiteralType(collection_type=item)


def test_a_registry_miss_is_also_the_sdks_flyte_connector_not_found(sdk_registry: Any) -> None:
    registry = ConnectorRegistry()
    load_flyte_sdk_connectors(registry, "none")
    for miss in (lambda: registry.get_connector("nope", 3), lambda: registry.get_connector_metadata("Nope")):
        try:
            miss()
        except FlyteConnectorNotFound as error:  # as code written against the SDK's server catches it
            assert isinstance(error, ConnectorNotFound) and error.code.value == "not_found"
            assert "Cannot find connector for" in str(error)
        else:
            raise AssertionError("no miss")
    with pytest.raises(ConnectorNotFound):
        registry.get_connector("nope")


def test_flyte_io_values_convert_both_ways_and_the_literals_accept_them() -> None:
    refs = {
        "f": FileRef("s3://b/f.csv", "csv", "h1"),
        "d": DirRef("s3://b/d/"),
        "t": DataFrameRef("s3://b/t.parquet", "parquet"),
        "n": [FileRef("s3://b/n")],
        "x": 1,
    }
    native = to_flyte_io(refs)
    assert isinstance(native["f"], flyte_io.File) and (native["f"].path, native["f"].format, native["f"].hash) == (
        "s3://b/f.csv",
        "csv",
        "h1",
    )
    assert isinstance(native["d"], flyte_io.Dir) and isinstance(native["t"], flyte_io.DataFrame)
    assert isinstance(native["n"][0], flyte_io.File) and native["x"] == 1
    assert from_flyte_io(native) == refs
    types = variable_map({"f": FILE, "d": DIR, "t": DATAFRAME, "n": _list_of(FILE)})
    as_refs = {key: refs[key] for key in ("f", "d", "t", "n")}
    as_sdk = {key: native[key] for key in ("f", "d", "t", "n")}
    assert literals.native_to_outputs(as_sdk, types) == literals.native_to_outputs(as_refs, types)
    assert literals.native_to_outputs(as_sdk, None) == literals.native_to_outputs(as_refs, None)  # inferred


def test_without_the_flyte_sdk_nothing_imports_it() -> None:
    script = textwrap.dedent("""
        import sys
        class NoFlyte:
            def find_spec(self, name, path=None, target=None):
                if name == "flyte" or name.startswith("flyte."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
        sys.meta_path.insert(0, NoFlyte())
        from connectors.flyte_sdk import flyte_sdk_installed, load_flyte_sdk_connectors
        from connectors.registry import ConnectorNotFound, ConnectorRegistry, not_found_class
        from connectors import literals
        registry = ConnectorRegistry()
        print(flyte_sdk_installed(), load_flyte_sdk_connectors(registry, "all"), not_found_class is ConnectorNotFound,
              sorted(m for m in sys.modules if m == "flyte" or m.startswith("flyte.")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "[]", "True", "[]"]


def test_importing_the_service_does_not_import_flyte() -> None:
    script = (
        "import sys, connectors.registry, connectors.flyte_sdk, connectors.literals, connectors.service; "
        "print(sorted(m for m in sys.modules if m == 'flyte' or m.startswith('flyte.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]"
