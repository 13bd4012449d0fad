"""The example application's own models: what an adopter writes.

Every model has a tenant foreign key ``company``; uniques and indexes are
scoped by it. They know nothing of Connec!: :mod:`crm.mappers` maps them.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """The example project's own user model (``AUTH_USER_MODEL = "crm.User"``).

    The Maestrano apps do not need it: they work with any user model, Django's
    default one included. The account adapter fills ``country`` because it is here.
    """

    country = models.CharField(max_length=2, blank=True)

    class Meta:
        db_table = "crm_user"
        # Swapped out (not installed) when a test run sets another AUTH_USER_MODEL
        # (tests/settings_django_user.py), as Django's own User is.
        swappable = "AUTH_USER_MODEL"


class Organization(models.Model):
    """A customer and/or supplier."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=255)
    is_customer = models.BooleanField(default=True)
    is_supplier = models.BooleanField(default=False)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=64, blank=True)
    address_line1 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=128, blank=True)
    postal_code = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["company", "name"], name="crm_org_company_name")]

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    """A contact, usually working for an organization."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=128, blank=True)
    last_name = models.CharField(max_length=128, blank=True)
    job_title = models.CharField(max_length=255, blank=True)
    email = models.EmailField(blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="people"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        verbose_name_plural = "people"
        indexes = [
            models.Index(fields=["company", "last_name", "first_name"], name="crm_person_name"),
            models.Index(fields=["company", "email"], name="crm_person_email"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or f"Person {self.pk}"


class Item(models.Model):
    """A product or service sold and/or purchased."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    code = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    sale_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    purchase_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "code"], condition=~Q(code=""), name="crm_item_unique_code"
            ),
        ]
        indexes = [models.Index(fields=["company", "name"], name="crm_item_company_name")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class Invoice(models.Model):
    """A customer invoice (we bill) or a supplier invoice (we are billed)."""

    class Type(models.TextChoices):
        CUSTOMER = "CUSTOMER", "Customer invoice"
        SUPPLIER = "SUPPLIER", "Supplier invoice"

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        SUBMITTED = "SUBMITTED", "Submitted"
        AUTHORISED = "AUTHORISED", "Authorised"
        PAID = "PAID", "Paid"
        VOIDED = "VOIDED", "Voided"

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.CUSTOMER)
    number = models.CharField(max_length=64, blank=True)
    transaction_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-transaction_date", "-pk"]
        indexes = [
            models.Index(fields=["company", "type", "number"], name="crm_invoice_number"),
            models.Index(fields=["company", "status"], name="crm_invoice_status"),
        ]

    def __str__(self) -> str:
        return self.number or f"Invoice {self.pk}"


class InvoiceLine(models.Model):
    """One line of an invoice, linked to its Connec! line id (``maestrano_sync.children``): an
    import
    updates it in place, a push sends its id."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=1)
    unit_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    item = models.ForeignKey(
        Item, on_delete=models.PROTECT, null=True, blank=True, related_name="invoice_lines"
    )

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "line_number"], name="crm_invoice_line_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} #{self.line_number}"


class SmsCredit(models.Model):
    """SMS a company bought with the demo's "Buy 100 SMS" button: one row per billed charge
    (granted by :mod:`crm.credits` when the platform has the bill; never twice)."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="sms_credits"
    )
    charge = models.OneToOneField(
        "maestrano_accounts.AdHocCharge", on_delete=models.PROTECT, related_name="sms_credit"
    )
    quantity = models.PositiveIntegerField()
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-granted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.quantity} SMS for {self.company_id}"
