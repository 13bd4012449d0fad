"""Bills and recurring bills (the Account API's data) and the account webhook delivery log."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models

from .core import Group, RegisteredApp

__all__ = ["AccountWebhookDelivery", "Bill", "RecurringBill"]


def new_bill_uid() -> str:
    return f"bill-{secrets.token_hex(4)}"


def new_recurring_bill_uid() -> str:
    return f"rbill-{secrets.token_hex(4)}"


class Bill(models.Model):
    """A single charge an app put on a group (docs/protocol.md, 'Bills')."""

    SUBMITTED, INVOICED, CANCELLED = "submitted", "invoiced", "cancelled"
    STATUSES = [(s, s) for s in (SUBMITTED, INVOICED, CANCELLED)]

    uid = models.CharField(max_length=40, unique=True, default=new_bill_uid)
    app = models.ForeignKey(RegisteredApp, on_delete=models.CASCADE, related_name="bills")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="bills")
    price_cents = models.BigIntegerField()
    description = models.CharField(max_length=500)
    currency = models.CharField(max_length=3, default="AUD")
    units = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("1.00"))
    period_started_at = models.DateTimeField(null=True, blank=True)
    period_ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=SUBMITTED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.uid} {self.price_cents} {self.currency} ({self.status})"


class RecurringBill(models.Model):
    """A charge repeated every ``frequency`` ``period`` s (docs/protocol.md, 'Recurring bills')."""

    SUBMITTED, ACTIVE, EXPIRED, CANCELLED = "submitted", "active", "expired", "cancelled"
    STATUSES = [(s, s) for s in (SUBMITTED, ACTIVE, EXPIRED, CANCELLED)]
    PERIODS = ["Day", "Week", "SemiMonth", "Month", "Year"]

    uid = models.CharField(max_length=40, unique=True, default=new_recurring_bill_uid)
    app = models.ForeignKey(RegisteredApp, on_delete=models.CASCADE, related_name="recurring_bills")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="recurring_bills")
    price_cents = models.BigIntegerField()
    description = models.CharField(max_length=500)
    currency = models.CharField(max_length=3, default="AUD")
    period = models.CharField(max_length=10, choices=[(p, p) for p in PERIODS], default="Month")
    frequency = models.PositiveIntegerField(default=1)
    cycles = models.PositiveIntegerField(null=True, blank=True)
    start_date = models.DateTimeField()
    initial_cents = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=STATUSES, default=SUBMITTED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.uid} {self.price_cents} {self.currency}/{self.period} ({self.status})"


class AccountWebhookDelivery(models.Model):
    """One account webhook (DELETE group / DELETE group user) sent to an app, with its outcome."""

    GROUP_CANCELLED = "group_cancelled"
    USER_REMOVED = "user_removed"
    KINDS = [(GROUP_CANCELLED, "Group cancelled the service"), (USER_REMOVED, "User removed")]

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(s, s) for s in (PENDING, SUCCEEDED, FAILED)]

    app = models.ForeignKey(
        RegisteredApp, on_delete=models.CASCADE, related_name="account_webhook_deliveries"
    )
    kind = models.CharField(max_length=20, choices=KINDS)
    group_uid = models.CharField(max_length=100)
    user_uid = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=10, default="DELETE")
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="First characters of the last answer")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "account webhook deliveries"

    def __str__(self) -> str:
        return f"{self.method} {self.url} ({self.status})"
