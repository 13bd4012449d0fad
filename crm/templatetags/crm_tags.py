"""Template tags of the example application's layout and dashboard.

``base.html`` asks :func:`current_company_tag` for the nav bar, and the
dashboard template asks :func:`company_dashboard` for the sections the
reusable ``accounts`` dashboard view knows nothing about (billing, sync),
so that view stays the single owner of ``/dashboard/``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, reverse

from accounts.models import Company
from accounts.selectors import current_company
from accounts.sessions import platform_session
from maestrano_integration.conf import ImproperlyConfiguredPreset, get_preset

from .. import dashboard

register = template.Library()


@register.simple_tag(takes_context=True, name="current_company")
def current_company_tag(context: dict[str, Any]) -> Company | None:
    """``{% current_company as company %}``: the request's company, or ``None``."""
    request = context.get("request")
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return None
    return current_company(request)


@register.simple_tag(takes_context=True)
def logout_url(context: dict[str, Any]) -> str:
    """Where "Log out" goes: the SSO logout of the login's preset (then the platform's)."""
    request = context.get("request")
    data = platform_session(request) if request is not None else None
    preset = (data or {}).get("preset")
    try:
        if preset and not get_preset(preset).is_default:
            return reverse("accounts:sso-logout-preset", kwargs={"preset": preset})
        return reverse("accounts:sso-logout")
    except (ImproperlyConfiguredPreset, NoReverseMatch):
        return "/"


@register.simple_tag
def sandbox_url() -> str:
    """The emulated platform's home page (the default preset's api host), or ``""``."""
    if not getattr(settings, "SANDBOX", {}).get("ENABLED"):
        return ""
    try:
        return get_preset().api_host + "/"
    except ImproperlyConfiguredPreset:
        return ""


@register.simple_tag
def company_dashboard(company: Company | None) -> dict[str, Any]:
    """``{% company_dashboard company as board %}``: members, billing, sync and import."""
    if company is None:
        return {}
    return {
        "members": dashboard.members(company=company),
        "billing": dashboard.billing_summary(company=company),
        "sync": dashboard.sync_status(company=company),
        "import": dashboard.import_progress(company=company),
        # A fresh key per rendering of the "Buy 100 SMS" form: a double submit charges once.
        "idempotency_key": uuid.uuid4().hex,
    }
