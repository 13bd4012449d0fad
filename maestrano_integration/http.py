"""One way to build HTTP sessions for platform APIs: pooled, timed out, retried safely.

Idempotent calls (GET, PUT, DELETE) are retried by urllib3 on connection errors,
5xx and 429 (honouring ``Retry-After``) with exponential backoff and jitter.
POST is never retried by the transport: a create that timed out may have been
applied, so callers make creates safe to repeat (external ids, local records
checked against the platform) and retry at their own level.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PlatformHTTPError(Exception):
    """An error answered by (or on the way to) a platform API.

    ``status`` is the HTTP status (``None`` for a network error) and ``errors``
    the platform's error payload, so callers can show the platform's messages.
    """

    def __init__(
        self, message: str, *, status: int | None = None, errors: Any = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.body = body

    @property
    def is_transient(self) -> bool:
        """Worth retrying later: network error, 429 or 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500


def build_retry(
    *,
    total: int = 3,
    backoff_factor: float = 0.5,
    backoff_jitter: float = 0.25,
    backoff_max: float = 30.0,
    methods: Iterable[str] = IDEMPOTENT_METHODS,
    statuses: Iterable[int] = RETRY_STATUSES,
) -> Retry:
    return Retry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_jitter,
        backoff_max=backoff_max,
        allowed_methods=frozenset(methods),
        status_forcelist=frozenset(statuses),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def build_session(
    *,
    auth: tuple[str, str] | None = None,
    retry: Retry | None = None,
    headers: dict[str, str] | None = None,
    pool_maxsize: int = 10,
) -> requests.Session:
    """A pooled ``requests.Session`` with ``retry`` mounted for http and https."""
    session = requests.Session()
    adapter = HTTPAdapter(
        max_retries=retry if retry is not None else build_retry(), pool_maxsize=pool_maxsize
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if auth is not None:
        session.auth = auth
    session.headers.update({"Accept": "application/json", **(headers or {})})
    return session
