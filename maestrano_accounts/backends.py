"""The authentication backend of SSO logins.

Add ``"maestrano_accounts.backends.MaestranoBackend"`` (or a subclass of it) to
``AUTHENTICATION_BACKENDS``. The completion view hands the validated login to
:func:`authenticate_sso`, which calls that backend: it provisions the company, the
user and the membership (:func:`maestrano_accounts.services.provision_sso_login`) and
returns the user, and :func:`django.contrib.auth.login` records the backend, as
for any other way of logging in. Other backends take no part in an SSO login (its
credential is an assertion the platform signed, not a password), as with
django-allauth's social logins; going straight to the one backend also spares
Django's ``authenticate()`` matching every backend's signature on each login
(docs/performance.md). ``authenticate()`` with a username and password is not
this backend's business: it answers ``None``.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.conf import settings
from django.contrib.auth import load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest

from maestrano_integration.conf import Preset
from maestrano_integration.saml import SsoAttributes

from . import services

#: Attribute of the returned user holding the :class:`maestrano_accounts.services.SsoLogin`.
SSO_LOGIN_ATTRIBUTE = "maestrano_sso_login"


class MaestranoBackend(ModelBackend):
    """Authenticates a validated SSO login; permissions as Django's ``ModelBackend``."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        *,
        maestrano_preset: Preset | None = None,
        maestrano_attributes: SsoAttributes | None = None,
        maestrano_validated_at: dt.datetime | None = None,
        **credentials: Any,
    ) -> Any:
        if maestrano_preset is None or maestrano_attributes is None:
            return None
        result = services.provision_sso_login(
            preset=maestrano_preset,
            attributes=maestrano_attributes,
            validated_at=maestrano_validated_at,
        )
        setattr(result.user, SSO_LOGIN_ATTRIBUTE, result)
        # An adapter may deliberately refuse a user (inactive): no login then.
        # Any AUTH_USER_MODEL (the stubs type ModelBackend with the example project's).
        can = self.user_can_authenticate(result.user)  # type: ignore[arg-type]
        return result.user if can else None


def authenticate_sso(
    request: HttpRequest,
    *,
    preset: Preset,
    attributes: SsoAttributes,
    validated_at: dt.datetime | None = None,
) -> Any | None:
    """The user of a validated SSO login, with ``user.backend`` set for ``login()``;
    ``None`` when no :class:`MaestranoBackend` is installed (a system check reports it)
    or the backend refuses the user (``user_login_failed`` is sent then, as
    ``authenticate()`` sends it; the credentials named, nothing secret). ``validated_at``:
    the time the login counts from, when its assertion was issued or accepted if earlier
    (see :func:`services.provision_sso_login`)."""
    found = sso_backend()
    if found is None:
        return None
    backend, path = found
    user = backend.authenticate(
        request,
        maestrano_preset=preset,
        maestrano_attributes=attributes,
        maestrano_validated_at=validated_at,
    )
    if user is None:
        user_login_failed.send(
            sender=__name__,
            credentials={"maestrano_preset": preset.name, "maestrano_uid": attributes.uid},
            request=request,
        )
        return None
    user.backend = path
    return user


def sso_backend() -> tuple[MaestranoBackend, str] | None:
    """The first :class:`MaestranoBackend` (or subclass) of ``AUTHENTICATION_BACKENDS``,
    with its dotted path."""
    return _sso_backend(tuple(settings.AUTHENTICATION_BACKENDS))


@functools.lru_cache(maxsize=8)
def _sso_backend(paths: tuple[str, ...]) -> tuple[MaestranoBackend, str] | None:
    for path in paths:
        backend = load_backend(path)
        if isinstance(backend, MaestranoBackend):
            return backend, path
    return None
