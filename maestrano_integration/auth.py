"""HTTP basic authentication of platform calls: one place, constant time, per preset.

The platform authenticates to us (metadata, account webhooks, Connec!
notifications) with ``api.id:api.key`` of the preset the URL belongs to; the
views use it through
:class:`maestrano_integration.platform_api.PlatformBasicAuthentication`.

Refused authentications are limited per client address, for every endpoint that
takes HTTP basic credentials (those views and the metrics endpoint), by one rule
(``MAESTRANO["AUTH_FAILURES"]``, :class:`~maestrano_integration.conf.AuthFailureSettings`):
after ``LIMIT`` refusals from one address within ``WINDOW_SECONDS``, the address is
answered 429 (``Retry-After``) for ``WINDOW_SECONDS``, before any credential is checked
(:func:`blocked_seconds`, :func:`record_refused`). DRF's throttles run after
authentication, so they never slowed a guesser. The address is ``REMOTE_ADDR`` (an IPv6
address by its /64 network), or behind reverse proxies the one DRF's ``NUM_PROXIES``
picks out of ``X-Forwarded-For`` (:func:`request_address`, :func:`client_address`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from typing import Any

from django.core.cache import BaseCache, caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .conf import AuthFailureSettings, Preset, maestrano_settings
from .strict_input import is_safe_text

#: Refused credentials and blocked addresses are logged here (alerts read it).
logger = logging.getLogger("maestrano_integration.auth")

# A real Authorization header for api.id:api.key is well under this; anything
# longer is refused before decoding.
MAX_AUTHORIZATION_HEADER_LENGTH = 4096


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """Return ``(username, password)`` from a ``Basic`` header, or ``None`` if malformed.

    Malformed: not ``Basic``, not base64, not UTF-8, no ``:``, or holding a NUL
    character (no api id or key has one, and the platform side looks ids up in
    its database, which refuses NUL in a query).
    """
    if not header or len(header) > MAX_AUTHORIZATION_HEADER_LENGTH:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, separator, password = decoded.partition(":")
    if not separator or not is_safe_text(decoded):
        return None
    return username, password


def credentials_match(*, preset: Preset, username: str, password: str) -> bool:
    """Constant-time check of ``username:password`` against the preset's api id and key."""
    return basic_credentials_match(
        given=(username, password), expected=(preset.api_id, preset.api_key)
    )


def basic_credentials_match(*, given: tuple[str, str], expected: tuple[str, str]) -> bool:
    """Constant-time check of the ``given`` user name and password against ``expected``;
    an expected pair with an empty part matches nothing (no credential is "")."""
    user, password = expected
    if not user or not password:
        return False
    user_ok = hmac.compare_digest(given[0].encode(), user.encode())
    password_ok = hmac.compare_digest(given[1].encode(), password.encode())
    return user_ok & password_ok


def configured_basic_auth(value: Any) -> tuple[str, str] | None:
    """A setting's basic auth credentials (``METRICS["BASIC_AUTH"]``): a pair of non-empty
    strings, ``("user", "password")``, or ``None`` for anything else (a ``"user:password"``
    string, one item, an empty password), which then opens nothing (check
    ``maestrano.E037`` names it)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        return None
    user, password = value
    if not (isinstance(user, str) and isinstance(password, str) and user and password):
        return None
    return user, password


# --- refused authentications per client address ----------------------------------------

#: The cache keys' prefix; the address in a key is hashed (any text fits any backend).
_KEY_PREFIX = "maestrano:auth-failures"
#: The longest client address text logged or counted as it is.
_MAX_ADDRESS_CHARS = 100


def request_address(request: Any) -> str:
    """The address a call came from: ``REMOTE_ADDR``, never a header the client writes,
    unless the project says how many reverse proxies stand in front of it with DRF's own
    ``REST_FRAMEWORK["NUM_PROXIES"]``: then the address DRF's throttles identify a client
    by (that many entries from the right of ``X-Forwarded-For``, each proxy appending the
    address it saw). One rule for the refused authentications, the metrics endpoint's
    allowed addresses and the log of a refused login."""
    if api_settings.NUM_PROXIES is not None:
        identified = BaseThrottle().get_ident(request)
    else:
        identified = request.META.get("REMOTE_ADDR")
    return str(identified or "")[:_MAX_ADDRESS_CHARS]


def client_address(request: Any) -> str:
    """The client address refusals are counted by (:func:`request_address`). An IPv6
    address counts as its /64 network (one host usually holds a whole /64); an
    IPv4-mapped one as its IPv4 address."""
    raw = request_address(request)
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _limits() -> tuple[AuthFailureSettings, BaseCache] | None:
    """The settings and the counting cache, or ``None`` when the limit is off or cannot be
    applied (a bad setting, reported by check ``maestrano.E036``: logged, and the calls
    are authenticated as usual)."""
    try:
        limits = maestrano_settings.auth_failures()
        if limits.limit <= 0:
            return None
        if not 0 < limits.window_seconds < float("inf"):
            raise ValueError(f"WINDOW_SECONDS is {limits.window_seconds!r}")
        return limits, caches[limits.cache]
    except Exception as error:  # a bad setting or an unknown alias: never a 500
        logger.error("Refused authentications are not limited: %s", error)
        return None


def _keys(address: str) -> tuple[str, str]:
    digest = hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{_KEY_PREFIX}:window:{digest}", f"{_KEY_PREFIX}:blocked:{digest}"


def _timeout(seconds: float) -> int:
    # Whole seconds, at least one: some backends (Redis) truncate a fraction to 0, gone at once.
    return max(1, math.ceil(seconds))


def blocked_seconds(request: Any) -> int | None:
    """Seconds the client's address stays blocked (``Retry-After``), or ``None`` (not
    blocked, or the limit off). Read before any credential is checked; a cache that
    fails blocks nobody (logged)."""
    found = _limits()
    if found is None:
        return None
    _, cache = found
    _, blocked_key = _keys(client_address(request))
    try:
        until = cache.get(blocked_key)
    except Exception as error:  # the cache is down: authenticate as usual
        logger.warning("Refused authentications not limited: the cache failed (%s)", error)
        return None
    if not isinstance(until, int | float):
        return None
    left = until - time.time()
    return math.ceil(left) if left > 0 else None


def record_refused(request: Any) -> None:
    """Count a refused authentication of the client's address; the refusal that reaches
    ``LIMIT`` within the window blocks the address for ``WINDOW_SECONDS`` (logged once,
    at WARNING, with the address and never the credentials)."""
    found = _limits()
    if found is None:
        return
    limits, cache = found
    address = client_address(request)
    window_key, blocked_key = _keys(address)
    window = float(limits.window_seconds)
    now = time.time()
    try:
        # The window starts at the address's first refusal; its count is keyed by the
        # window's end, so a backend whose incr() rewrites the timeout (the database and
        # file caches) never stretches a window.
        cache.add(window_key, now + window, timeout=_timeout(window))
        end = cache.get(window_key)
        end = end if isinstance(end, int | float) else now + window
        count_key = f"{window_key}:{int(end * 1000)}"
        cache.add(count_key, 0, timeout=_timeout(end - now))
        try:
            count = cache.incr(count_key)
        except ValueError:  # expired between add and incr: a new window's first refusal
            cache.set(count_key, 1, timeout=_timeout(window))
            count = 1
        if count >= limits.limit and cache.add(blocked_key, now + window, timeout=_timeout(window)):
            logger.warning(
                "Blocked basic-auth calls from %s for %d s: %d refused authentications within %d s",
                address,
                math.ceil(window),
                count,
                math.ceil(window),
                extra={"client_address": address},
            )
    except Exception as error:  # the cache is down: the refusal is answered all the same
        logger.warning("Refused authentication not counted: the cache failed (%s)", error)


def forget_refused(*, address: str) -> None:
    """Unblock ``address`` (as :func:`client_address` gives it) and forget its refusals
    (an operator, in ``manage.py shell``, after fixing the platform's credentials)."""
    found = _limits()
    if found is None:
        return
    _, cache = found
    window_key, blocked_key = _keys(address)
    end = cache.get(window_key)
    keys = [window_key, blocked_key]
    if isinstance(end, int | float):
        keys.append(f"{window_key}:{int(end * 1000)}")
    cache.delete_many(keys)
