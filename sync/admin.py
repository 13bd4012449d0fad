from django.contrib import admin

from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from .inbox import retry_failed_entries
from .models import (
    IdMap,
    InboxEntry,
    OutboxEntry,
    SyncConflict,
    SyncRecordError,
    SyncRun,
    SyncRunEntity,
    SyncState,
)
from .push import retry_parked


@admin.register(IdMap)
class IdMapAdmin(admin.ModelAdmin):
    list_display = [
        "entity",
        "connec_id",
        "content_type",
        "object_id",
        "company",
        "last_pulled_updated_at",
        "last_pushed_updated_at",
    ]
    list_filter = ["entity", "company"]
    search_fields = ["connec_id", "object_id"]
    list_select_related = ["company", "content_type"]
    readonly_fields = ["created_at", "updated_at"]


class SyncRunEntityInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SyncRunEntity
    extra = 0
    can_delete = False
    fields = [
        "entity",
        "done",
        "total",
        "next_skip",
        "created",
        "updated",
        "skipped",
        "failed",
        "pages",
        "last_connec_id",
        "last_updated_at",
    ]
    readonly_fields = fields


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "company", "kind", "status", "attempts", "started_at", "finished_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["company"]
    search_fields = ["company__group_uid", "company__name"]
    readonly_fields = ["started_at", "finished_at", "updated_at"]
    inlines = [SyncRunEntityInline]


@admin.register(SyncRecordError)
class SyncRecordErrorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "company", "entity", "connec_id", "short_reason", "run"]
    list_filter = ["entity", "company"]
    search_fields = ["connec_id", "reason"]
    list_select_related = ["company"]
    readonly_fields = ["created_at"]

    @admin.display(description="reason")
    def short_reason(self, obj: SyncRecordError) -> str:
        return obj.reason[:120]


# --- live sync: outbox, inbox, conflicts ---------------------------------------------------


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "company",
        "entity",
        "object_id",
        "operation",
        "status",
        "attempts",
        "next_attempt_at",
        "short_error",
        "created_at",
    ]
    list_filter = ["status", "operation", "entity", "company"]
    search_fields = ["object_id", "last_error", "company__group_uid"]
    list_select_related = ["company"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["retry"]

    @admin.display(description="last error")
    def short_error(self, obj: OutboxEntry) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry the selected parked rows")
    def retry(self, request, queryset):  # type: ignore[no-untyped-def]
        count = retry_parked(queryset=queryset)
        self.message_user(request, f"{count} parked row(s) queued again.")


@admin.register(InboxEntry)
class InboxEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "company",
        "preset",
        "record_count",
        "status",
        "attempts",
        "received_at",
        "processed_at",
        "short_error",
    ]
    list_filter = ["status", "preset", "company"]
    search_fields = ["company__group_uid", "last_error"]
    list_select_related = ["company"]
    readonly_fields = ["received_at", "processed_at", "updated_at"]
    actions = ["retry"]

    @admin.display(description="last error")
    def short_error(self, obj: InboxEntry) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry the selected failed notifications")
    def retry(self, request, queryset):  # type: ignore[no-untyped-def]
        count = retry_failed_entries(queryset=queryset)
        self.message_user(request, f"{count} notification(s) queued again.")


@admin.register(SyncConflict)
class SyncConflictAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "company",
        "entity",
        "connec_id",
        "object_id",
        "winner",
        "local_changed_at",
        "remote_updated_at",
    ]
    list_filter = ["winner", "entity", "company"]
    search_fields = ["connec_id", "object_id"]
    list_select_related = ["company"]
    readonly_fields = ["created_at"]


@admin.register(SyncState)
class SyncStateAdmin(admin.ModelAdmin):
    list_display = [
        "company",
        "entity",
        "last_push_at",
        "last_notification_at",
        "last_reconcile_at",
        "reconcile_watermark",
    ]
    list_filter = ["entity", "company"]
    list_select_related = ["company"]
