"""Lambda SnapStart: what must be fresh in a process restored from a snapshot.

With SnapStart (template.yaml parameter ``SnapStart``) Lambda runs a function's init once, when a
version is published, snapshots the memory, and starts every execution environment of that
version from the snapshot. Whatever init left in memory is then shared by every restored
environment, possibly for days:

- ``random``'s state: every environment would draw the same sequence. The service's handle
  secrets and tokens come from ``secrets`` (``os.urandom``, which the kernel keeps fresh), but
  ``random`` (botocore's retry jitter, connectors' own use) is re-seeded.
- Network connections: sockets opened before the snapshot are dead after a restore. The task
  store's DynamoDB client (a :class:`connectors.runtime.LazyClient`), the AWS connectors' clients
  (``connectors.builtin.aws.base._clients``) and Powertools' parameter providers (the secrets'
  clients and cached values) are dropped and built again on first use.
- Credentials: boto3's default session and every client above hold the credentials resolved
  before the snapshot; dropping them makes the next call resolve them again.

The hooks come from the Lambda runtime's own ``snapshot_restore_py`` module; where it is absent
(tests, ``connectors serve``, an older runtime) :func:`register` does nothing. :func:`refresh`
is what the after-restore hook runs, callable directly.
"""

from __future__ import annotations

import logging
import random
import sys
from typing import Any

logger = logging.getLogger(__name__)

_registered: set[int] = set()


def register(service: Any) -> bool:
    """Register the hooks for ``service`` (a :class:`connectors.service.ConnectorService`) with
    the Lambda runtime; False when the runtime has no ``snapshot_restore_py`` (not in Lambda)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    if id(service) in _registered:
        return True
    _registered.add(id(service))
    register_before_snapshot(before_snapshot, service)
    register_after_restore(after_restore, service)
    return True


def before_snapshot(service: Any) -> None:
    """Nothing network- or credential-bound goes into the snapshot."""
    drop_connections(service)


def after_restore(service: Any) -> None:
    refresh(service)
    logger.info("restored from a SnapStart snapshot: randomness re-seeded, clients dropped")


def refresh(service: Any) -> None:
    """Re-seed ``random`` and drop every client and cached credential (they are built again on
    first use)."""
    random.seed()  # from os.urandom
    drop_connections(service)


def drop_connections(service: Any) -> None:
    _reset_store_client(service)
    _drop_aws_connector_clients()
    _drop_secret_providers(service)
    _drop_default_boto3_session()


def _reset_store_client(service: Any) -> None:
    client = getattr(getattr(service, "store", None), "_client", None)
    reset = getattr(client, "reset", None)
    if callable(reset):
        reset()


def _drop_aws_connector_clients() -> None:
    base = sys.modules.get("connectors.builtin.aws.base")  # not imported: no client to drop
    if base is not None:
        base.reset_clients()


def _drop_secret_providers(service: Any) -> None:
    resolvers = {
        id(r): r
        for r in (getattr(service, "secrets", None), getattr(getattr(service, "canceller", None), "secrets", None))
        if r is not None
    }
    for resolver in resolvers.values():
        reset = getattr(resolver, "reset", None)
        if callable(reset):
            reset()  # its SecretsProvider and SSMProvider: clients and cached values
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
    if parameters is not None:
        getattr(parameters, "DEFAULT_PROVIDERS", {}).clear()


def _drop_default_boto3_session() -> None:
    if sys.modules.get("boto3") is not None:  # only when something imported it
        import boto3

        boto3.DEFAULT_SESSION = None


__all__ = ["after_restore", "before_snapshot", "drop_connections", "refresh", "register"]
