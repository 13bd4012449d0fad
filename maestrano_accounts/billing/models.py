"""Billing models, imported by maestrano_accounts.models so that Django registers them.

Every bill we send to the platform is first written here with a unique
idempotency key, so a create whose answer was lost can be found on the platform
(its description carries the key) instead of being sent twice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

#: The longest free trial a plan may give, in days (100 years): generous, but a date
#: that far ahead is still one every database, time zone and Python date can hold
#: (docs/billing.md, 'The free trial').
MAX_FREE_TRIAL_DAYS = 36_500
TRIAL_TOO_LONG = format_lazy(
    _("A free trial is at most {max_days} days (100 years)."), max_days=MAX_FREE_TRIAL_DAYS
)
FREQUENCY_BELOW_ONE = _("A plan charges every 1 or more periods.")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class BillingPeriod(models.TextChoices):
    """Recurring bill periods the Account API accepts (docs/protocol.md, 'Recurring bills')."""

    DAY = "Day", _("Day")
    WEEK = "Week", _("Week")
    SEMI_MONTH = "SemiMonth", _("Semi-month")
    MONTH = "Month", _("Month")
    YEAR = "Year", _("Year")


#: How often a plan charges, per period, in words: each period has its own plural, which
#: a translation needs ("every month", "every 3 months").
_INTERVAL_WORDS: dict[str, StrPromise] = {
    BillingPeriod.DAY: ngettext_lazy("every day", "every %(count)d days", "count"),
    BillingPeriod.WEEK: ngettext_lazy("every week", "every %(count)d weeks", "count"),
    BillingPeriod.SEMI_MONTH: ngettext_lazy(
        "every half month", "every %(count)d half months", "count"
    ),
    BillingPeriod.MONTH: ngettext_lazy("every month", "every %(count)d months", "count"),
    BillingPeriod.YEAR: ngettext_lazy("every year", "every %(count)d years", "count"),
}


def charge_interval(*, period: str, frequency: int) -> str:
    """How often a plan charges, in words and in the active language (:data:`_INTERVAL_WORDS`;
    an unknown period reads as months, as billing computes it)."""
    words = _INTERVAL_WORDS.get(period, _INTERVAL_WORDS[BillingPeriod.MONTH])
    return str(words % {"count": frequency})


class Plan(models.Model):
    """A price list entry: what a company pays every ``frequency`` x ``period``.

    ``per_user``: the price is per active member, so the recurring bill follows the
    company's headcount. Only ``offered`` plans are proposed when a company is created
    and on the plan page.
    """

    name = models.CharField(max_length=100, unique=True)
    price_cents = models.PositiveIntegerField()
    period = models.CharField(
        max_length=10, choices=BillingPeriod.choices, default=BillingPeriod.MONTH
    )
    frequency = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1, FREQUENCY_BELOW_ONE)],
        help_text=_("Periods between two charges (1 or more)"),
    )
    currency = models.CharField(max_length=3, default="USD")
    free_trial_days = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_FREE_TRIAL_DAYS, TRIAL_TOO_LONG)],
        help_text=format_lazy(
            _("Free days from the company's creation (0 to {max_days})"),
            max_days=MAX_FREE_TRIAL_DAYS,
        ),
    )
    per_user = models.BooleanField(
        default=False, help_text=_("The price is per active member of the company")
    )
    offered = models.BooleanField(
        default=True, help_text=_("Proposed to new companies and on the plan page")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["price_cents", "name"]
        constraints = [
            # The validator guards the admin; this guards every other writer (``update()``,
            # raw SQL, a fixture). Migration 0006 added it after 0005 set 0s to 1.
            models.CheckConstraint(
                condition=Q(frequency__gte=1),
                name="plan_frequency_at_least_one",
                violation_error_message=FREQUENCY_BELOW_ONE,
            ),
        ]

    def __str__(self) -> str:
        per = " per user" if self.per_user else ""
        return f"{self.name} ({self.price_cents / 100:.2f} {self.currency}/{self.period}{per})"

    @property
    def charge_interval(self) -> str:
        """ "every month", "every 3 months"... (:func:`charge_interval`)."""
        return charge_interval(period=self.period, frequency=self.frequency)

    @property
    def amount(self) -> Decimal:
        """The price in the currency's units (``29.00`` for 2900 cents)."""
        return Decimal(self.price_cents) / 100


#: What a pending bill whose create was sent but not answered says to people.
AWAITING_ANSWER_LABEL = _("Sent, waiting for the marketplace's answer")


class _Sending:
    """What a bill's sending state means to people (no fields: both models have them)."""

    status: str
    sending_until: Any

    if TYPE_CHECKING:

        @property
        def is_on_platform(self) -> bool: ...

    @property
    def awaiting_answer(self) -> bool:
        """Sent (or being sent) to the platform, with no answer yet: it may be there.

        The submission's lease (``sending_until``) is kept until the answer comes, or
        renewed when it was lost, so nothing sends the bill again meanwhile.
        """
        return self.status == "pending" and not self.is_on_platform and bool(self.sending_until)

    @property
    def platform_status_label(self) -> str:
        """The status in the platform's words, for the admin site: "Submitted", "Pending
        (not yet on the platform)", or :data:`AWAITING_ANSWER_LABEL` for a bill sent and
        not answered. People of the company read :attr:`status_label`."""
        if self.awaiting_answer:
            return str(AWAITING_ANSWER_LABEL)
        return str(self.get_status_display())  # type: ignore[attr-defined]


class CompanySubscription(_Sending, models.Model):
    """A company's subscription to a plan, i.e. one recurring bill on the platform.

    A cancelled company keeps its cancelled subscriptions; reactivating it
    starts a new one. At most one subscription per company is not cancelled.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (not yet on the platform)")
        SUBMITTED = "submitted", _("Submitted")
        ACTIVE = "active", _("Active")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed (refused by the platform)")

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    # What was agreed at subscription time, so a later price change does not
    # rewrite history. ``price_cents`` is the amount of each charge: the plan's
    # price times ``units`` (the members billed, for a per-user plan; else 1).
    price_cents = models.PositiveIntegerField()
    units = models.PositiveIntegerField(default=1, help_text=_("Members billed (per-user plans)"))
    currency = models.CharField(max_length=3)
    period = models.CharField(max_length=10, choices=BillingPeriod.choices)
    frequency = models.PositiveSmallIntegerField(default=1)
    start_date = models.DateTimeField(help_text=_("First charge, after the free trial"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    platform_id = models.CharField(
        max_length=100, blank=True, default="", help_text=_("The recurring bill id (rbill-…)")
    )
    idempotency_key = models.CharField(max_length=64, unique=True, default=new_idempotency_key)
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("Submissions tried (each may have reached the platform)")
    )
    last_error = models.TextField(blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text=_("A submission is in flight until then (a lease)")
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    platform_cancel_pending = models.BooleanField(
        default=False, help_text=_("Cancelled here, not yet confirmed by the platform")
    )
    replaces = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaced_by",
        help_text=_("The subscription this one replaced (plan change, new headcount)"),
    )
    status_checked_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the status was last read from the platform")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["company"],
                condition=~Q(status="cancelled"),
                name="subscription_one_open_per_company",
            ),
            models.CheckConstraint(
                condition=Q(frequency__gte=1),
                name="subscription_frequency_at_least_one",
                violation_error_message=FREQUENCY_BELOW_ONE,
            ),
        ]
        indexes = [models.Index(fields=["status"], name="subscription_status_idx")]

    def __str__(self) -> str:
        return f"{self.plan.name} for {self.company_id} ({self.status})"

    @property
    def charge_interval(self) -> str:
        """ "every month", "every 3 months"... as agreed (:func:`charge_interval`)."""
        return charge_interval(period=self.period, frequency=self.frequency)

    @property
    def is_on_platform(self) -> bool:
        return bool(self.platform_id)

    @property
    def status_label(self) -> str:
        """One plain word per state, the same on the billing page and the dashboard:
        Being set up (not on the platform yet, or its answer awaited), Active (the platform
        holds the recurring bill: its "submitted" before the first charge, then "active"),
        Ended (after its last cycle), Cancelled or Failed. The platform's own words
        (:attr:`platform_status_label`) stay for the admin site."""
        return str(_SUBSCRIPTION_LABELS.get(self.status) or self.get_status_display())

    @property
    def marker(self) -> str:
        """Written into the platform description to find this bill again after a lost answer."""
        return f"[ref:{self.idempotency_key}]"


class AdHocCharge(_Sending, models.Model):
    """A one-off bill (in-app purchase, final bill) with a caller-supplied idempotency key."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (not yet on the platform)")
        SUBMITTED = "submitted", _("Submitted")
        INVOICED = "invoiced", _("Invoiced")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed (refused by the platform)")

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.PROTECT, related_name="charges"
    )
    idempotency_key = models.CharField(max_length=100, help_text=_("Chosen by the caller"))
    product = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_('What was bought, as the caller names it ("sms"); empty when it names none'),
    )
    reference = models.CharField(
        max_length=64,
        unique=True,
        default=new_idempotency_key,
        help_text=_("Our own unique key, written into the platform description"),
    )
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, blank=True, default="")
    description = models.CharField(max_length=255)
    units = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    period_started_at = models.DateTimeField(null=True, blank=True)
    period_ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    platform_bill_id = models.CharField(
        max_length=100, blank=True, default="", help_text=_("The bill id (bill-…)")
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("Submissions tried (each may have reached the platform)")
    )
    last_error = models.TextField(blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text=_("A submission is in flight until then (a lease)")
    )
    status_checked_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the status was last read from the platform")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "idempotency_key"], name="charge_unique_key_per_company"
            ),
        ]
        indexes = [models.Index(fields=["status"], name="charge_status_idx")]

    def __str__(self) -> str:
        return f"{self.description} for {self.company_id} ({self.status})"

    @property
    def is_on_platform(self) -> bool:
        return bool(self.platform_bill_id)

    @property
    def status_label(self) -> str:
        """One word per state of a purchase, the same on its page, the billing page and the
        dashboard: Pending (not on the platform yet, or its answer awaited), Billed (the
        platform holds the bill), Invoiced, Cancelled or Failed. The platform's own words
        (:attr:`platform_status_label`) stay for the admin site."""
        if self.status in (self.Status.FAILED, self.Status.CANCELLED, self.Status.INVOICED):
            return str(_CHARGE_LABELS[self.status])
        return str(_("Billed") if self.is_on_platform else _("Pending"))

    @property
    def marker(self) -> str:
        """Written into the platform description to find this bill again after a lost answer."""
        return f"[ref:{self.reference}]"


#: What a person reads of a recurring bill's statuses (:attr:`CompanySubscription.status_label`).
_SUBSCRIPTION_LABELS: dict[str, StrPromise] = {
    CompanySubscription.Status.PENDING: _("Being set up"),
    CompanySubscription.Status.SUBMITTED: _("Active"),
    CompanySubscription.Status.ACTIVE: _("Active"),
    CompanySubscription.Status.EXPIRED: _("Ended"),
    CompanySubscription.Status.CANCELLED: _("Cancelled"),
    CompanySubscription.Status.FAILED: _("Failed"),
}
#: What a person reads of a charge's final statuses (:attr:`AdHocCharge.status_label`).
_CHARGE_LABELS: dict[str, StrPromise] = {
    AdHocCharge.Status.FAILED: _("Failed"),
    AdHocCharge.Status.CANCELLED: _("Cancelled"),
    AdHocCharge.Status.INVOICED: _("Invoiced"),
}


__all__ = ["AdHocCharge", "BillingPeriod", "CompanySubscription", "Plan"]
