"""The example app's pages answer stale, tampered or unstorable input with a message, not a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm.forms import BaseInvoiceLineFormSet
from crm.models import Invoice, InvoiceLine, Organization
from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def ours():
    return Company.objects.create(preset="maestrano", group_uid="cld-ours", name="Ours")


@pytest.fixture
def theirs():
    return Company.objects.create(preset="maestrano", group_uid="cld-theirs", name="Theirs")


@pytest.fixture
def app(client, ours):
    log_in_to_company(client, ours)
    return client


def make_invoice(company, number, *lines):
    organization = Organization.objects.create(company=company, name=f"Org {number}")
    invoice = Invoice.objects.create(company=company, number=number, organization=organization)
    for position, description in enumerate(lines, start=1):
        InvoiceLine.objects.create(
            company=company,
            invoice=invoice,
            line_number=position,
            description=description,
            quantity=1,
            unit_price=Decimal(5),
        )
    return invoice


def edit(app, invoice, line_id, **extra):
    data = {
        "type": "CUSTOMER",
        "number": invoice.number,
        "status": "DRAFT",
        "organization": invoice.organization_id,
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-0-id": line_id,
        "lines-0-description": "Edited",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "4",
        **extra,
    }
    return app.post(f"/invoices/{invoice.pk}/", data)


def lines_of(invoice):
    return list(invoice.lines.order_by("line_number").values_list("line_number", "description"))


@pytest.mark.parametrize("case", ["another company's line", "another invoice's line", "deleted"])
def test_a_line_id_not_of_this_invoice_is_a_message(app, ours, theirs, case):
    invoice = make_invoice(ours, "INV-1", "Mine")
    mine = invoice.lines.get()
    other = {
        "another company's line": lambda: make_invoice(theirs, "T-1", "Theirs").lines.get(),
        "another invoice's line": lambda: make_invoice(ours, "INV-2", "Other").lines.get(),
        "deleted": lambda: mine,
    }[case]()
    line_id = other.pk
    if case == "deleted":
        mine.delete()

    response = edit(app, invoice, line_id)

    assert response.status_code == 400
    assert BaseInvoiceLineFormSet.STALE_MESSAGE in response.context["lines"].non_form_errors()
    assert b"Reload the page" in response.content
    other_lines = InvoiceLine.objects.exclude(invoice=invoice)
    assert "Edited" not in set(other_lines.values_list("description", flat=True))
    assert lines_of(invoice) == ([] if case == "deleted" else [(1, "Mine")])


def test_a_line_added_meanwhile_is_kept_after_the_lines_of_the_page(app, ours):
    invoice = make_invoice(ours, "INV-1", "Mine", "Added meanwhile")
    mine = invoice.lines.get(line_number=1)

    response = edit(
        app,
        invoice,
        mine.pk,
        **{"lines-TOTAL_FORMS": "2", "lines-1-description": "New", "lines-1-quantity": "1"},
    )

    assert response.status_code == 302
    assert lines_of(invoice) == [(1, "Edited"), (2, "New"), (3, "Added meanwhile")]


@pytest.mark.parametrize("plural", ["organizations", "people", "items", "invoices"])
@pytest.mark.parametrize("query", ["%00", "a%00b"])
def test_a_search_for_text_no_record_holds_finds_nothing(app, ours, plural, query):
    Organization.objects.create(company=ours, name="a")

    response = app.get(f"/{plural}/?q={query}")

    assert response.status_code == 200
    assert response.context["rows"] == []
