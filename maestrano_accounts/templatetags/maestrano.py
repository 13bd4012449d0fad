"""Template tags of the accounts app: ``{% load maestrano %}``.

``{% maestrano_login_url %}`` is the path that starts an SSO login;
``{% company_form_field %}``, inside a ``<form method="post">`` that acts in the current
company, makes the form refused once another company is current
(:mod:`maestrano_accounts.company_forms`).
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from maestrano_integration.conf import routed_preset
from maestrano_integration.routes import served_path

from ..company_forms import COMPANY_FORM_FIELD
from ..selectors import current_company

logger = logging.getLogger(__name__)

register = template.Library()


@register.simple_tag
def maestrano_login_url(preset: str | None = None) -> str:
    """The path that starts an SSO login on ``preset`` (the default preset if omitted).

    It is the preset's ``sso.init_path``, the path its metadata announces, behind the
    script prefix the project is served under (as ``{% url %}`` gives paths). A preset
    that cannot be used (``maestrano.E039``) still has it: its login page says it is
    misconfigured, and the page holding the link is served.
    """
    return served_path(routed_preset(preset).init_path)


@register.simple_tag(takes_context=True)
def company_form_field(context: dict[str, Any]) -> SafeString:
    """A hidden input naming the current company, for a form that acts in it.

    Posted after the user switched to another company (in another tab), the form is
    refused by :class:`~maestrano_accounts.middleware.MaestranoSessionMiddleware`
    instead of acting in the company now current. Empty without a current company
    (the view refuses such a form anyway).

    It needs the request in the context (``django.template.context_processors.request``,
    system check ``maestrano.W032``; ``render_to_string(..., request=request)``): rendered
    without one, it is empty and the form unprotected, so that is logged as a warning,
    naming the template.
    """
    request = context.get("request")
    if request is None:
        logger.warning(
            "{%% company_form_field %%} rendered without the request in the context "
            "(rendering %s): the form is not protected against a company switch. Enable "
            "the request context processor, or render with request=.",
            _template_name(context),
        )
        return SafeString("")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return SafeString("")
    company = current_company(request)
    if company is None:
        return SafeString("")
    return format_html('<input type="hidden" name="{}" value="{}">', COMPANY_FORM_FIELD, company.pk)


def _template_name(context: Any) -> str:
    """The name of the template being rendered (the page's, for an included one)."""
    origin = getattr(getattr(context, "template", None), "origin", None)
    return str(getattr(origin, "name", None) or "an unnamed template")
