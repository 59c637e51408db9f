"""`connectors serve` (what `make serve` runs), with tests/fake_snowflake.py in place of Snowflake's client.

    python -m tests.e2e.serve_with_fake_snowflake     # from the repository root; PORT, DYNAMODB_PORT as for serve

The other fakes of flyte's ported connectors are servers (Databricks over HTTPS, BigQuery over
HTTP, Slurm over SSH) that a deployment's own settings point the service at. Snowflake's is a fake
of the ``snowflake.connector`` client, which can only act inside the process the connector runs in:
this puts it in place of ``connectors.builtin.flyteplugins.snowflake_connections.snowflake_connect``
(the one function the port reaches Snowflake through, the one the functional tests replace) and
then runs the unchanged command. Queries go QUEUED, RUNNING, SUCCESS, one step per status poll.
"""

from __future__ import annotations

import sys

from connectors.builtin.flyteplugins import snowflake_connections
from connectors.cli import main
from tests.fake_snowflake import FakeSnowflake

if __name__ == "__main__":
    snowflake_connections.snowflake_connect = FakeSnowflake().connect
    sys.exit(main(["serve"]))
