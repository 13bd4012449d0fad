"""Admin of the emulated platform (its models live in the ``sandbox`` database)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from .. import account_webhooks
from ..models import (
    AccountWebhookDelivery,
    Bill,
    Group,
    GroupMembership,
    PlatformSession,
    PlatformUser,
    RecurringBill,
    RegisteredApp,
)
from ..registration import MetadataError, refresh_metadata
from . import connec  # noqa: F401  (the Connec! models register themselves there)


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, delivery) -> None:
    level = (
        messages.SUCCESS if delivery.status == AccountWebhookDelivery.SUCCEEDED else messages.ERROR
    )
    modeladmin.message_user(
        request,
        f"{delivery.method} {delivery.url}: {delivery.status} after {delivery.attempts} "
        f"attempt(s) ({delivery.response_status or delivery.last_error or '-'})",
        level,
    )


@admin.register(RegisteredApp)
class RegisteredAppAdmin(admin.ModelAdmin):
    list_display = ["api_id", "name", "app_host", "signature_algorithm", "updated_at"]
    search_fields = ["api_id", "name", "app_host"]
    actions = ["refresh_metadata"]

    @admin.action(description="Refresh metadata from the app")
    def refresh_metadata(self, request: HttpRequest, queryset: QuerySet) -> None:
        for app in queryset:
            try:
                refresh_metadata(app)
            except MetadataError as error:
                self.message_user(request, f"{app.api_id}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{app.api_id}: metadata loaded")


class MembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["uid", "name", "currency", "free_trial_end_at", "has_credit_card"]
    search_fields = ["uid", "name", "email"]
    filter_horizontal = ["apps"]
    inlines = [MembershipInline]
    actions = ["cancel_service"]

    @admin.action(description="Cancel the service: send DELETE group webhooks to every app used")
    def cancel_service(self, request: HttpRequest, queryset: QuerySet) -> None:
        for group in queryset:
            for app in list(group.apps.all()):
                _report(self, request, account_webhooks.cancel_group_service(group=group, app=app))


@admin.register(PlatformUser)
class PlatformUserAdmin(admin.ModelAdmin):
    list_display = ["uid", "name", "surname", "email", "country"]
    search_fields = ["uid", "name", "surname", "email"]


@admin.register(GroupMembership)
class GroupMembershipAdmin(admin.ModelAdmin):
    list_display = ["group", "user", "role", "created_at"]
    list_filter = ["role"]
    raw_id_fields = ["group", "user"]
    actions = ["remove_members"]

    @admin.action(description="Remove from group: send DELETE group user webhooks")
    def remove_members(self, request: HttpRequest, queryset: QuerySet) -> None:
        for membership in list(queryset.select_related("group", "user")):
            for delivery in account_webhooks.remove_user_from_group(
                group=membership.group, user=membership.user
            ):
                _report(self, request, delivery)


@admin.register(PlatformSession)
class PlatformSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "group", "app", "created_at", "last_checked_at", "invalidated_at"]
    raw_id_fields = ["user", "group", "app"]
    exclude = ["token"]


@admin.register(Bill)
class BillAdmin(admin.ModelAdmin):
    list_display = ["uid", "app", "group", "price_cents", "currency", "status", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["uid", "description", "group__uid"]
    raw_id_fields = ["app", "group"]


@admin.register(RecurringBill)
class RecurringBillAdmin(admin.ModelAdmin):
    list_display = ["uid", "app", "group", "price_cents", "period", "frequency", "status"]
    list_filter = ["status", "period"]
    search_fields = ["uid", "description", "group__uid"]
    raw_id_fields = ["app", "group"]


@admin.register(AccountWebhookDelivery)
class AccountWebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "app", "kind", "url", "status", "attempts", "response_status"]
    list_filter = ["status", "kind"]
    search_fields = ["group_uid", "user_uid", "url"]
    readonly_fields = [f.name for f in AccountWebhookDelivery._meta.fields]
    actions = ["send_again"]

    @admin.action(description="Send again")
    def send_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        for delivery in list(queryset.select_related("app")):
            _report(self, request, account_webhooks.redeliver(delivery))
