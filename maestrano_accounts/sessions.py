"""The platform session (docs/protocol.md, 'Session check') kept inside the Django session.

After an SSO login the Django session holds ``maestrano = {uid, session,
session_recheck, group_uid, preset}``. Until ``session_recheck`` the login is
trusted; after it, :func:`check_platform_session` asks the platform whether
the user is still logged in there.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.http import HttpRequest
from django.utils import timezone

from maestrano_integration.conf import Preset, maestrano_settings
from maestrano_integration.http import build_retry, build_session
from maestrano_integration.saml import SsoAttributes
from maestrano_integration.times import platform_time_or_none

logger = logging.getLogger(__name__)

# The session keys this app writes, all prefixed so that a project's own keys never meet them.
SESSION_KEY = "maestrano"
CURRENT_COMPANY_KEY = "maestrano_current_company_id"


def _fallback_recheck() -> dt.datetime:
    return timezone.now() + dt.timedelta(
        seconds=float(maestrano_settings.SSO_SESSION_RECHECK_SECONDS)
    )


def store_platform_session(
    request: HttpRequest, *, preset: Preset, attributes: SsoAttributes, company_id: int
) -> None:
    """Remember the platform session and the current company after an SSO login."""
    recheck = attributes.session_recheck or _fallback_recheck()
    request.session[SESSION_KEY] = {
        "uid": attributes.uid,
        "session": attributes.session,
        "session_recheck": recheck.isoformat(),
        "group_uid": attributes.group_uid,
        "preset": preset.name,
    }
    request.session[CURRENT_COMPANY_KEY] = company_id


def platform_session(request: HttpRequest) -> dict[str, Any] | None:
    data = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    return data if isinstance(data, dict) else None


def platform_session_preset(request: HttpRequest) -> str | None:
    """The preset (marketplace) the session logged in through, or ``None`` for a login
    without SSO (a Django user through the admin's login form, say).

    An SSO session works only in companies of that preset: its platform session is
    checked with that preset's IdP and credentials, and says nothing of another.
    """
    data = platform_session(request)
    if data is None:
        return None
    return str(data.get("preset", ""))


def recheck_due(data: dict[str, Any], *, now: dt.datetime | None = None) -> bool:
    recheck = platform_time_or_none(data.get("session_recheck"))
    return recheck is None or recheck <= (now or timezone.now())


def set_recheck(request: HttpRequest, recheck: dt.datetime) -> None:
    data = dict(platform_session(request) or {})
    data["session_recheck"] = recheck.isoformat()
    request.session[SESSION_KEY] = data


class SessionStatus(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class SessionCheck:
    status: SessionStatus
    recheck: dt.datetime


def check_platform_session(*, preset: Preset, uid: str, session_token: str) -> SessionCheck:
    """Ask the platform whether ``uid``'s session is still valid.

    ``GET {api.host}{api.base}auth/saml/{uid}?session=...`` with basic auth and
    a short timeout (``SSO_SESSION_CHECK_TIMEOUT``), no transport retries: this
    runs inside a page request. A network error, a 5xx or an unreadable answer
    is ``UNREACHABLE``: the user keeps the session until the next window
    (``SSO_SESSION_RECHECK_SECONDS``), never locked out by an outage. The uid is one
    path segment (``maestrano_integration.http.path_segment``): a ``/`` in it never
    turns the check into another call to the platform with our credentials; a uid no
    path can carry (``.``, ``..``) cannot be asked about, ``UNREACHABLE`` too.
    ``{"valid": false}`` or a 404 (unknown session) is ``INVALID``.
    """
    context = {"preset": preset.name, "uid": uid}
    timeout = float(maestrano_settings.SSO_SESSION_CHECK_TIMEOUT)
    try:
        url = preset.session_check_url(uid)  # the uid one path segment, whatever it holds
        with build_session(
            auth=(preset.api_id, preset.api_key), retry=build_retry(total=0), api="session_check"
        ) as http:
            response = http.get(url, params={"session": session_token}, timeout=timeout)
    except (requests.RequestException, ValueError) as error:
        logger.warning(
            "Platform session check failed (%s); keeping the session until the next check",
            type(error).__name__,
            extra=context,
        )
        return SessionCheck(SessionStatus.UNREACHABLE, _fallback_recheck())
    if response.status_code == 404:
        logger.info("Platform session unknown to the platform", extra=context)
        return SessionCheck(SessionStatus.INVALID, timezone.now())
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("valid"), bool):
        log = logger.error if response.status_code in (401, 403) else logger.warning
        log(
            "Platform session check answered %s; keeping the session until the next check",
            response.status_code,
            extra=context,
        )
        return SessionCheck(SessionStatus.UNREACHABLE, _fallback_recheck())
    if not body["valid"]:
        logger.info("Platform session no longer valid", extra=context)
        return SessionCheck(SessionStatus.INVALID, timezone.now())
    return SessionCheck(
        SessionStatus.VALID, platform_time_or_none(body.get("recheck")) or _fallback_recheck()
    )
