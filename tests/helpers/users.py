"""Local users linked to platform uids, as SSO creates them (through ``PlatformIdentity``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from maestrano_accounts.models import PlatformIdentity


def platform_user(uid: str, *, preset: str = "maestrano", **fields: Any) -> Any:
    """The local user of platform ``uid`` (created with ``fields`` if new)."""
    identity = PlatformIdentity.objects.filter(preset=preset, uid=uid).first()
    if identity is not None:
        return identity.user
    user_model = get_user_model()
    fields.setdefault(user_model.USERNAME_FIELD, uid.replace(".", "_"))
    user = user_model._default_manager.create(**fields)
    PlatformIdentity.objects.create(user=user, preset=preset, uid=uid)
    return user


def user_of(uid: str, *, preset: str = "maestrano") -> Any:
    """The local user linked to platform ``uid`` (raises if none)."""
    return PlatformIdentity.objects.select_related("user").get(preset=preset, uid=uid).user


def uid_of(user: Any, *, preset: str = "maestrano") -> str:
    """The platform uid linked to ``user`` (``""`` if none)."""
    identity = PlatformIdentity.objects.filter(user=user, preset=preset).first()
    return identity.uid if identity else ""


def session_user_pk(http: Any) -> int | None:
    """The pk of the user logged in by the session cookie of ``http`` (a ``requests``
    session against the live server), or ``None``."""
    from importlib import import_module

    from django.conf import settings

    key = http.cookies.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key).load()
    return int(data["_auth_user_id"]) if "_auth_user_id" in data else None


def log_in_to_company(
    client: Any, company: Any, *, role: str = "Admin", username: str = "ada"
) -> Any:
    """Log the Django test ``client`` in as a member of ``company`` with ``role`` (the user
    made once), with ``company`` current; returns the user."""
    from django.contrib.auth import get_user_model

    from maestrano_accounts.models import Membership
    from maestrano_accounts.sessions import CURRENT_COMPANY_KEY

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user = get_user_model().objects.create_user(username)
        Membership.objects.create(user=user, company=company, role=role)
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return user


def sso_browser(user: Any, company: Any, *, uid: str, preset: str | None = None) -> Any:
    """A Django test client logged in as ``user`` through SSO, as the SSO completion leaves
    the session: the platform session of ``preset`` (``company``'s by default), not due for
    a recheck, and ``company`` current."""
    import datetime as dt

    from django.test import Client

    from maestrano_accounts.sessions import CURRENT_COMPANY_KEY, SESSION_KEY

    browser = Client()
    browser.force_login(user)
    session = browser.session
    session[SESSION_KEY] = {
        "uid": uid,
        "session": "platform-session",
        "session_recheck": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "group_uid": company.group_uid,
        "preset": preset or company.preset,
    }
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return browser
