"""Account adapters that tests name in ``MAESTRANO["ADAPTER"]``."""

from __future__ import annotations

from typing import Any

from maestrano_accounts.adapter import DefaultAccountAdapter


class StaffMigrationAdapter(DefaultAccountAdapter):
    """Lets email migration link staff accounts too (a project that trusts its platform)."""

    def is_email_migration_allowed(self, *, preset: Any, user: Any, attributes: Any) -> bool:
        return bool(user.is_active)


class PlanByCurrencyAdapter(DefaultAccountAdapter):
    """Starts a company on the offered plan priced in its group's currency, if there is one."""

    def choose_plan(self, company: Any, *, plans: Any, attributes: Any) -> Any:
        currency = attributes.group_currency if attributes is not None else company.currency
        return next((plan for plan in plans if plan.currency == currency), None)


class InactiveNewUserAdapter(DefaultAccountAdapter):
    """Leaves every new user inactive: a project that approves accounts by hand."""

    def populate_user(self, user: Any, **kwargs: Any) -> None:
        super().populate_user(user, **kwargs)
        if user.pk is None:
            user.is_active = False


class EmailUsernameAdapter(DefaultAccountAdapter):
    """Makes the email the login name (``username``), as a project whose username is its
    email: the user model's unique username then follows the platform's email."""

    def populate_user(self, user: Any, *, email: str, **kwargs: Any) -> None:
        super().populate_user(user, email=email, **kwargs)
        if email:
            user.username = email

    def new_username(self, *, email: str, **kwargs: Any) -> str:
        return email or super().new_username(email=email, **kwargs)
