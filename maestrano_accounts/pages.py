"""The apps' own HTML pages: rendered whatever the project's template context processors,
and sent back only to a page of this site (:func:`local_url`).

Our templates name ``user`` and ``request``. A project whose ``TEMPLATES`` lists neither
``django.contrib.auth.context_processors.auth`` nor ``...request`` (an API-first project,
an old settings file) would otherwise get a 500 on the dashboard. When the processors are
there, they give the same values.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from maestrano_integration.conf import Preset
from maestrano_integration.setting_types import InvalidSettingType, log_once


def render_page(
    request: HttpRequest,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int | None = None,
) -> HttpResponse:
    """``django.shortcuts.render`` with ``request`` and ``user`` always in the context."""
    base = {"request": request, "user": getattr(request, "user", None)}
    return render(request, template_name, {**base, **(context or {})}, status=status)


def local_url(request: HttpRequest, url: str, *, fallback: str = "") -> str:
    """``url`` when it leads to this site (the request's host, over HTTPS when the request
    came over HTTPS), else ``fallback``: the one rule for a ``next`` a person or the
    platform may have written (``//evil.example``, ``https:evil.example``, ``/\\evil``,
    ``javascript:`` all fall back). A path (``/people/``) or an absolute URL of this host
    is kept; a bare word (``people``) is not, which ``redirect()`` would read as a URL
    name and a browser relative to the page it is on."""
    if _path_or_web_url(url) and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def _path_or_web_url(url: str) -> bool:
    if url.startswith("/"):
        return True
    try:
        return urlsplit(url).scheme in {"http", "https"}
    except ValueError:  # "http://[" : no URL at all
        return False


def sso_misconfigured_page(
    request: HttpRequest, *, preset: Preset | None, error: Exception, logger: logging.Logger
) -> HttpResponse:
    """The SSO error page (503) for a login or session whose preset cannot be used as
    configured; why goes to ``logger``, once per process for a setting of a wrong type
    (the same on every request: :func:`maestrano_integration.setting_types.log_once`)."""
    extra = {"preset": preset.name if preset else ""}
    if isinstance(error, InvalidSettingType):
        log_once(error, logger=logger, message="SSO is misconfigured: %s", **extra)
    else:
        logger.error("SSO is misconfigured: %s", error, extra=extra)
    context = {"preset": preset, "reason": "misconfigured"}
    return render_page(request, "maestrano_accounts/sso_error.html", context, status=503)
