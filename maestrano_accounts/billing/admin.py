"""Admin of billing: plans, subscriptions and ad-hoc charges, with their status, last
error and a "retry" action that queues the platform call again (idempotent).

Subscriptions and charges are the record of what was billed on the platform:
read-only here (the retry actions stay); they change through maestrano_accounts.billing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from . import tasks
from .models import FREQUENCY_BELOW_ONE, AdHocCharge, CompanySubscription, Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "price_cents",
        "currency",
        "period",
        "frequency",
        "free_trial_days",
        "per_user",
        "offered",
    )
    list_filter = ("offered", "per_user")
    search_fields = ("name",)

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        """The frequency's field says "1 or more" for 0 and negatives alike (the model's
        rule; the field's own minimum would otherwise be a positive integer's 0)."""
        if db_field.name == "frequency":
            kwargs.update(min_value=1, error_messages={"min_value": FREQUENCY_BELOW_ONE})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(CompanySubscription)
class CompanySubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "company",
        "plan",
        "units",
        "shown_status",
        "platform_id",
        "start_date",
        "attempts",
        "platform_cancel_pending",
        "short_error",
        "updated_at",
    )
    list_filter = ("status", "platform_cancel_pending", "company__preset")
    search_fields = ("company__name", "company__group_uid", "platform_id", "idempotency_key")
    list_select_related = ("company", "plan")
    raw_id_fields = ("company",)
    readonly_fields = (
        "platform_id",
        "idempotency_key",
        "attempts",
        "last_error",
        "last_attempt_at",
        "sending_until",
        "cancelled_at",
        "platform_cancel_pending",
        "replaces",
        "status_checked_at",
        "created_at",
        "updated_at",
    )
    actions = ("retry",)

    @admin.display(description="last error")
    def short_error(self, subscription: CompanySubscription) -> str:
        return subscription.last_error[:80]

    @admin.display(description="status", ordering="status")
    def shown_status(self, subscription: CompanySubscription) -> str:
        return subscription.platform_status_label

    @admin.action(description="Retry on the platform (create or cancel; never duplicates)")
    def retry(self, request: HttpRequest, queryset: QuerySet[CompanySubscription]) -> None:
        queued = 0
        for subscription in queryset:
            if subscription.platform_cancel_pending:
                tasks.enqueue_on_commit(tasks.cancel_subscription_task, subscription.pk)
                queued += 1
            elif (
                not subscription.platform_id
                and subscription.status != CompanySubscription.Status.CANCELLED
            ):
                tasks.enqueue_on_commit(tasks.submit_subscription_task, subscription.pk)
                queued += 1
        self.message_user(request, f"Queued {queued} subscription(s).", messages.SUCCESS)


@admin.register(AdHocCharge)
class AdHocChargeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "company",
        "description",
        "product",
        "amount_cents",
        "currency",
        "shown_status",
        "platform_bill_id",
        "attempts",
        "short_error",
        "created_at",
    )
    list_filter = ("status", "product", "company__preset")
    search_fields = (
        "company__name",
        "company__group_uid",
        "platform_bill_id",
        "idempotency_key",
        "reference",
    )
    list_select_related = ("company",)
    raw_id_fields = ("company",)
    readonly_fields = (
        "reference",
        "platform_bill_id",
        "attempts",
        "last_error",
        "last_attempt_at",
        "sending_until",
        "status_checked_at",
        "created_at",
        "updated_at",
    )
    actions = ("retry",)

    @admin.display(description="last error")
    def short_error(self, charge: AdHocCharge) -> str:
        return charge.last_error[:80]

    @admin.display(description="status", ordering="status")
    def shown_status(self, charge: AdHocCharge) -> str:
        return charge.platform_status_label

    @admin.action(description="Retry on the platform (never duplicates)")
    def retry(self, request: HttpRequest, queryset: QuerySet[AdHocCharge]) -> None:
        queued = 0
        for charge in queryset.filter(platform_bill_id=""):
            tasks.enqueue_on_commit(tasks.submit_charge_task, charge.pk)
            queued += 1
        self.message_user(request, f"Queued {queued} charge(s).", messages.SUCCESS)
