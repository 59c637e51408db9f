"""moto's server finds each request's backend without reading its package directory every time.

moto 5.2.6's ``DomainDispatcherApplication.get_application`` asks, for every request and under the
dispatcher's one lock, whether the request's host names a moto module: ``list_of_moto_modules()``
lists moto's package directory and stats each of its ~200 entries (benchmarks/load.py's profile
of the fake AWS: 8% of its samples, every request waiting its turn). The directory does not change
while the server runs, so it is listed once; which backend answers a request is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from moto import backends

_list_of_moto_modules = backends.list_of_moto_modules


@functools.cache
def moto_modules() -> tuple[str, ...]:
    """moto's service modules (its package's folders), listed once."""
    return tuple(_list_of_moto_modules())


def _listed_once() -> Iterable[str]:
    return moto_modules()


if not getattr(backends.list_of_moto_modules, "__fake_aws__", False):
    _listed_once.__fake_aws__ = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = _listed_once
