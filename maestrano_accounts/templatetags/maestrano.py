"""Template tags for SSO links: ``{% load maestrano %}{% maestrano_login_url %}``."""

from __future__ import annotations

from django import template

from maestrano_integration.conf import get_preset

register = template.Library()


@register.simple_tag
def maestrano_login_url(preset: str | None = None) -> str:
    """The path that starts an SSO login on ``preset`` (the default preset if omitted).

    It is the preset's ``sso.init_path``, the path its metadata announces.
    """
    return get_preset(preset).init_path
