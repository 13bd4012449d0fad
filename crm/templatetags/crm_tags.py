"""Template tags of the example application's layout and dashboard.

``base.html`` asks :func:`current_company_tag` for the nav bar, and the
dashboard template asks :func:`company_dashboard` for the sections the
reusable ``maestrano_accounts`` dashboard view knows nothing about (billing, sync),
so that view stays the single owner of ``/dashboard/``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import template
from django.conf import settings
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from maestrano_accounts.billing.services import (
    Product,
    billing_enabled,
    effective_trial_days,
    offered_product,
)
from maestrano_accounts.models import Company
from maestrano_accounts.permissions import has_company_role
from maestrano_accounts.selectors import current_company
from maestrano_integration.conf import ImproperlyConfiguredPreset, get_preset
from maestrano_integration.setting_types import InvalidSettingType
from maestrano_sync.status import SETTINGS_WORDS

from .. import dashboard, formatting
from ..credits import SMS_PRODUCT

register = template.Library()


@register.simple_tag(takes_context=True, name="current_company")
def current_company_tag(context: dict[str, Any]) -> Company | None:
    """``{% current_company as company %}``: the request's company, or ``None``."""
    request = context.get("request")
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return None
    return current_company(request)


@register.simple_tag
def sandbox_url() -> str:
    """The emulated platform's home page (the default preset's api host), or ``""``."""
    if not getattr(settings, "MAESTRANO_SANDBOX", {}).get("ENABLED"):
        return ""
    try:
        return get_preset().api_host + "/"
    except (ImproperlyConfiguredPreset, InvalidSettingType):  # none, or unusable (E039)
        return ""


@register.simple_tag(takes_context=True)
def company_dashboard(context: dict[str, Any], company: Company | None) -> dict[str, Any]:
    """``{% company_dashboard company as board %}``: members, billing, sync and import."""
    if company is None:
        return {}
    request = context.get("request")
    return {
        "is_admin": request is not None and has_company_role(request, "Admin"),
        "problems": dashboard.sync_problems(company=company),
        "members": dashboard.members(company=company),
        "billing": dashboard.billing_summary(company=company),
        "sync": dashboard.sync_status(company=company),
        "import": dashboard.import_progress(company=company),
        # A fresh key per rendering of the "Buy 100 SMS" form: a double submit charges once.
        "idempotency_key": uuid.uuid4().hex,
    }


@register.simple_tag(takes_context=True)
def sync_reason(context: dict[str, Any], reason: str, limit: int = 0) -> str:
    """``{% sync_reason sync.reason %}``: a record's sync reason (cut to ``limit`` characters
    when given), whose words "sync settings" link to the Sync settings page for an Admin
    (the only people who can change them, and open that page)."""
    text = truncatechars(reason, limit) if limit else reason
    request = context.get("request")
    words = str(SETTINGS_WORDS)  # in the active language, as the reasons are
    if words not in text or request is None or not has_company_role(request, "Admin"):
        return conditional_escape(text)
    before, _, after = text.partition(words)
    return format_html(
        '{}<a href="{}" class="sync-settings-link">{}</a>{}',
        before,
        reverse("crm:sync-settings"),
        words,
        after,
    )


# --- one format for money, time and long ids (crm.formatting) ----------------------------


@register.filter
def money(cents: int | None, currency: str = "") -> str:
    """``{{ subscription.price_cents|money:subscription.currency }}`` → ``AUD 29.00``: every
    billed amount with its currency's ISO code (``crm.formatting.money``)."""
    return formatting.money(cents, currency)


@register.simple_tag
def converted_price(cents: int | None, currency: str = "") -> formatting.Conversion | None:
    """``{% converted_price cents currency as conversion %}``: the price in the company's
    currency at the settings' rate table (``conversion.amount``, ``.rate``, ``.as_of``),
    or ``None`` (same currency, or no rate)."""
    return formatting.converted(cents, currency)


@register.filter
def amount(value: Any, currency: str = "") -> str:
    """``{{ invoice.total|amount:invoice.currency }}``: a decimal amount, not cents."""
    return formatting.amount(value, currency)


@register.filter
def when(value: Any) -> str:
    """``{{ run.started_at|when }}`` → ``2 Dec 2026, 03:28 AEDT`` (the company's timezone)."""
    return formatting.when(value)


@register.filter
def day(value: Any) -> str:
    """``{{ company.free_trial_end_at|day }}`` → ``2 Dec 2026``."""
    return formatting.day(value)


@register.simple_tag
def short_id(value: str, element_id: str = "") -> str:
    """A long id shortened to its ends, the whole of it in a copy button and a tooltip."""
    value = str(value or "")
    shown = value if len(value) <= 14 else f"{value[:6]}…{value[-4:]}"
    id_attribute = format_html(' id="{}"', element_id) if element_id else ""
    return format_html(
        '<span class="short-id"><code{} title="{}" data-full="{}">{}</code>'
        '<button type="button" class="copy small secondary" data-copy="{}" '
        'aria-label="Copy {}">Copy</button></span>',
        id_attribute,
        value,
        value,
        shown,
        value,
        value,
    )


@register.simple_tag(takes_context=True)
def nav_current(context: dict[str, Any], prefix: str) -> str:
    """``aria-current="page"`` on the navigation link of the section being shown."""
    request = context.get("request")
    path = getattr(request, "path", "")
    if path == prefix or (prefix != "/" and path.startswith(prefix)):
        return mark_safe(' aria-current="page"')
    return ""


@register.simple_tag
def sms_pack() -> Product | None:
    """The demo's in-app purchase: the product ``"sms"`` of ``MAESTRANO["BILLING"]["PRODUCTS"]``
    (config/settings.py), ``None`` when it is not offered (billing off, or not configured)."""
    if not billing_enabled():
        return None
    return offered_product(SMS_PRODUCT)


def marketplace_trial_end(company: Company) -> Any:
    """The end of the marketplace's free trial for the company, or ``None`` for no trial.

    The platform always sends ``group_end_free_trial``: a group without a trial
    gets its creation time, which is no trial at all (the sandbox shows "no free trial").
    """
    end = company.free_trial_end_at
    if end is None:
        return None
    group_created = company.created_at
    if group_created is not None and end <= group_created + dt.timedelta(minutes=1):
        return None
    return end


@register.simple_tag
def free_trial(company: Company) -> str:
    """``Free trial until 2 Dec 2026`` (or ``ended``), or ``""`` when the marketplace gives none."""
    end = marketplace_trial_end(company)
    if end is None:
        return ""
    verb = "until" if end > timezone.now() else "ended"
    return f"Free trial {verb} {formatting.day(end)}"


@register.simple_tag
def first_charge_explained(subscription: Any, company: Company) -> str:
    """Why the first recurring charge falls on its date: which free trial ends then.

    Mirrors :func:`maestrano_accounts.billing.services.billing_start_date` (the later of the
    platform's trial for the group and the plan's own trial, never before today); the plan's
    days are those it gives (``effective_trial_days``: a stored 40,000 counts as 36,500).
    """
    start = subscription.start_date
    plan = subscription.plan
    reasons = []
    group_end = marketplace_trial_end(company)
    if group_end is not None:
        reasons.append(
            f"the marketplace's free trial for {company.name} ends {formatting.day(group_end)}"
        )
    else:
        reasons.append("the marketplace gives no free trial")
    trial_days = effective_trial_days(days=plan.free_trial_days) if plan is not None else 0
    if trial_days:
        reasons.append(
            f"the {plan.name} plan includes {trial_days} free days from "
            f"{formatting.day(company.created_at)}"
        )
    return f"First charge on {formatting.day(start)}: " + "; ".join(reasons) + "."
