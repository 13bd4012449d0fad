"""Sync mappers of the example models: what an adopter writes to sync their own models."""

from __future__ import annotations

from maestrano_sync import registry
from maestrano_sync.mappers import ChildMapping, Mapper

from .models import Invoice, InvoiceLine, Item, Organization, Person


@registry.register(Organization)
class OrganizationMapper(Mapper):
    entity = "organizations"
    fields = {
        "name": "name",
        "is_customer": "is_customer",
        "is_supplier": "is_supplier",
        "email": "email.address",
        "phone": "phone.landline",
        "address_line1": "address.billing.line1",
        "city": "address.billing.city",
        "postal_code": "address.billing.postal_code",
        "country": "address.billing.country",
    }
    matching_fields = ("name",)


@registry.register(Person)
class PersonMapper(Mapper):
    entity = "people"
    fields = {
        "title": "title",
        "first_name": "first_name",
        "last_name": "last_name",
        "job_title": "job_title",
        "email": "email.address",
    }
    references = {"organization": ("organization_id", "organizations")}
    matching_fields = ("email.address",)


@registry.register(Item)
class ItemMapper(Mapper):
    entity = "items"
    fields = {
        "code": "code",
        "name": "name",
        "description": "description",
        "sale_price": "sale_price.net_amount",
        "currency": "sale_price.currency",
        "purchase_price": "purchase_price.net_amount",
    }


class InvoiceLineMapping(ChildMapping):
    model = InvoiceLine
    path = "lines"
    parent_field = "invoice"
    position_field = "line_number"
    fields = {
        "line_number": "line_number",
        "description": "description",
        "quantity": "quantity",
        "unit_price": "unit_price.net_amount",
    }
    references = {"item": ("item_id", "items")}


@registry.register(Invoice)
class InvoiceMapper(Mapper):
    entity = "invoices"
    fields = {
        "type": "type",
        "number": "transaction_number",
        "transaction_date": "transaction_date",
        "due_date": "due_date",
        "status": "status",
        "total": "total_amount",
    }
    references = {
        "organization": ("organization_id", "organizations"),
        "person": ("person_id", "people"),
    }
    children = (InvoiceLineMapping,)
