"""Platform sessions: opened at login, checked by apps (docs/protocol.md, 'Session check'),
invalidated.

The recheck interval (``settings.MAESTRANO_SANDBOX["SESSION_RECHECK_SECONDS"]``, default
3 minutes) is how long an app may trust a session before asking again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from .models import Group, PlatformSession, PlatformUser, RegisteredApp

logger = logging.getLogger(__name__)

DEFAULT_RECHECK_SECONDS = 180


def iso_utc(moment: dt.datetime) -> str:
    """``2026-01-31T12:00:00Z``: the time format of SAML attributes and API answers (the
    year in four digits, ``0001`` too: ``strftime`` writes ``1``)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def recheck_interval() -> dt.timedelta:
    seconds = settings.MAESTRANO_SANDBOX.get("SESSION_RECHECK_SECONDS", DEFAULT_RECHECK_SECONDS)
    return dt.timedelta(seconds=float(seconds))


def recheck_time() -> dt.datetime:
    """When an app should check a session again: now + the recheck interval."""
    return timezone.now() + recheck_interval()


def open_session(*, app: RegisteredApp, user: PlatformUser, group: Group) -> PlatformSession:
    session = PlatformSession.objects.create(app=app, user=user, group=group)
    logger.info(
        "Opened platform session",
        extra={"app": app.api_id, "user": user.uid, "group": group.uid, "session": session.pk},
    )
    return session


def check_session(*, app: RegisteredApp, user_uid: str, token: str) -> bool:
    """Whether ``token`` is a live session of ``user_uid`` issued to ``app`` (records the check)."""
    if not token:
        return False
    session = (
        PlatformSession.objects.filter(app=app, user__uid=user_uid, token=token)
        .only("pk", "invalidated_at")
        .first()
    )
    if session is None:
        return False
    PlatformSession.objects.filter(pk=session.pk).update(last_checked_at=timezone.now())
    return session.invalidated_at is None


def invalidate_user_sessions(*, user: PlatformUser) -> int:
    """Log the user out everywhere: every live session of theirs answers ``valid: false`` now."""
    count = PlatformSession.objects.filter(user=user, invalidated_at__isnull=True).update(
        invalidated_at=timezone.now()
    )
    logger.info("Invalidated platform sessions", extra={"user": user.uid, "count": count})
    return count
