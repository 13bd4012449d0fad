"""System checks of accounts: the settings SSO needs from the project."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

BACKEND = "accounts.backends.MaestranoBackend"
MIDDLEWARE = "accounts.middleware.MaestranoSessionMiddleware"


@checks.register("maestrano")
def check_project_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if BACKEND not in settings.AUTHENTICATION_BACKENDS:
        messages.append(
            checks.Error(
                f"{BACKEND!r} is not in AUTHENTICATION_BACKENDS: SSO logins cannot complete.",
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
