"""System checks of accounts: the settings SSO needs from the project."""

from __future__ import annotations

import inspect
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, get_resolver, resolve, reverse

from maestrano_integration.conf import maestrano_settings

from . import views
from .backends import sso_backend

BACKEND = "maestrano_accounts.backends.MaestranoBackend"
MIDDLEWARE = "maestrano_accounts.middleware.MaestranoSessionMiddleware"


@checks.register("maestrano")
def check_project_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if sso_backend() is None:
        messages.append(
            checks.Error(
                f"{BACKEND!r} (or a subclass) is not in AUTHENTICATION_BACKENDS: SSO logins "
                "cannot complete.",
                hint=f'Add "{BACKEND}" to AUTHENTICATION_BACKENDS (docs/install.md).',
                id="maestrano.E020",
            )
        )
    if MIDDLEWARE not in settings.MIDDLEWARE:
        messages.append(
            checks.Warning(
                f"{MIDDLEWARE!r} is not in MIDDLEWARE: the platform session is never checked "
                "and cancelled companies keep access until their users log out.",
                hint=f'Add "{MIDDLEWARE}" after AuthenticationMiddleware (docs/install.md).',
                id="maestrano.W021",
            )
        )
    return messages


LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"


@checks.register("maestrano")
def check_sso_state_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["SSO_STATE_CACHE"]``: an alias of ``CACHES`` whose backend can hold it."""
    try:
        maestrano_settings.sso_state_cache()
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint="docs/settings.md, SSO_STATE_CACHE; docs/deploy.md for the recipe.",
                id="maestrano.E022",
            )
        ]
    return []


@checks.register("maestrano", deploy=True)
def check_sso_state_cache_shared(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A local-memory cache is per process: another worker would not know an assertion
    was used, nor find a ticket issued by this one."""
    alias = maestrano_settings.SSO_STATE_CACHE
    if not isinstance(alias, str) or alias not in settings.CACHES:
        return []  # reported by check_sso_state_cache
    if settings.CACHES[alias].get("BACKEND") != LOCAL_MEMORY_CACHE:
        return []
    return [
        checks.Error(
            f"MAESTRANO['SSO_STATE_CACHE'] = {alias!r} is a local-memory cache: each process "
            "has its own, so an assertion used in one worker could be replayed in another.",
            hint="Point it at a cache shared by every process (CACHE_URL=redis://..., "
            "docs/deploy.md) or leave it unset (the database).",
            id="maestrano.E023",
        )
    ]


@checks.register("maestrano", checks.Tags.urls)
def check_url_namespace(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The ``maestrano_accounts`` URL namespace must lead to these views: the ACS redirects
    to ``maestrano_accounts:sso-complete``. Another ``app_name = "maestrano_accounts"`` included
    before
    ``maestrano_integration.urls`` takes the namespace (Django warns, ``urls.W005``), and
    every SSO login would then fail at the ACS."""
    if "maestrano_accounts" not in get_resolver().namespace_dict:
        return []  # these views are not served here (the sandbox alone, a worker's URLconf)
    try:
        view = resolve(reverse("maestrano_accounts:sso-complete")).func
        found = inspect.unwrap(view) is inspect.unwrap(views.sso_complete)
    except NoReverseMatch:
        found = False
    if found:
        return []
    return [
        checks.Error(
            "The URL namespace 'maestrano_accounts' does not lead to the SSO completion view "
            "(maestrano_accounts:sso-complete): the ACS could not hand any login over.",
            hint="Include maestrano_integration.urls (docs/install.md); if another app also has "
            'app_name = "maestrano_accounts", include maestrano_integration.urls before it.',
            id="maestrano.E024",
        )
    ]
