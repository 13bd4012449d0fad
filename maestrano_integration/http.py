"""The HTTP policy of every platform call: sessions, what is worth retrying, backoff.

Idempotent calls (GET, PUT, DELETE) are retried by urllib3 on connection errors,
5xx and 429 (honouring ``Retry-After``) with exponential backoff and jitter.
POST is never retried by the transport: a create that timed out may have been
applied, so callers make creates safe to repeat (external ids, local records
checked against the platform) and retry at their own level.

What a failure means is decided here for every caller (import, push, inbox,
billing): a network error, 429 or 5xx is *transient* (retried later with
:func:`backoff_delay`); a 401 is an *authentication* failure (our credentials were
refused: never retried automatically, the work is kept with its reason until the
credentials are fixed and it is retried by hand); any other 4xx is *permanent*.
A network error is also *ambiguous* unless the connection was never made
(:func:`may_have_arrived`): after a timeout or a connection dropped once the request
was written, a create may have been applied (or may still be).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers of a gateway in front of the platform, not of the platform itself (bad gateway,
#: gateway timeout): the platform may have applied the request all the same.
GATEWAY_STATUSES = frozenset({502, 504})


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

    @property
    def outcome_unknown(self) -> bool:
        """No success was answered, yet the platform may have applied the request: a
        gateway's answer (:data:`GATEWAY_STATUSES`). A create must not be sent again
        before looking on the platform for it."""
        return self.status in GATEWAY_STATUSES

    @property
    def is_authentication_failure(self) -> bool:
        """Our credentials were refused (401): retrying cannot help until they are fixed."""
        return self.status == 401


#: Why a text is refused by :func:`path_segment`, in the words a parked record's reason uses.
NOT_ONE_SEGMENT = "not one URL path segment"


def path_segment_problem(value: object) -> str | None:
    """Why ``value`` cannot be one segment of a URL's path (:data:`NOT_ONE_SEGMENT`), or
    ``None``: an empty value, ``.`` and ``..`` name no resource whatever their encoding (a
    server may decode ``%2E``). The rule of :func:`path_segment`, for a caller that sets
    the value aside with its reason instead of failing (the push: a local key that
    cannot be our external id)."""
    return NOT_ONE_SEGMENT if str(value) in {"", ".", ".."} else None


def path_segment(value: object) -> str:
    """``value`` as one segment of a platform URL's path (a group uid, a record or bill id,
    a user uid): every character but RFC 3986's unreserved ones percent-encoded.

    Those values come from the platform and from the data other applications write (a
    Connec! reference), and our credentials open every group of the app: a ``/``, ``?``
    or ``#`` left as it is would make the id name another path (``../../cld-2/people/…``:
    another group's record), a query or a fragment. An empty value, ``.`` and ``..``
    (:func:`path_segment_problem`) are refused with ``ValueError``.
    """
    text = str(value)
    if (problem := path_segment_problem(text)) is not None:
        raise ValueError(f"{problem}: {text!r}")
    return quote(text, safe="")


def flatten_errors(errors: Any) -> list[str]:
    """The platform's error payload (``{"field": ["message", ...]}``, a list or a text) as
    ``"field: message"`` texts."""
    if not errors:
        return []
    if isinstance(errors, Mapping):
        messages: list[str] = []
        for name, value in errors.items():
            values = value if isinstance(value, list | tuple) else [value]
            messages.extend(f"{name}: {message}" for message in values)
        return messages
    if isinstance(errors, list | tuple):
        return [str(message) for message in errors]
    return [str(errors)]


def sent_credentials(*, username: str, password: str) -> tuple[str, ...]:
    """The secrets a call with basic auth ``username:password`` sent, as an answer could
    echo them: the password and the ``Authorization`` header's token (for ``hide`` of
    :func:`answer_reason`)."""
    if not password:
        return ()
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return (password, token)


#: At most this many characters of an error answer's reason go into a message.
REASON_MAX_CHARS = 200
#: A larger body is not read for a reason (an error page, not a reason).
_REASON_MAX_BODY_BYTES = 64 * 1024
#: The keys of a JSON error body that hold its reason, in this order.
_REASON_KEYS = ("error", "message", "detail", "title")


def answer_reason(response: requests.Response, *, hide: Collection[str] = ()) -> str:
    """What an error answer says of its cause, for a message a person reads.

    The JSON body's ``error``, ``message``, ``detail`` or ``title`` (a text, or an object
    holding one), else its ``errors`` (the Account API's envelope, :func:`flatten_errors`;
    Connec!'s list of error objects, each read the same way), else a
    plain-text body; ``""`` when it says nothing usable (empty, an HTML page, over 64 KiB).
    On one line, without control or format characters, every text of ``hide`` (the
    credentials sent) replaced by ``***`` before it is cut to :data:`REASON_MAX_CHARS`."""
    content = response.content or b""
    if len(content) > _REASON_MAX_BODY_BYTES:
        return ""
    try:
        text = _json_reason(response.json())
    except (ValueError, RecursionError):  # not JSON, or nested beyond the parser's stack
        content_type = response.headers.get("Content-Type", "").lower()
        text = "" if "html" in content_type or content.lstrip().startswith(b"<") else response.text
    return _one_line(text, hide)


def document_reason(document: Any, *, hide: Collection[str] = ()) -> str:
    """:func:`answer_reason`'s rule for an answer already parsed from JSON (one result of a
    Connec! batch): its reason on one line, ``hide`` replaced by ``***``, cut to
    :data:`REASON_MAX_CHARS`; ``""`` when it says nothing usable."""
    return _one_line(_json_reason(document), hide)


def _one_line(text: str, hide: Collection[str]) -> str:
    # Hidden as sent, and once on one line (a secret with a space or a control character).
    text = _hidden(text, hide)
    text = _hidden(" ".join("".join(c if c.isprintable() else " " for c in text).split()), hide)
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"


def _hidden(text: str, secrets: Iterable[str]) -> str:
    # The longest first: a key that is part of the secret must not leave the rest of it.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def _json_reason(document: Any, *, depth: int = 0) -> str:
    if isinstance(document, str):
        return document
    if depth > 3:
        return ""
    if isinstance(document, Mapping):
        for key in _REASON_KEYS:
            found = _json_reason(document.get(key), depth=depth + 1)
            if found:
                return found
        errors = document.get("errors")
        if isinstance(errors, list):  # Connec!'s [{"title", "detail", ...}], or texts
            return _json_reason(errors, depth=depth + 1)
        return "; ".join(flatten_errors(errors))
    if isinstance(document, list):
        return "; ".join(
            found for item in document if (found := _json_reason(item, depth=depth + 1))
        )
    return ""


def may_have_arrived(error: requests.RequestException) -> bool:
    """Whether a request that got no answer may still have reached the server.

    ``False`` only when the connection itself failed (refused, unknown host, connect
    timeout): nothing was sent. A read timeout or a connection closed after the
    request was written leaves the outcome unknown.
    """
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        if isinstance(reason, NewConnectionError):
            return False
    return True


def backoff_delay(*, attempt: int, base: float, cap: float, jitter: float = 0.5) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``base * 2**attempt``, capped at ``cap``, then scaled by a random factor in
    ``[1 - jitter, 1]`` so that clients failing together do not retry together.
    """
    delay = min(float(cap), float(base) * 2 ** max(attempt, 0))
    return delay * (1 - jitter * random.random())  # noqa: S311 (jitter, not security)


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


class InstrumentedAdapter(HTTPAdapter):
    """Counts every call in ``maestrano_platform_api_calls_total`` by ``api`` and status.

    An adapter rather than a response hook so that calls that got no answer
    (connection refused, timeout) are counted too, as status ``error``.
    """

    def __init__(self, *, api: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        from .metrics import record_platform_api_call

        started = time.perf_counter()
        status: int | None = None
        try:
            response = super().send(request, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            record_platform_api_call(
                api=self.api, status=status, duration_seconds=time.perf_counter() - started
            )


def build_session(
    *,
    auth: tuple[str, str] | None = None,
    retry: Retry | None = None,
    headers: dict[str, str] | None = None,
    pool_maxsize: int = 10,
    api: str | None = None,
) -> requests.Session:
    """A pooled ``requests.Session`` with ``retry`` mounted for http and https.

    ``api`` names the platform API the session calls (``account``, ``connec``...):
    its calls are then counted in the metrics (:mod:`maestrano_integration.metrics`).
    """
    session = requests.Session()
    max_retries = retry if retry is not None else build_retry()
    adapter = (
        InstrumentedAdapter(api=api, max_retries=max_retries, pool_maxsize=pool_maxsize)
        if api
        else HTTPAdapter(max_retries=max_retries, pool_maxsize=pool_maxsize)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if auth is not None:
        session.auth = auth
    session.headers.update({"Accept": "application/json", **(headers or {})})
    return session
