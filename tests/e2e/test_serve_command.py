"""`connectors serve`, as `make serve` runs it: a child process that starts the embedded DynamoDB,
creates the table, serves the API and answers ListConnectors (Connect), REST and gRPC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import httpx
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector import service_pb2_grpc
from flyteidl2.connector.service_connect import AsyncConnectorServiceClientSync

from connectors.dev.local_dynamodb import HOST, free_port
from tests.flyte_requests import echo_request


def test_serve_answers_on_connect_rest_and_grpc_and_stops_cleanly():
    port, dynamodb_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL_DYNAMODB", "TASKS_TABLE")}
    env |= {"PORT": str(port), "DYNAMODB_PORT": str(dynamodb_port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 90  # a loaded machine (parallel test workers) starts it slowly
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                listed = httpx.post(
                    f"{base}/flyteidl2.connector.ConnectorMetadataService/ListConnectors",
                    content=b"{}",
                    headers={"content-type": "application/json"},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "connectors serve did not listen within 30 s"
                time.sleep(0.2)
        assert listed.status_code == 200
        assert listed.json()["connectors"][0]["supportedTaskCategories"][0]["name"] == "echo"
        handle = AsyncConnectorServiceClientSync(base).create_task(echo_request()).resource_meta
        assert handle.startswith(b"t1")  # the table was created on the embedded DynamoDB
        assert httpx.get(f"{base}/api/v1/connectors").status_code == 200
        with grpc.insecure_channel(f"{HOST}:{port}") as channel:
            stub = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
            assert stub.ListConnectors(pb.ListConnectorsRequest(), timeout=10).connectors
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert f"Flyte connector service on http://127.0.0.1:{port}" in output
    assert "curl -s -X POST" in output and "Traceback" not in output
