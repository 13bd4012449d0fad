"""Admin of the sandbox's Connec! data hub.

Saving a record here counts as a write by "another app": the fields are
validated like an API write, ``updated_at`` moves forward and every app of the
group subscribed to the entity is notified.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from maestrano_integration import strict_input
from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from ..connec.clock import next_timestamp
from ..connec.errors import ConnecApiError
from ..connec.notifications import enqueue_changes, wake_worker
from ..connec.services import require_fields, validated_changes
from ..connec.views import FaultConfigForm
from ..models import ConnecExternalId, ConnecRecord, FaultConfig, NotificationDelivery


class ConnecRecordForm(forms.ModelForm):
    class Meta:
        model = ConnecRecord
        fields = ["group", "entity", "data"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        group, entity, data = cleaned.get("group"), cleaned.get("entity"), cleaned.get("data")
        if group is None or entity is None or not isinstance(data, dict):
            if data is not None and not isinstance(data, dict):
                self.add_error("data", "The fields must be a JSON object.")
            return cleaned
        try:
            strict_input.check_value(data)  # what the API refuses, the admin refuses too
        except strict_input.InputRefused as error:
            self.add_error("data", str(error))
            return cleaned
        try:
            changes = validated_changes(group=group, entity=entity, payload=data)
            require_fields(entity, changes)
        except ConnecApiError as error:
            for problem in error.problems:
                self.add_error("data", f"{problem.pointer or ''} {problem.detail}".strip())
            return cleaned
        cleaned["data"] = changes
        return cleaned


class ExternalIdInline(admin.TabularInline):
    model = ConnecExternalId
    fields = readonly_fields = ("provider", "realm", "external_id", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ConnecRecord)
class ConnecRecordAdmin(admin.ModelAdmin):
    form = ConnecRecordForm
    list_display = ["uid", "group", "entity", "updated_at", "written_by"]
    list_filter = ["entity", "group"]
    search_fields = ["uid", "group__uid"]
    readonly_fields = ["uid", "created_at", "updated_at", "written_by"]
    list_select_related = ["group", "written_by"]
    inlines = [ExternalIdInline]
    ordering = ["-updated_at"]

    def save_model(self, request: HttpRequest, obj: ConnecRecord, form: Any, change: bool) -> None:
        with transaction.atomic(using="sandbox"):
            stamp = next_timestamp(after=obj.updated_at if change else None)
            if not change:
                obj.created_at = stamp
            obj.updated_at = stamp
            obj.written_by = None
            super().save_model(request, obj, form, change)
            enqueue_changes(records=[obj], source_app=None)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "app",
        "group",
        "source_app",
        "record_count",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "app", "group"]
    readonly_fields = [
        "app",
        "group",
        "source_app",
        "payload",
        "record_count",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "updated_at",
        "delivered_at",
    ]
    actions = ["retry_now"]

    @admin.action(description="Deliver again now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[NotificationDelivery]) -> None:
        count = queryset.exclude(status=NotificationDelivery.DELIVERING).update(
            status=NotificationDelivery.PENDING, next_attempt_at=timezone.now()
        )
        wake_worker()
        self.message_user(request, f"{count} deliveries queued again.")


class FaultConfigAdminForm(FaultConfigForm):
    class Meta(FaultConfigForm.Meta):
        fields = ["app", *FaultConfigForm.Meta.fields]


@admin.register(FaultConfig)
class FaultConfigAdmin(admin.ModelAdmin):
    form = FaultConfigAdminForm
    list_display = ["app", *FaultConfigForm.Meta.fields]
    list_editable = ["enabled"]
