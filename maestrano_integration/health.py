"""Readiness checks for load balancers: the databases, the broker and the platform.

Each check returns ``None`` when healthy or a short reason (never a secret or a
URL with credentials). The platform check is an authenticated GET of the
default preset's Account API with a short timeout; its result is cached for
``HEALTH["PLATFORM_CACHE_SECONDS"]`` so that probes every few seconds from many
load balancers do not load the platform.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import connections

from .conf import ImproperlyConfiguredPreset, get_preset, maestrano_settings
from .setting_types import InvalidSettingType, log_once

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    reason: str = ""


def check_databases() -> list[CheckResult]:
    aliases = maestrano_settings.section("HEALTH")["DATABASES"] or list(settings.DATABASES)
    results: list[CheckResult] = []
    for alias in aliases:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as error:
            # The driver's message names hosts, ports, databases and roles: logged, not
            # answered (the probe is public).
            logger.warning(
                "Readiness: database %s unreachable: %s: %s",
                alias,
                type(error).__name__,
                str(error)[:300],
            )
            results.append(CheckResult(f"database:{alias}", False, type(error).__name__))
        else:
            results.append(CheckResult(f"database:{alias}", True))
    return results


def broker_url() -> str | None:
    return maestrano_settings.section("HEALTH")["BROKER_URL"] or getattr(
        settings, "CELERY_BROKER_URL", None
    )


def check_broker() -> list[CheckResult]:
    url = broker_url()
    if not url:
        return []
    from kombu import Connection

    timeout = float(maestrano_settings.section("HEALTH")["BROKER_TIMEOUT"])
    try:
        with Connection(url, connect_timeout=timeout) as connection:
            # kombu takes seconds as a float (celery-types says int).
            connection.ensure_connection(max_retries=1, timeout=timeout)  # type: ignore[arg-type]
    except Exception as error:
        return [CheckResult("broker", False, f"{type(error).__name__}")]
    return [CheckResult("broker", True)]


_platform_cache: dict[tuple[str, str], tuple[float, CheckResult]] = {}
_platform_lock = threading.Lock()


def check_platform() -> list[CheckResult]:
    if not maestrano_settings.section("HEALTH")["CHECK_PLATFORM"]:
        return []
    try:
        preset = get_preset()
    except ImproperlyConfiguredPreset as error:
        return [CheckResult("platform", False, str(error))]
    if not preset.api_id:
        return [CheckResult("platform", False, "the default preset has no api id")]
    key = (preset.account_api_url, preset.api_id)
    ttl = float(maestrano_settings.section("HEALTH")["PLATFORM_CACHE_SECONDS"])
    now = time.monotonic()
    with _platform_lock:
        cached = _platform_cache.get(key)
    if cached is not None and now - cached[0] < ttl:
        return [cached[1]]
    result = _probe_platform(
        url=preset.account_api_url + "groups",
        auth=(preset.api_id, preset.api_key),
        timeout=float(maestrano_settings.section("HEALTH")["PLATFORM_TIMEOUT"]),
    )
    with _platform_lock:
        _platform_cache[key] = (now, result)
    return [result]


def _probe_platform(*, url: str, auth: tuple[str, str], timeout: float) -> CheckResult:
    from .http import build_retry, build_session

    try:
        with build_session(auth=auth, retry=build_retry(total=0), api="account") as http:
            response = http.get(url, params={"limit": 1}, timeout=timeout)
    except requests.RequestException as error:
        return CheckResult("platform", False, f"Account API unreachable ({type(error).__name__})")
    if response.status_code in (401, 403):
        return CheckResult(
            "platform", False, f"Account API refused the credentials (HTTP {response.status_code})"
        )
    if not 200 <= response.status_code < 300:
        return CheckResult("platform", False, f"Account API answered HTTP {response.status_code}")
    return CheckResult("platform", True)


def readiness() -> list[CheckResult]:
    """Every check; a ``MAESTRANO`` value of a wrong type (``maestrano.E039``) fails as
    ``settings``, logged with what is wrong (the probe is public: not answered)."""
    try:
        return [*check_databases(), *check_broker(), *check_platform()]
    except InvalidSettingType as error:
        log_once(error, logger=logger, message="Readiness: %s")
        return [CheckResult("settings", False, "a MAESTRANO setting has a wrong type")]
