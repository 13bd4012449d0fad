import datetime

from django import forms
from django.contrib import admin
from django.db.models.functions import Coalesce

from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from .company_settings import SettingsRefused, allowed_directions, mapper_direction
from .company_settings import update_sync_settings as _update_sync_settings
from .inbox import retry_failed_entries
from .models import (
    CompanySyncSettings,
    IdMap,
    InboxEntry,
    OutboxEntry,
    SyncConflict,
    SyncRecordError,
    SyncRun,
    SyncRunEntity,
    SyncSettingsChange,
    SyncState,
)
from .push import retry_parked
from .registry import registry


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
    fields = (
        "entity",
        "done",
        "total",
        "next_skip",
        "created",
        "updated",
        "skipped",
        "deleted",
        "failed",
        "pages",
        "last_connec_id",
        "last_updated_at",
    )
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
    list_display = [
        "created_at",
        "company",
        "entity",
        "connec_id",
        "short_reason",
        "run",
        "times_seen",
        "last_seen",
    ]
    list_filter = ["entity", "company"]
    search_fields = ["connec_id", "reason"]
    list_select_related = ["company"]
    readonly_fields = ["created_at", "last_seen"]

    @admin.display(description="reason")
    def short_reason(self, obj: SyncRecordError) -> str:
        return obj.reason[:120]

    @admin.display(description="last seen", ordering=Coalesce("last_seen_at", "created_at"))
    def last_seen(self, obj: SyncRecordError) -> datetime.datetime:
        """When it was last parked or delivered (a record seen once: when it was parked)."""
        return obj.last_seen


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
    def retry(self, request, queryset):
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
    def retry(self, request, queryset):
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


class CompanySyncSettingsForm(forms.ModelForm):
    class Meta:
        model = CompanySyncSettings
        fields = ["company", "enabled", "directions", "import_since"]

    def clean_directions(self) -> dict:
        value = self.cleaned_data.get("directions") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError('An object: {"people": "import", ...}')
        for entity, direction in value.items():
            if entity not in registry.entities():
                raise forms.ValidationError(f"No mapper is registered for {entity!r}")
            allowed = allowed_directions(entity)
            if direction not in allowed:
                raise forms.ValidationError(
                    f"{entity}: {direction!r} is not possible; its mapper allows "
                    + ", ".join(allowed)
                )
        return value


@admin.register(CompanySyncSettings)
class CompanySyncSettingsAdmin(admin.ModelAdmin):
    """Saved through :func:`maestrano_sync.company_settings.update_sync_settings`: checked,
    recorded,
    effects started (an entity's direction left out of ``directions`` is its mapper's)."""

    form = CompanySyncSettingsForm
    list_display = ["company", "enabled", "directions", "import_since", "updated_at"]
    list_filter = ["enabled"]
    list_select_related = ["company"]
    readonly_fields = ["updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["company", "updated_at"] if obj is not None else ["updated_at"]

    def save_model(self, request, obj, form, change):
        chosen = form.cleaned_data.get("directions") or {}
        try:
            _update_sync_settings(
                company=obj.company,
                changed_by=request.user,
                enabled=obj.enabled,
                directions={e: chosen.get(e, mapper_direction(e)) for e in registry.entities()},
                import_since=obj.import_since,
            )
        except SettingsRefused as error:  # checked by the form already; a race at most
            self.message_user(request, str(error), level="error")
        saved = CompanySyncSettings.objects.filter(company=obj.company).first()
        if saved is not None:
            obj.pk = saved.pk
            obj.refresh_from_db()


@admin.register(SyncSettingsChange)
class SyncSettingsChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["company", "changed_at", "changed_by_name", "changes"]
    list_filter = ["company"]
    list_select_related = ["company"]
