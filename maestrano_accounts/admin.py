from django.contrib import admin

from maestrano_integration.admin_mixins import ReadOnlyAdminMixin

from .models import Company, Membership, PlatformIdentity, SsoLoginTicket, UsedAssertion


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "group_uid", "preset", "status", "free_trial_end_at", "created_at")
    list_filter = ("preset", "status")
    search_fields = ("name", "group_uid", "email")
    inlines = (MembershipInline,)


@admin.register(PlatformIdentity)
class PlatformIdentityAdmin(admin.ModelAdmin):
    """Which local user each platform uid logs in as; unlink by deleting the row.

    Read-only but for deleting: pointing a uid at another user would let whoever may
    change identities log in as anyone, a superuser included.
    """

    list_display = ("uid", "preset", "user", "email", "last_login_at")
    list_filter = ("preset",)
    search_fields = ("uid", "email")
    readonly_fields = (
        "user",
        "preset",
        "uid",
        "email",
        "extra_data",
        "created_at",
        "last_login_at",
    )

    def has_add_permission(self, request):
        return False


@admin.register(UsedAssertion)
class UsedAssertionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The SSO replay cache, read-only: rows expire with their assertion."""

    list_display = ("assertion_id", "preset", "expires_at", "created_at")
    list_filter = ("preset",)
    search_fields = ("assertion_id",)


@admin.register(SsoLoginTicket)
class SsoLoginTicketAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Validated logins waiting for their completion (two minutes at most), read-only."""

    list_display = ("assertion_id", "preset", "in_response_to", "expires_at", "created_at")
    list_filter = ("preset",)
    search_fields = ("assertion_id",)
    exclude = ("token_digest", "browser_digest", "attributes")


# Billing models (maestrano_accounts.billing) have their admin in their own module.
from .billing import admin as billing_admin  # noqa: E402, F401
