"""``{% load maestrano_company_roles %}``: ask for the current user's role in the current company.

``{% has_company_role "Admin" as can_manage %}{% if can_manage %}…{% endif %}`` hides
what the user may not do; the views refuse it anyway (:mod:`maestrano_accounts.permissions`).
"""

from __future__ import annotations

from typing import Any

from django import template

from ..permissions import current_role, has_company_role

register = template.Library()


@register.simple_tag(takes_context=True, name="has_company_role")
def has_company_role_tag(context: dict[str, Any], minimum: str) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return False
    return has_company_role(request, minimum)


@register.simple_tag(takes_context=True, name="company_role")
def company_role_tag(context: dict[str, Any]) -> str:
    """The role itself (``"Member"``...), or ``""``."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return ""
    return current_role(request) or ""
