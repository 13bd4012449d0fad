"""Who is calling the sandbox: HTTP basic auth of a registered app, checked in constant time.

One place for the platform side's credential check (Connec! API, Account API,
session check, fault injection), like ``maestrano_integration.auth`` is the
one place for the app side's.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from maestrano_integration.auth import parse_basic_authorization

from .models import RegisteredApp

# Compared against when the api id is unknown, so an unknown id costs the same
# time as a wrong key and does not reveal which api ids exist.
_DUMMY_KEY = "x" * 32
_MISSING = object()


def credentials_from_request(request: HttpRequest) -> tuple[str, str] | None:
    """``(api_id, api_key)`` from the request's ``Authorization: Basic`` header, if well formed."""
    return parse_basic_authorization(request.META.get("HTTP_AUTHORIZATION"))


def authenticate_credentials(*, api_id: str, api_key: str) -> RegisteredApp | None:
    """The registered app owning ``api_id:api_key``, or ``None`` (constant-time key check)."""
    # The fault injection middleware reads the app's faults on every call: same query.
    apps = RegisteredApp.objects.select_related("fault_config")
    app = apps.filter(api_id=api_id).first() if api_id else None
    expected = app.api_key if app is not None and app.api_key else _DUMMY_KEY
    key_ok = hmac.compare_digest(api_key.encode(), expected.encode())
    return app if app is not None and app.api_key and key_ok else None


def authenticate_app(request: HttpRequest) -> RegisteredApp | None:
    """The registered app authenticated by the request's basic auth, or ``None``.

    The result is cached on the request so the fault injection middleware and
    the view share one database lookup.
    """
    cached = getattr(request, "_sandbox_authenticated_app", _MISSING)
    if cached is None or isinstance(cached, RegisteredApp):
        return cached
    credentials = credentials_from_request(request)
    app = (
        authenticate_credentials(api_id=credentials[0], api_key=credentials[1])
        if credentials is not None
        else None
    )
    request._sandbox_authenticated_app = app  # type: ignore[attr-defined]
    return app


class AppAuthentication(BaseAuthentication):
    """The DRF authentication of the sandbox's APIs (Account API, Connec! API v2): a
    registered app's ``api_id:api_key`` (:func:`authenticate_app`); ``request.auth`` is the
    :class:`RegisteredApp`. Each API's exception handler words the 401 its own way."""

    def authenticate(self, request: Any) -> tuple[AnonymousUser, RegisteredApp]:
        app = authenticate_app(request._request)
        if app is None:
            raise exceptions.AuthenticationFailed("Invalid API token")
        return AnonymousUser(), app

    def authenticate_header(self, request: Any) -> str:
        return 'Basic realm="maestrano"'


class IsApp(BasePermission):
    """Only calls authenticated by :class:`AppAuthentication`."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.auth, RegisteredApp)
