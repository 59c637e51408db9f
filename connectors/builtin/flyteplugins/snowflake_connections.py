"""Connections to Snowflake for the ``snowflake`` port: signed in with the deployment's key, one per
login, reused.

A connection is made by :func:`snowflake_connect` (``snowflake.connector.connect``), the one
function the port reaches Snowflake through and the one tests replace. It is kept, at most
``_CACHE_SIZE`` of them, per (account, user, database, schema, warehouse, key, connect()
arguments); the connector drops one (:func:`forget_connection`) when an error says it no longer
works. A sign-in takes at most :func:`connect_seconds`.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from typing import Any, Protocol

from ...connector_calls import call_seconds_left
from ...errors import invalid_argument

_CACHE_SIZE = 16


class ConnectionTarget(Protocol):
    """Where and as whom a connection signs in: a task's SnowflakeJobMetadata is one."""

    account: str
    user: str
    database: str
    schema: str
    warehouse: str
    connection_kwargs: dict[str, Any] | None


def snowflake_connect(**params: Any) -> Any:
    """A new Snowflake connection (``snowflake.connector.connect``): the client factory."""
    import snowflake.connector

    return snowflake.connector.connect(**params)


def private_key_der(private_key_content: str, private_key_passphrase: str | None = None) -> bytes:
    """A PEM private key (encrypted with the passphrase, if any) as unencrypted PKCS#8 DER bytes."""
    from cryptography.hazmat.primitives import serialization

    password = private_key_passphrase.encode() if private_key_passphrase else None
    try:
        key = serialization.load_pem_private_key(private_key_content.strip().encode(), password=password)
    except (ValueError, TypeError) as error:
        raise invalid_argument(f"snowflake_private_key cannot be read: {error}") from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


# The cache: one connection per (account, user, database, schema, warehouse, key, kwargs), reused.
_connections: OrderedDict[str, Any] = OrderedDict()
_connections_lock = threading.Lock()


def _connection_params(
    target: ConnectionTarget, private_key: str | None, passphrase: str | None, login_seconds: float = 0.0
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "account": target.account,
        "user": target.user,
        "database": target.database,
        "schema": target.schema,
        "warehouse": target.warehouse,
        **(target.connection_kwargs or {}),
    }
    if private_key:
        params["private_key"] = private_key_der(private_key, passphrase)
    if login_seconds:  # the driver's default is 120 s; a task may ask for less, not more
        asked = params.get("login_timeout")
        limit = max(1, int(login_seconds))
        params["login_timeout"] = min(asked, limit) if isinstance(asked, (int, float)) and asked > 0 else limit
    return params


def cached_connection(
    target: ConnectionTarget, private_key: str | None, passphrase: str | None, login_seconds: float = 0.0
) -> tuple[str, Any]:
    """The cached connection for these parameters, and its key in the cache (blocking: connects
    on a miss)."""
    key = json.dumps(
        [
            target.account,
            target.user,
            target.database,
            target.schema,
            target.warehouse,
            private_key,
            passphrase,
            target.connection_kwargs or {},
        ],
        sort_keys=True,
        default=str,
    )
    with _connections_lock:
        conn = _connections.get(key)
        if conn is not None and not _closed(conn):
            _connections.move_to_end(key)
            return key, conn
    conn = snowflake_connect(**_connection_params(target, private_key, passphrase, login_seconds))
    with _connections_lock:
        _connections[key] = conn
        while len(_connections) > _CACHE_SIZE:
            _connections.popitem(last=False)
    return key, conn


def _closed(conn: Any) -> bool:
    is_closed = getattr(conn, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


def forget_connection(key: str) -> None:
    """Drop a connection from the cache (the next call for its parameters connects anew)."""
    with _connections_lock:
        _connections.pop(key, None)


def snowflake_host(account: str) -> str:
    """The host the driver signs in at for an account identifier (``<account>.snowflakecomputing.com``)."""
    return f"{account}.snowflakecomputing.com"


def connect_seconds() -> float:
    """How long a sign-in may take: three quarters of what is left of the call's deadline (the
    caller's, the Lambda's, else ``CONNECTOR_TIMEOUT_SECONDS``), so that a host the function
    cannot reach is told as that host, not as a deadline."""
    left = call_seconds_left()
    if left is None:
        try:
            left = float(os.environ.get("CONNECTOR_TIMEOUT_SECONDS", "") or 8.0)
        except ValueError:
            left = 8.0
    return max(0.05, 0.75 * left) if math.isfinite(left) else 6.0


__all__ = [
    "ConnectionTarget",
    "cached_connection",
    "connect_seconds",
    "forget_connection",
    "private_key_der",
    "snowflake_connect",
    "snowflake_host",
]
