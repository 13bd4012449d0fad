from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Company, Membership, UsedAssertion, User


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


@admin.register(UsedAssertion)
class UsedAssertionAdmin(admin.ModelAdmin):
    """The SSO replay cache, read-only: rows expire with their assertion."""

    list_display = ("assertion_id", "preset", "expires_at", "created_at")
    list_filter = ("preset",)
    search_fields = ("assertion_id",)
    readonly_fields = ("preset", "assertion_id", "expires_at", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Billing models (accounts.billing) have their admin in their own module.
from .billing import admin as billing_admin  # noqa: E402, F401
