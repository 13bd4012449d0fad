"""The account adapter: how SSO turns platform attributes into local companies and users.

Like django-allauth's adapters, an adopter changes behaviour by subclassing
:class:`DefaultAccountAdapter` and naming the subclass in
``MAESTRANO["ADAPTER"]`` (a dotted path), instead of forking views or services::

    class MyAdapter(DefaultAccountAdapter):
        def populate_company(self, company, *, preset, attributes):
            super().populate_company(company, preset=preset, attributes=attributes)
            company.plan = "trial"

The services in :mod:`maestrano_accounts.services` call these methods; they never save.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist
from django.http import HttpRequest
from django.utils.text import slugify

from maestrano_integration.conf import Preset, maestrano_settings
from maestrano_integration.routes import kept_resolve_url
from maestrano_integration.saml import SsoAttributes

from .emails import same_email
from .models import Company, Membership, Plan, PlatformIdentity

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def _fit(value: str, max_length: int) -> str:
    return (value or "")[:max_length]


def _letters(value: str, length: int) -> str:
    """``value`` if it is ``length`` ASCII letters (country, currency codes), else ``""``."""
    return value if len(value) == length and value.isascii() and value.isalpha() else ""


def default_login_redirect_url() -> str:
    """``MAESTRANO["SSO_LOGIN_REDIRECT_URL"]``: a path, a URL or a URL name, read as Django
    reads ``LOGIN_REDIRECT_URL`` (``resolve_url``). The default is a URL name,
    ``maestrano_accounts:dashboard``, so that it names the dashboard behind the script
    prefix the project is served under; a path is used as it is."""
    return kept_resolve_url(maestrano_settings.SSO_LOGIN_REDIRECT_URL)


class DefaultAccountAdapter:
    """Default mapping of the assertion's attributes; override any method.

    The attributes: docs/protocol.md, 'Assertion attributes'.
    """

    # --- companies --------------------------------------------------------------
    def populate_company(
        self, company: Company, *, preset: Preset, attributes: SsoAttributes
    ) -> None:
        """Copy the group attributes onto ``company`` (new or existing; called on every login).

        Absent optional attributes keep the current value, so a login through
        an IdP that sends fewer attributes does not blank the company.
        """
        if attributes.group_name:
            company.name = _fit(attributes.group_name, 255)
        elif not company.name:
            company.name = f"Company {attributes.group_uid}"[:255]
        if attributes.group_email:
            company.email = _fit(attributes.group_email, 254)
        if _letters(attributes.group_currency, 3):
            company.currency = attributes.group_currency
        if attributes.group_timezone:
            company.timezone = _fit(attributes.group_timezone, 64)
        if _letters(attributes.group_country, 2):
            company.country = attributes.group_country
        if attributes.group_city:
            company.city = _fit(attributes.group_city, 255)
        if attributes.group_end_free_trial is not None:
            company.free_trial_end_at = attributes.group_end_free_trial
        if attributes.group_has_credit_card is not None:
            company.has_credit_card = attributes.group_has_credit_card

    def link_company(
        self, company: Company, *, preset: Preset, attributes: SsoAttributes, created: bool
    ) -> None:
        """Link ``company`` to the project's own tenant (organization) model.

        Called on every SSO login, inside the login's transaction, once the
        company is saved (``created`` says whether it is new), so your tenant
        exists before the initial import and before any push. The default does
        nothing; see docs/install.md, "Your tenant".
        """

    # --- users -------------------------------------------------------------------
    def populate_user(
        self, user: AbstractBaseUser, *, preset: Preset, attributes: SsoAttributes, email: str
    ) -> None:
        """Copy the user attributes onto ``user`` (new or existing; called on every login).

        Only the fields the project's user model has are written: the email field
        (``get_email_field_name()``), ``first_name``, ``last_name`` and ``country``
        when they exist. The email keeps its local spelling when the platform sends the
        same address in other case (``maestrano_accounts.emails.same_email``): where it is the
        username, the person's password login goes on working. Override to fill fields
        of your own.
        """
        email_field = user.get_email_field_name()
        stored_email = getattr(user, email_field, None)
        if isinstance(stored_email, str) and stored_email and same_email(stored_email, email):
            email = stored_email
        values = {
            "first_name": attributes.first_name,
            "last_name": attributes.last_name,
            email_field: email,
            "country": attributes.country if _letters(attributes.country, 2) else "",
        }
        for name, value in values.items():
            if not value:
                continue
            try:
                field = user._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if field.concrete and isinstance(value, str):
                setattr(user, field.attname, _fit(value, field.max_length or 255))

    def identity_extra_data(self, *, preset: Preset, attributes: SsoAttributes) -> dict[str, Any]:
        """What :class:`maestrano_accounts.models.PlatformIdentity` keeps of the user's
        attributes."""
        return {
            "first_name": attributes.first_name,
            "last_name": attributes.last_name,
            "country": attributes.country,
        }

    def new_username(self, *, preset: Preset, attributes: SsoAttributes, email: str) -> str:
        """A readable username candidate; the service makes it unique.

        Used only when the user model's ``USERNAME_FIELD`` is not its email
        field. The local part of the email (``jane.doe``), else the names, else
        the uid; limited to the characters Django's username validator accepts.
        """
        candidates = [
            email.partition("@")[0],
            slugify(f"{attributes.first_name} {attributes.last_name}"),
            attributes.user_uid(preset.creation_mode),
        ]
        for candidate in candidates:
            cleaned = _USERNAME_UNSAFE.sub("", candidate or "")[:120]
            if cleaned:
                return cleaned
        return f"user-{secrets.token_hex(4)}"

    def is_email_migration_allowed(
        self, *, preset: Preset, user: AbstractBaseUser, attributes: SsoAttributes
    ) -> bool:
        """May ``user`` (the one local account with the platform user's email) be linked?

        Conservative by default, because linking hands the account over to whoever
        the platform vouches for: only when ``SSO_EMAIL_MIGRATION`` is on, in real
        mode (virtual emails are per group), for an active account that is neither
        staff nor superuser and holds no platform identity yet, of any preset: an
        account already linked belongs to a platform user, and another marketplace (or
        another uid of this one) vouching for the same email must not take it over.
        Override to loosen or tighten it (see docs/adapter.md).
        """
        if not maestrano_settings.SSO_EMAIL_MIGRATION or preset.creation_mode != "real":
            return False
        if not getattr(user, "is_active", True):
            return False
        if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
            return False
        return not PlatformIdentity.objects.filter(user=user).exists()  # type: ignore[misc]  # any AUTH_USER_MODEL (the plugin knows the example's)

    # --- memberships -------------------------------------------------------------
    def membership_role(self, *, preset: Preset, attributes: SsoAttributes) -> str:
        """The local role of the membership: ``group_role`` as sent, ``Member`` if absent."""
        return _fit(attributes.group_role, 32) or Membership.Role.MEMBER

    # --- after login ---------------------------------------------------------------
    def login_redirect_url(self, request: HttpRequest, *, preset: Preset, company: Company) -> str:
        """Where a user lands after SSO (:func:`default_login_redirect_url`)."""
        return default_login_redirect_url()

    # --- billing hooks -------------------------------------------------------------
    def choose_plan(
        self, company: Company, *, plans: Sequence[Plan], attributes: SsoAttributes | None
    ) -> Plan | None:
        """The plan a new company starts on, or ``None`` to let its Admin choose on the
        plan page (``/billing/plans/``); nothing is billed until then.

        ``plans`` are the offered plans, cheapest first (the default plan among them);
        ``attributes`` are those of the login that created the company (``None`` when
        billing is set up outside a login). The default: the only offered plan, and
        the Admin's choice when there are several. For instance, to start everyone on
        the default plan and let Admins change later::

            def choose_plan(self, company, *, plans, attributes):
                return next(p for p in plans if p.name == "Standard")
        """
        return plans[0] if len(plans) == 1 else None

    def final_bill(self, company: Company) -> dict[str, Any] | None:
        """A final bill to send when ``company`` cancels the service, or ``None`` for none.

        Return ``{"price_cents": ..., "description": ..., "currency": ...}`` to charge
        what is still due (docs/protocol.md, 'Account webhooks').
        """
        return None


def get_adapter() -> DefaultAccountAdapter:
    """An instance of the adapter class named in ``MAESTRANO["ADAPTER"]``."""
    return maestrano_settings.adapter_class()()
