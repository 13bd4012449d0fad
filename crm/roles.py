"""Who may do what in the example app: the one place the pages ask about roles.

Kept to one function so that it can be swapped for the accounts app's role checks
(``accounts.permissions``) when they land.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Company, Membership

#: Platform roles that may act on the company's sync problems (and buy, cancel...).
ADMIN_ROLES = ("Admin", "Super Admin")


def is_company_admin(*, user: Any, company: Company) -> bool:
    """Whether ``user`` is an active Admin (or Super Admin) of ``company`` on the platform."""
    if not getattr(user, "is_authenticated", False):
        return False
    return Membership.objects.filter(
        user=user, company=company, is_active=True, role__in=ADMIN_ROLES
    ).exists()
