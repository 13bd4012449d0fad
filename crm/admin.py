from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Invoice, InvoiceLine, Item, Organization, Person, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """The example project's user model; platform links are in "Platform identities"."""

    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Profile", {"fields": ("country",)}))


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "is_customer", "is_supplier", "email", "city"]
    list_filter = ["is_customer", "is_supplier", "company"]
    search_fields = ["name", "email"]
    list_select_related = ["company"]


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["__str__", "company", "organization", "email", "job_title"]
    list_filter = ["company"]
    search_fields = ["first_name", "last_name", "email"]
    list_select_related = ["company", "organization"]
    raw_id_fields = ["organization"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "company", "sale_price", "purchase_price", "currency"]
    list_filter = ["company"]
    search_fields = ["code", "name"]
    list_select_related = ["company"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    raw_id_fields = ["item"]
    fields = ["line_number", "description", "quantity", "unit_price", "item"]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "type", "status", "company", "organization", "total"]
    list_filter = ["type", "status", "company"]
    search_fields = ["number"]
    list_select_related = ["company", "organization"]
    raw_id_fields = ["organization", "person"]
    inlines = [InvoiceLineInline]

    def save_formset(self, request, form, formset, change):
        # Lines inherit the invoice's tenant.
        for line in formset.save(commit=False):
            line.company_id = form.instance.company_id
            line.save()
        for line in formset.deleted_objects:
            line.delete()
