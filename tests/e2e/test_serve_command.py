"""`connectors serve`, as `make serve` runs it: a child process that starts the embedded DynamoDB,
creates the table, serves the API and answers ListConnectors (Connect), REST and gRPC."""

from __future__ import annotations

import grpc
import httpx
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

from connectors.dev.local_dynamodb import HOST
from tests.connectors_serve import connectors_serve
from tests.flyte_requests import echo_request


def test_serve_answers_on_connect_rest_and_grpc_and_stops_cleanly():
    # a loaded machine (parallel test workers) starts it slowly
    with connectors_serve(without=("AWS_ENDPOINT_URL_DYNAMODB", "TASKS_TABLE"), listen_seconds=90) as serving:
        listed = httpx.post(
            f"{serving.api}/flyteidl2.connector.ConnectorMetadataService/ListConnectors",
            content=b"{}",
            headers={"content-type": "application/json"},
        )
        assert listed.status_code == 200
        assert listed.json()["connectors"][0]["supportedTaskCategories"][0]["name"] == "echo"
        handle = AsyncConnectorServiceClientSync(serving.api).create_task(echo_request()).resource_meta
        assert handle.startswith(b"t1")  # the table was created on the embedded DynamoDB
        assert httpx.get(f"{serving.api}/api/v1/connectors").status_code == 200
        with grpc.insecure_channel(f"{HOST}:{serving.port}") as channel:
            stub = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
            assert stub.ListConnectors(pb.ListConnectorsRequest(), timeout=10).connectors
    assert f"Flyte connector service on http://127.0.0.1:{serving.port}" in serving.output
    assert "curl -s -X POST" in serving.output and "Traceback" not in serving.output
