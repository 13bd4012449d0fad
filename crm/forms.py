"""Forms of the example application's pages, every choice limited to the current company.

A form never lists (or accepts) another tenant's organization, person or item:
the querysets of its foreign keys are narrowed to ``company`` in ``__init__``,
so a forged primary key of another company fails validation like an unknown one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db import models
from django.forms.formsets import DELETION_FIELD_NAME

from maestrano_accounts.models import Company

from .models import Invoice, InvoiceLine, Item, Organization, Person


class TenantModelForm(forms.ModelForm):
    """A ModelForm bound to one company: its foreign-key choices are that company's rows."""

    #: {form field (a foreign key's): model whose rows of the company are the choices}
    tenant_choices: dict[str, type[models.Model]] = {}

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        for name, model in self.tenant_choices.items():
            if name in self.fields:
                choices = cast(forms.ModelChoiceField, self.fields[name])
                choices.queryset = model._default_manager.filter(company=company)

    def save(self, commit: bool = True) -> Any:
        self.instance.company = self.company
        return super().save(commit=commit)


class OrganizationForm(TenantModelForm):
    class Meta:
        model = Organization
        fields = [
            "name",
            "is_customer",
            "is_supplier",
            "email",
            "phone",
            "address_line1",
            "city",
            "postal_code",
            "country",
        ]


class PersonForm(TenantModelForm):
    tenant_choices = {"organization": Organization}

    class Meta:
        model = Person
        fields = ["title", "first_name", "last_name", "job_title", "email", "organization"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not (data.get("first_name") or data.get("last_name")):
            raise forms.ValidationError("Give at least a first name or a last name.")
        return data


class ItemForm(TenantModelForm):
    class Meta:
        model = Item
        fields = ["code", "name", "description", "sale_price", "purchase_price", "currency"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_code(self) -> str:
        code = self.cleaned_data.get("code", "")
        if code:
            clash = Item.objects.filter(company=self.company, code=code)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError("Another item already uses this code.")
        return code


class InvoiceForm(TenantModelForm):
    tenant_choices = {"organization": Organization, "person": Person}

    class Meta:
        model = Invoice
        fields = [
            "type",
            "number",
            "status",
            "transaction_date",
            "due_date",
            "organization",
            "person",
        ]
        widgets = {
            "transaction_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        issued, due = data.get("transaction_date"), data.get("due_date")
        if issued and due and due < issued:
            self.add_error("due_date", "The due date cannot be before the invoice date.")
        return data


class InvoiceLineForm(forms.ModelForm):
    class Meta:
        model = InvoiceLine
        fields = ["item", "description", "quantity", "unit_price"]
        widgets = {"description": forms.TextInput()}

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        items = cast(forms.ModelChoiceField, self.fields["item"])
        items.queryset = Item.objects.filter(company=company)
        if self.instance.pk and not self.is_bound:
            # "9", not the column's "9.0000" (Decimal.normalize() alone gives "1E+1" for 10).
            self.initial["quantity"] = f"{self.instance.quantity.normalize():f}"

    @property
    def amount(self) -> Decimal:
        data = getattr(self, "cleaned_data", None) or {}
        if not data or data.get("DELETE"):
            return Decimal(0)
        return (data.get("quantity") or Decimal(0)) * (data.get("unit_price") or Decimal(0))


if TYPE_CHECKING:
    _LineFormSet = forms.BaseInlineFormSet[InvoiceLine, Invoice, InvoiceLineForm]
else:
    _LineFormSet = forms.BaseInlineFormSet  # not subscriptable at run time


class BaseInvoiceLineFormSet(_LineFormSet):
    """Lines of one invoice; numbered 1..n in display order when saved.

    A posted line id must be a line of this invoice: an id of another invoice or
    company (tampered) or of a line deleted meanwhile (a stale page) is a form
    error saying so, never a write to someone else's line or a clash of numbers.
    """

    STALE_MESSAGE = (
        "This invoice's lines changed since the page was loaded (a line was removed, or is "
        "not part of this invoice). Reload the page and make your changes again."
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        self.company = company
        super().__init__(*args, **kwargs)

    def add_fields(self, form: InvoiceLineForm, index: int | None) -> None:
        super().add_fields(form, index)
        pk_name = InvoiceLine._meta.pk.name
        if pk_name in form.fields:
            # Django's default choices are every line of every invoice.
            cast(forms.ModelChoiceField, form.fields[pk_name]).queryset = self.get_queryset()

    def clean(self) -> None:
        super().clean()
        pk_name = InvoiceLine._meta.pk.name
        if any(pk_name in form.errors for form in self.forms):
            raise forms.ValidationError(self.STALE_MESSAGE, code="stale")

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "company": self.company}

    def kept_forms(self) -> list[InvoiceLineForm]:
        """Filled-in forms not marked for deletion, in display order."""
        return [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk
            if not (self.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME, False))
        ]

    def total(self) -> Decimal:
        return sum((form.amount for form in self.kept_forms()), Decimal(0))

    def save_numbered(self, *, invoice: Invoice) -> None:
        """Save the lines with their tenant and line numbers 1..n (no gaps, no clashes)."""
        for form in self.deleted_forms:
            if form.instance.pk:
                form.instance.delete()
        kept = self.kept_forms()
        kept_pks = {form.instance.pk for form in kept if form.instance.pk}
        # Lines of the invoice the page did not show (added meanwhile) keep their order,
        # after the page's lines.
        others = list(
            InvoiceLine.objects.filter(invoice=invoice)
            .exclude(pk__in=kept_pks)
            .order_by("line_number", "pk")
            .values_list("pk", flat=True)
        )
        # Park every existing line out of the way first: (invoice, line_number) is unique.
        offset = 1_000_000
        InvoiceLine.objects.filter(invoice=invoice).update(
            line_number=models.F("line_number") + offset
        )
        for number, form in enumerate(kept, start=1):
            line = form.save(commit=False)
            line.invoice = invoice
            line.company = self.company
            line.line_number = number
            line.save()
        for number, pk in enumerate(others, start=len(kept) + 1):
            InvoiceLine.objects.filter(pk=pk).update(line_number=number)


# The factory makes a subclass of ``formset`` (the stubs type it as Django's base class).
InvoiceLineFormSet = cast(
    type[BaseInvoiceLineFormSet],
    forms.inlineformset_factory(
        Invoice,
        InvoiceLine,
        form=InvoiceLineForm,
        formset=BaseInvoiceLineFormSet,
        fields=["item", "description", "quantity", "unit_price"],
        extra=2,
        can_delete=True,
    ),
)
