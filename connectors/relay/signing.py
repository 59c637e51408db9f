"""SigV4 signatures for ``execute-api``, with credentials that follow their rotation.

The relay signs every request with the credentials a boto3 Session finds: an IRSA or EKS Pod
Identity web identity token, an instance or task role, or the environment. Those are refreshable
credentials; each request signs with a frozen snapshot of them, and a snapshot that needs a
refresh (an STS call, blocking) is taken in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

__all__ = ["Signer", "resolve_region"]

SERVICE = "execute-api"

# <api-id>.execute-api.<region>.amazonaws.com, and the VPC endpoint form
# <api-id>-<vpce-id>.execute-api.<region>.vpce.amazonaws.com (.com.cn in China).
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.")


def resolve_region(endpoint: str, region: str | None = None, session: Any = None) -> str:
    """The region to sign for: ``region`` if given, else the endpoint's ``execute-api`` host,
    else AWS_REGION / AWS_DEFAULT_REGION (or the profile's region)."""
    if region:
        return region
    match = _EXECUTE_API_HOST.search(f".{urlsplit(endpoint).hostname or ''}.")
    if match:
        return match.group(1)
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        found = (session or boto3.Session()).region_name
    if not found:
        raise ValueError(
            f"cannot tell the region of {endpoint} (not an execute-api host): pass --region or set AWS_REGION"
        )
    return found


class Signer:
    """Signs requests to API Gateway for ``region`` with the credentials of a boto3 Session."""

    def __init__(self, region: str, session: Any = None, service: str = SERVICE) -> None:
        session = session or boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError(
                "no AWS credentials found (IRSA / Pod Identity, an instance role or AWS_* variables); "
                "use --unsigned only for an endpoint that needs no signature"
            )
        self.region = region
        self.service = service
        self._credentials = credentials

    async def _snapshot(self) -> Any:
        refresh_needed = getattr(self._credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(self._credentials.get_frozen_credentials)
        return self._credentials.get_frozen_credentials()

    async def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """``headers`` plus the signature headers (Authorization, X-Amz-Date, X-Amz-Security-Token).

        Every header given is signed, so send exactly these (the HTTP client may add unsigned ones).
        """
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(await self._snapshot(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())
