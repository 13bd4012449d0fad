"""Roles: what the current user may do in the current company.

The platform gives every member of a group a role (PROTOCOL roles, kept on
:class:`maestrano_accounts.models.Membership`), ordered

    Guest < Member < Power User < Admin < Super Admin

This module is the one place that compares them. Views ask for a minimum role
with :func:`company_role_required` (function views) or
:class:`CompanyRoleRequiredMixin` (class-based views); templates ask
``{% has_company_role "Admin" as can_manage %}``
(``maestrano_accounts.templatetags.maestrano_company_roles``)
to hide what the user may not do. A refusal is a 403 page that says which role
is needed (``maestrano_accounts/permission_denied.html``). See docs/permissions.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from .models import Membership
from .pages import render_page
from .selectors import current_company

Role = Membership.Role
#: Lowest first. A role the platform sends that is not listed ranks below Guest.
ROLE_ORDER: tuple[str, ...] = (
    Role.GUEST,
    Role.MEMBER,
    Role.POWER_USER,
    Role.ADMIN,
    Role.SUPER_ADMIN,
)
_CACHE_ATTRIBUTE = "_maestrano_company_role"


def role_rank(role: str | None) -> int:
    """Position of ``role`` in :data:`ROLE_ORDER`; ``-1`` for none or an unknown role."""
    try:
        return ROLE_ORDER.index(role) if role else -1
    except ValueError:
        return -1


def role_at_least(role: str | None, minimum: str) -> bool:
    if minimum not in ROLE_ORDER:
        raise ValueError(f"Unknown role {minimum!r}; use one of {', '.join(ROLE_ORDER)}")
    return role_rank(role) >= role_rank(minimum)


def current_role(request: HttpRequest) -> str | None:
    """The user's role in the request's current company, or ``None`` (no company/membership).

    The current company already requires an active membership of an active
    company (:func:`maestrano_accounts.selectors.current_company`); the role is read once per
    request.
    """
    if hasattr(request, _CACHE_ATTRIBUTE):
        return getattr(request, _CACHE_ATTRIBUTE)
    company = current_company(request)
    role = None
    if company is not None:  # so the user is authenticated (current_company)
        role = (
            Membership.objects.filter(user=request.user, company=company, is_active=True)  # type: ignore[misc]
            .values_list("role", flat=True)
            .first()
        )
    setattr(request, _CACHE_ATTRIBUTE, role)
    return role


def has_company_role(request: HttpRequest, minimum: str) -> bool:
    """Whether the current user has ``minimum`` or a higher role in the current company."""
    return role_at_least(current_role(request), minimum)


def check_company_role(request: HttpRequest, minimum: str) -> HttpResponse | None:
    """``None`` when allowed; else the answer: the login page, or a 403 page with the reason."""
    role_at_least(None, minimum)  # an unknown minimum is a programming error: fail loudly
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    role = current_role(request)
    if role_at_least(role, minimum):
        return None
    context = {
        "company": current_company(request),
        "role": role,
        "required_role": minimum,
    }
    return render_page(request, "maestrano_accounts/permission_denied.html", context, status=403)


def company_role_required(minimum: str) -> Callable[[Callable[..., HttpResponse]], Any]:
    """Decorator of a view: only users with ``minimum`` (or higher) in the current company.

    ``@company_role_required("Admin")``; anonymous users go to the login page,
    others without the role get the 403 page.
    """
    role_at_least(None, minimum)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            denied = check_company_role(request, minimum)
            if denied is not None:
                return denied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class CompanyRoleRequiredMixin:
    """Mixin of a class-based view: set ``required_role`` (default ``"Admin"``).

    Put it first among the bases so that it runs before the view's own dispatch.
    """

    required_role: str = Role.ADMIN

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        denied = check_company_role(request, self.required_role)
        if denied is not None:
            return denied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
