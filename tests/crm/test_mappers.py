"""The example mappers export local records as Connec! payloads, references through IdMap."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync import registry
from maestrano_sync.mappers import ReferenceResolver
from maestrano_sync.selectors import connec_ids_for_pks
from maestrano_sync.services import link_record

pytestmark = pytest.mark.django_db


def test_invoice_exports_nested_fields_lines_and_mapped_references():
    company = Company.objects.create(preset="maestrano", group_uid="cld-x", name="X")
    organization = Organization.objects.create(company=company, name="Org")
    item = Item.objects.create(company=company, code="A", name="A", sale_price=Decimal("2.50"))
    invoice = Invoice.objects.create(
        company=company,
        number="INV-9",
        organization=organization,
        status="PAID",
        transaction_date=datetime.date(2024, 5, 1),
        total=Decimal("5.00"),
    )
    InvoiceLine.objects.create(
        company=company,
        invoice=invoice,
        line_number=1,
        quantity=2,
        unit_price=Decimal("2.50"),
        item=item,
    )
    link_record(company=company, entity="organizations", obj=organization, connec_id="org-1")
    link_record(company=company, entity="items", obj=item, connec_id="item-1")
    resolver = ReferenceResolver(
        connec_ids={
            entity: connec_ids_for_pks(company=company, entity=entity, local_pks=pks)
            for entity, pks in (("organizations", [organization.pk]), ("items", [item.pk]))
        }
    )

    payload = registry.for_model(Invoice).to_connec(invoice, references=resolver)

    assert payload["transaction_number"] == "INV-9"
    assert payload["transaction_date"] == "2024-05-01"
    assert payload["total_amount"] == 5.0
    assert payload["organization_id"] == "org-1"
    assert "person_id" not in payload
    assert payload["lines"] == [
        {
            "line_number": 1,
            "description": "",
            "quantity": 2.0,
            "unit_price": {"net_amount": 2.5},
            "item_id": "item-1",
        }
    ]


def test_person_exports_email_as_a_nested_object():
    company = Company.objects.create(preset="maestrano", group_uid="cld-y", name="Y")
    person = Person.objects.create(company=company, first_name="Ada", email="ada@example.com")

    payload = registry.for_model(Person).to_connec(person, references=ReferenceResolver())

    assert payload["email"] == {"address": "ada@example.com"}
    assert payload["first_name"] == "Ada"
    assert "organization_id" not in payload


def test_admin_pages_of_crm_and_sync_load(admin_client):
    for path in (
        "/admin/crm/organization/",
        "/admin/crm/person/",
        "/admin/crm/item/",
        "/admin/crm/invoice/",
        "/admin/crm/invoice/add/",
        "/admin/maestrano_sync/idmap/",
        "/admin/maestrano_sync/syncrun/",
        "/admin/maestrano_sync/syncrecorderror/",
    ):
        assert admin_client.get(path).status_code == 200, path
