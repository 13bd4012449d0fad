from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Company, Membership, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "group_uid", "preset", "status", "free_trial_end_at", "created_at")
    list_filter = ("preset", "status")
    search_fields = ("name", "group_uid", "email")
    inlines = (MembershipInline,)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "provider", "uid", "is_active")
    search_fields = ("username", "email", "uid")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Maestrano", {"fields": ("provider", "uid", "country")}),
    )
