"""Template tags of the sandbox's pages."""

from __future__ import annotations

from typing import Any

from django import template

from maestrano_sandbox.models import RegisteredApp

register = template.Library()


@register.simple_tag(takes_context=True)
def app_home_url(context: dict[str, Any]) -> str:
    """The application's home at its registered host: the page's app, else the latest one.

    The sandbox is served under another host name than the app (as two real sites
    are), so a relative "/" would open the sandbox's host, where the app's session
    cookie does not exist.
    """
    app = context.get("app")
    if not isinstance(app, RegisteredApp):
        app = RegisteredApp.objects.order_by("-pk").first()
    return (app.app_host.rstrip("/") + "/") if app is not None and app.app_host else "/"


@register.filter
def cents(value: Any, currency: str = "") -> str:
    """``{{ bill.price_cents|cents:bill.currency }}`` → ``A$5.00``: the platform's amounts are
    integer cents on the wire; a person reads them as money."""
    from decimal import Decimal

    from babel.numbers import format_currency

    if value in (None, ""):
        return ""
    return format_currency(Decimal(int(value)) / 100, (currency or "USD").upper(), locale="en")
