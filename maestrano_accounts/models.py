"""Companies (platform groups), platform identities and memberships; SSO replay cache, tickets.

The apps work with the project's own user model (``settings.AUTH_USER_MODEL``):
nothing here subclasses or replaces it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# Billing's models live in their own module; importing them here registers them with
# the app (they refer to Company by its label, so this import is one-way).
from .billing.models import AdHocCharge, BillingPeriod, CompanySubscription, Plan

__all__ = [
    "AdHocCharge",
    "BillingPeriod",
    "Company",
    "CompanySubscription",
    "Membership",
    "Plan",
    "PlatformIdentity",
    "SsoLoginTicket",
    "UsedAssertion",
]


class Company(models.Model):
    """A customer account on one marketplace: a platform group (``cld-…``)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    preset = models.CharField(max_length=100, db_index=True)
    group_uid = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=2, blank=True)
    city = models.CharField(max_length=255, blank=True)
    free_trial_end_at = models.DateTimeField(null=True, blank=True)
    has_credit_card = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    #: When the platform last cancelled the group (a group DELETE, or one kept before the
    #: company existed: :class:`PlatformRemoval`). Kept when a later login reactivates the
    #: company (``cancelled_at`` is emptied then): a login vouched for before it does not
    #: bring the company back (:class:`maestrano_accounts.services.RemovedDuringLogin`).
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Membership",
        related_name="maestrano_companies",
        blank=True,
    )

    class Meta:
        verbose_name_plural = _("companies")
        constraints = [
            models.UniqueConstraint(fields=["preset", "group_uid"], name="company_unique_group"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.group_uid})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class PlatformIdentity(models.Model):
    """Links a platform user (``usr-…``, or ``usr-….cld-…`` in virtual mode) to a local user.

    Like django-allauth's social accounts, the link lives beside the project's
    user model (``settings.AUTH_USER_MODEL``, whatever it is) instead of in it.
    One identity per (preset, uid); a local user may hold identities of several
    marketplaces. ``extra_data`` keeps the last attributes the platform sent that
    the user model has no field for (country, ...).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="maestrano_identities"
    )
    preset = models.CharField(max_length=100)
    uid = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    extra_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("platform identities")
        constraints = [
            models.UniqueConstraint(fields=["preset", "uid"], name="platform_identity_unique_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.uid} ({self.preset})"


class Membership(models.Model):
    """A user's access to a company, with the platform role."""

    class Role(models.TextChoices):
        GUEST = "Guest", _("Guest")
        MEMBER = "Member", _("Member")
        POWER_USER = "Power User", _("Power user")
        ADMIN = "Admin", _("Admin")
        SUPER_ADMIN = "Super Admin", _("Super admin")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="maestrano_memberships"
    )
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    #: When the platform last removed the user from the group (a group-user DELETE, or one
    #: kept before the membership existed: :class:`PlatformRemoval`), kept when a later login
    #: brings the membership back, as :attr:`Company.removed_at`.
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.company} ({self.role})"


class UsedAssertion(models.Model):
    """The replay cache: an assertion id accepted once is refused until it expires.

    Kept in the database (not a per-process cache) so that every worker of a
    deployment sees the same ids. Rows are useless after ``expires_at`` (the
    assertion's own ``NotOnOrAfter`` plus the clock skew) and are purged by
    :func:`maestrano_accounts.sso_state.purge_expired_sso_records`.
    """

    preset = models.CharField(max_length=100)
    assertion_id = models.CharField(max_length=256)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["preset", "assertion_id"], name="used_assertion_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assertion_id} ({self.preset})"


class SsoLoginTicket(models.Model):
    """A validated SAML login waiting for the same-site GET that completes it.

    The ACS is a cross-site POST, which does not carry ``SameSite=Lax`` session
    cookies; the consume view stores what it validated here and redirects the
    browser to the completion view, whose top-level GET does carry them (see
    :mod:`maestrano_accounts.views`). Only a digest of the one-time token is stored.
    """

    token_digest = models.CharField(max_length=64, unique=True)
    preset = models.CharField(max_length=100)
    assertion_id = models.CharField(max_length=256)
    in_response_to = models.CharField(max_length=256, blank=True)
    attributes = models.JSONField()
    #: Digest of a nonce cookie set on the browser that posted an IdP-initiated response;
    #: the completion step requires it (login CSRF). Empty for SP-initiated logins.
    browser_digest = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    #: When the consume view accepted the assertion (the new ticket of a confirmation keeps
    #: it): a membership removed, or a company cancelled, by the platform after that time (or
    #: after ``issued_at``, if earlier) is not brought back by this login
    #: (:func:`maestrano_accounts.services.provision_sso_login`).
    #: Empty in a ticket stored before the field existed: its expiry less its lifetime.
    validated_at = models.DateTimeField(null=True, blank=True)
    #: When the IdP issued the assertion (its ``IssueInstant``, to the second): the login
    #: counts from the earlier of the two
    #: (:attr:`maestrano_accounts.sso_state.RedeemedTicket.counts_from`). Empty in a ticket
    #: stored before the field existed.
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"SSO ticket for {self.assertion_id} ({self.preset})"


class PlatformRemoval(models.Model):
    """A platform DELETE of a group, or of a member, that found nothing to cancel here (no
    company, or no membership, yet), kept for a while: a login that counts from before it
    and completed after it would otherwise create what the platform removed
    (:class:`maestrano_accounts.services.RemovedDuringLogin`)."""

    preset = models.CharField(max_length=100)
    group_uid = models.CharField(max_length=100)
    #: The member's local uid (``uid.group_uid`` in virtual mode); empty: the whole group.
    uid = models.CharField(max_length=200, blank=True, default="")
    removed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["preset", "group_uid", "removed_at"], name="platform_removal_lookup"
            ),
            models.Index(fields=["removed_at"], name="platform_removal_age"),
        ]

    def __str__(self) -> str:
        return f"{self.uid or 'group'} removed from {self.group_uid} ({self.preset})"
