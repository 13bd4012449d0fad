"""The authentication backend of SSO logins.

Add ``"accounts.backends.MaestranoBackend"`` to ``AUTHENTICATION_BACKENDS``. The
completion view calls :func:`django.contrib.auth.authenticate` with the
validated login; this backend provisions the company, the user and the
membership (:func:`accounts.services.provision_sso_login`) and returns the user,
so that :func:`django.contrib.auth.login` records this backend, as for any other
way of logging in. Other calls of ``authenticate`` (username and password) are
not this backend's business: it answers ``None``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from maestrano_integration.conf import Preset
from maestrano_integration.saml import SsoAttributes

from . import services

#: Attribute of the returned user holding the :class:`accounts.services.SsoLogin`.
SSO_LOGIN_ATTRIBUTE = "maestrano_sso_login"


class MaestranoBackend(ModelBackend):
    """Authenticates a validated SSO login; permissions as Django's ``ModelBackend``."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        *,
        maestrano_preset: Preset | None = None,
        maestrano_attributes: SsoAttributes | None = None,
        **credentials: Any,
    ) -> Any:
        if maestrano_preset is None or maestrano_attributes is None:
            return None
        result = services.provision_sso_login(
            preset=maestrano_preset, attributes=maestrano_attributes
        )
        setattr(result.user, SSO_LOGIN_ATTRIBUTE, result)
        # An adapter may deliberately refuse a user (inactive): no login then.
        return result.user if self.user_can_authenticate(result.user) else None
