"""Connector credentials from AWS Secrets Manager (or SSM Parameter Store), cached per process.

The open-source Flyte executor cannot resolve ``connection.secrets`` (its secret manager fails
every lookup), so a connector's secrets come from here instead. A connector names the secret
keyword arguments it takes (``secret_names = ("databricks_token",)``); for each one the request
did not carry, the service reads

- the Secrets Manager secret ``<SECRETS_PREFIX>/<task type>/<name>`` (its SecretString), or else
- the SSM parameter ``/<SECRETS_PREFIX>/<task type>/<name>`` (a SecureString, decrypted),

and passes it as the same keyword argument. Values an executor does send win. A secret found in
neither is left out (the connector decides what that means), unless the connector lists it in
``required_secrets``: then a call that needs the connector is ``unauthenticated`` before the
connector runs, and the answer names the secret and the parameter to create. An empty value in
the request counts as none. One the function may not read is
``permission_denied``, AWS failing in passing (throttled, a 5xx, the network) is ``unavailable``,
and AWS refusing the read for good (DecryptionFailure, a secret scheduled for deletion) is
``failed_precondition``. Values are cached for
``SECRETS_MAX_AGE_SECONDS`` (Powertools' parameters utility), never stored in a task record,
never logged, and cut from every message like a request's own secrets.

A credential goes only to a host the deployment lists (:func:`require_listed_host`, called by each
connector before it connects, for every operation): with none listed, a call that would use one is
``failed_precondition`` naming the parameter to set; a host not listed is ``permission_denied``.
The rule holds whatever the credential's source (Secrets Manager, SSM, the function's environment
or the request's connection): a connector cannot tell one from another, and a task must not be
able to choose where the deployment's credential is sent (docs/security.md, "Third-party
credentials").
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import string
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .connector_calls import add_redacted_values
from .errors import Code, ConnectError, failed_precondition, permission_denied
from .settings import DeploymentList

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PREFIX = "flyte-connectors"
DEFAULT_MAX_AGE_SECONDS = 300
_NOT_FOUND = {"ResourceNotFoundException", "ParameterNotFound"}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "ExpiredTokenException"}
# AWS's bad moments (throttled, failing, slow): worth a retry. Another code (DecryptionFailure,
# InvalidRequestException for a secret scheduled for deletion, InvalidKeyId) refuses for good.
# Not an AWS answer at all (the network, a timeout) is a bad moment too.
_PASSING = re.compile(r"Throttl|TooManyRequests|RequestLimitExceeded|Internal|ServiceUnavailable|Unavailable|Timeout")


@dataclass(frozen=True)
class SecretSource:
    """Where a connector's secrets are looked up, and for how long a value is kept."""

    prefix: str = DEFAULT_PREFIX
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    enabled: bool = True

    @classmethod
    def from_env(cls) -> SecretSource:
        prefix = os.environ.get("SECRETS_PREFIX", DEFAULT_PREFIX).strip().strip("/")
        raw_age = os.environ.get("SECRETS_MAX_AGE_SECONDS", "").strip()
        return cls(
            prefix=prefix,
            max_age_seconds=int(float(raw_age)) if raw_age else DEFAULT_MAX_AGE_SECONDS,
            enabled=bool(prefix),
        )

    def secret_id(self, task_type: str, name: str) -> str:
        return f"{self.prefix}/{task_type}/{name}"

    def parameter_name(self, task_type: str, name: str) -> str:
        return f"/{self.prefix}/{task_type}/{name}"


class Connection(dict[str, str]):
    """A call's keyword arguments, remembering which values were fetched from AWS (``fetched``)."""

    def __init__(self, values: dict[str, str], fetched: dict[str, str]) -> None:
        super().__init__(values)
        self.fetched = {name: value for name, value in fetched.items() if values.get(name) == value}


def secret_names(connector: Any) -> tuple[str, ...]:
    """The secret keyword arguments a connector takes (its ``secret_names``)."""
    return _names(getattr(connector, "secret_names", ()))


def required_secret_names(connector: Any) -> tuple[str, ...]:
    """The secrets without which the connector cannot sign in (its ``required_secrets``; a
    property may say none is needed, as when the deployment gives the key another way)."""
    return _names(getattr(connector, "required_secrets", ()))


def _names(names: Any) -> tuple[str, ...]:
    return tuple(name for name in (names or ()) if isinstance(name, str) and name)


class SecretResolver:
    """Completes a call's keyword arguments with the connector's secrets from AWS."""

    def __init__(self, source: SecretSource | None = None) -> None:
        self.source = source or SecretSource.from_env()
        self._providers: tuple[Any, Any] | None = None
        self._lock = threading.Lock()  # secrets are read in worker threads, several at once
        # Secrets Manager ids not found there while SSM had the value, until when (monotonic): the
        # providers cache only what they find, so each read of an SSM-kept secret asked again.
        self._kept_in_ssm: dict[str, float] = {}

    def reset(self) -> None:
        """Forget the providers, their clients and cached values (after a SnapStart restore)."""
        with self._lock:
            self._providers = None
            self._kept_in_ssm.clear()

    async def complete(self, connector: Any, task_type: str, connection: dict[str, str]) -> dict[str, str]:
        """``connection`` with each secret the connector takes and the request lacks, from AWS."""
        missing = [name for name in secret_names(connector) if not connection.get(name)]
        if not missing or not self.source.enabled:
            return connection
        given = {name: value for name, value in connection.items() if value or name not in missing}
        return await self._fetch(task_type, missing, given, force=False)

    def require(self, connector: Any, task_type: str, connection: dict[str, str]) -> None:
        """``unauthenticated`` naming where to put each required secret ``connection`` lacks: said
        before a call that would sign in without it (and only then: a task that needs no call, an
        ended one, is answered from its record whatever the secrets)."""
        absent = [name for name in required_secret_names(connector) if not connection.get(name)]
        if absent:
            raise ConnectError(Code.UNAUTHENTICATED, self.where_to_put(task_type, absent, connector))

    def where_to_put(self, task_type: str, names: list[str], connector: Any = None) -> str:
        """What an operator must create for a connector that found none of ``names``."""
        listed = ", ".join(names)
        if not self.source.enabled:
            told = (
                f"{task_type}: no {listed} credential: the request's connection carries none, and this "
                f"deployment reads no secrets from AWS (SECRETS_PREFIX is empty)"
            )
        else:
            places = "; ".join(
                f"the Secrets Manager secret {self.source.secret_id(task_type, name)!r} or the SSM "
                f"parameter {self.source.parameter_name(task_type, name)!r} (a SecureString)"
                for name in names
            )
            told = f"{task_type}: no {listed} credential: create {places}, in this service's account and region"
        hint = getattr(connector, "missing_secret_hint", "")
        return f"{told}. {hint}" if isinstance(hint, str) and hint else told

    async def refresh(self, task_type: str, connection: dict[str, str]) -> dict[str, str] | None:
        """After the remote refused a call's credentials: the secrets this service fetched for it,
        read again past the cache (a rotation may have revoked the cached value). None when none
        was fetched here, or none changed: retrying would be refused again."""
        fetched = getattr(connection, "fetched", {})
        if not fetched:
            return None
        given = {name: value for name, value in connection.items() if name not in fetched}
        fresh = await self._fetch(task_type, list(fetched), given, force=True)
        changed = any(fresh.get(name) != value for name, value in fetched.items())
        return fresh if changed else None

    async def call(
        self,
        calls: Any,
        connector: Any,
        task_type: str,
        operation: str,
        connection: dict[str, str],
        make: Callable[[dict[str, str]], Awaitable[T]],
    ) -> T:
        """``calls.call(connector, operation, make(connection))``; when the remote refuses the
        credentials and some were fetched from AWS, once more with them read again."""
        self.require(connector, task_type, connection)
        try:
            return await calls.call(connector, operation, make(connection))
        except ConnectError as error:
            if error.code not in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
                raise
            fresh = await self.refresh(task_type, connection)
            if fresh is None:
                raise
            logger.info(
                "%s %s refused the cached credentials; retrying with the secrets read again", task_type, operation
            )
            return await calls.call(connector, operation, make(fresh))

    async def _fetch(self, task_type: str, names: list[str], connection: dict[str, str], force: bool) -> Connection:
        found = await asyncio.gather(*(asyncio.to_thread(self._read, task_type, name, force) for name in names))
        fetched = {name: value for name, value in zip(names, found, strict=True) if value is not None}
        add_redacted_values(fetched.values())
        return Connection({**fetched, **connection}, fetched)

    def _read(self, task_type: str, name: str, force: bool = False) -> str | None:
        secrets, ssm = self._provider_pair()
        secret_id = self.source.secret_id(task_type, name)
        for provider, key, extra in (
            (secrets, secret_id, {}),
            (ssm, self.source.parameter_name(task_type, name), {"decrypt": True}),
        ):
            if provider is secrets and not force and self._kept_in_ssm.get(key, 0.0) > time.monotonic():
                continue  # found in SSM, not here, less than the values' max age ago
            try:
                value = provider.get(key, max_age=self.source.max_age_seconds, force_fetch=force, **extra)
            except Exception as error:  # Powertools' GetParameterError, the ClientError as its cause
                code = _aws_code(error)
                if code in _NOT_FOUND:
                    continue
                where = f"secret {key!r}"
                if code in _DENIED:
                    raise ConnectError(Code.PERMISSION_DENIED, f"this function may not read {where}: {code}") from None
                logger.warning("could not read %s: %s", where, code or type(error).__name__)
                if code and not _PASSING.search(code):  # refused for good: its KMS key, a deleted secret
                    raise ConnectError(Code.FAILED_PRECONDITION, f"AWS refused to read {where}: {code}") from None
                raise ConnectError(
                    Code.UNAVAILABLE, f"could not read {where} ({code or type(error).__name__}); retry"
                ) from None
            if value is not None:
                if provider is ssm:  # a miss remembered only with a value found: a secret created
                    # after a "no credential" answer is used at the next call
                    self._kept_in_ssm[secret_id] = time.monotonic() + self.source.max_age_seconds
                # A secret stored from a file (--secret-string file://token.txt) ends with a
                # newline, which no token, header or key needs.
                return (value if isinstance(value, str) else value.decode("utf-8")).strip()
        return None

    def _provider_pair(self) -> tuple[Any, Any]:
        with self._lock:
            if self._providers is None:  # Powertools is imported only when a connector needs a secret
                from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

                _keep_secret_bodies_out_of_logs()
                self._providers = (SecretsProvider(), SSMProvider())
            return self._providers


class _SecretBodyFilter(logging.Filter):
    """botocore logs every response body at DEBUG: never those that carry a secret's value."""

    MARKERS = ('"SecretString"', '"SecretBinary"', '"Parameter"', '"Parameters"')

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that does not format is not one of these
            return True
        return not any(marker in text for marker in self.MARKERS)


def _keep_secret_bodies_out_of_logs() -> None:
    for name in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "urllib3.connectionpool"):
        logger_ = logging.getLogger(name)
        if not any(isinstance(existing, _SecretBodyFilter) for existing in logger_.filters):
            logger_.addFilter(_SecretBodyFilter())


def _aws_code(error: BaseException) -> str:
    for cause in (error, error.__cause__, error.__context__):
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def require_listed_host(
    task_type: str,
    host: Any,
    listed_by: DeploymentList,
    *,
    kind: str = "host",
    credential: str = "credential",
    shown: str | None = None,
    also: Iterable[str] = (),
) -> None:
    """Refuse, before any connection, to send ``credential`` to ``host`` unless the deployment lists
    it in ``listed_by`` (or ``also``: another setting of the deployment's that names its one host).
    Compared without ASCII case or a trailing dot. None listed: ``failed_precondition`` naming the
    parameter; another host: ``permission_denied``. ``shown``: the host as the message names it
    (Snowflake's account, with the host it signs in at)."""

    def same(name: Any) -> str:
        # ASCII letters folded only: Unicode folding maps other hosts onto listed ones ("ß" folds
        # to "ss", yet an HTTP client sends "maßive.example" as its own IDNA label, xn--...).
        return str(name).strip().rstrip(".").translate(_ASCII_LOWER)

    allowed = sorted({*listed_by.values(), *(item.strip() for item in also if item and item.strip())})
    where = shown or repr(host)
    if not allowed:
        raise failed_precondition(
            f"{task_type}: this deployment lists no {kind} to send its {credential} to, so a task naming "
            f"{where} is not run: set {listed_by.named} to the {kind}s its tasks may use"
        )
    if same(host) not in {same(item) for item in allowed}:
        raise permission_denied(
            f"{task_type}: {where} is not a {kind} this deployment sends its {credential} to; it sends it "
            f"only to {', '.join(allowed)}, as {listed_by.named} lists"
        )


__all__ = ["SecretResolver", "SecretSource", "require_listed_host", "required_secret_names", "secret_names"]
