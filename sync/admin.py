from django.contrib import admin

from .models import IdMap, SyncRecordError, SyncRun, SyncRunEntity


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


class SyncRunEntityInline(admin.TabularInline):
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
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "company", "kind", "status", "attempts", "started_at", "finished_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["company"]
    search_fields = ["company__group_uid", "company__name"]
    readonly_fields = ["started_at", "finished_at", "updated_at"]
    inlines = [SyncRunEntityInline]


@admin.register(SyncRecordError)
class SyncRecordErrorAdmin(admin.ModelAdmin):
    list_display = ["created_at", "company", "entity", "connec_id", "short_reason", "run"]
    list_filter = ["entity", "company"]
    search_fields = ["connec_id", "reason"]
    list_select_related = ["company"]
    readonly_fields = ["created_at"]

    @admin.display(description="reason")
    def short_reason(self, obj: SyncRecordError) -> str:
        return obj.reason[:120]
