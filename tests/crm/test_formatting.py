"""Every billed amount named by its currency's ISO code, never a bare ``$``; a price in
another currency than the company's also says about how much it is in the company's
currency at the settings' fixed rate table (crm/formatting.py)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm import formatting
from crm.formatting import Formats
from maestrano_accounts.billing.models import CompanySubscription, Plan
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY

AUSTRALIAN = Formats(locale="en_AU", timezone="Australia/Sydney", currency="AUD")
RATES = {"base": "USD", "as_of": "2026-11-30", "rates": {"AUD": "1.5", "EUR": "0.9"}}


@pytest.fixture(autouse=True)
def rate_table(settings):
    settings.CRM_EXCHANGE_RATES = RATES


def test_a_foreign_price_is_named_by_its_iso_code():
    assert formatting.money_with_code(2900, "usd", formats=AUSTRALIAN) == "USD\u00a029.00"
    assert formatting.money_with_code(290000, "JPY", formats=AUSTRALIAN) == "JPY\u00a02,900"
    assert formatting.money_with_code(None, "USD", formats=AUSTRALIAN) == ""


def test_money_names_its_currency_even_in_the_companys_own():
    american = Formats(locale="en_US", currency="USD")
    assert formatting.money(500, formats=AUSTRALIAN) == "AUD\u00a05.00"
    assert formatting.money(500, "usd", formats=AUSTRALIAN) == "USD\u00a05.00"
    assert formatting.money(500, formats=american) == "USD\u00a05.00"
    assert formatting.money(500, "AUD", formats=american) == "AUD\u00a05.00"
    assert formatting.money(123456, formats=Formats(locale="en_DE", currency="EUR")) == (
        "1.234,56\u00a0EUR"  # where the locale writes its symbol
    )
    assert formatting.money(500, formats=Formats()) == "USD\u00a05.00"  # no company currency


def test_a_foreign_price_is_converted_at_the_rate_table():
    conversion = formatting.converted(2900, "USD", formats=AUSTRALIAN)
    assert conversion == formatting.Conversion(
        amount="AUD\u00a043.50", rate="1 USD = 1.5 AUD", as_of="30 Nov 2026"
    )
    # Through the base currency: 10 EUR = 10 / 0.9 * 1.5 AUD.
    assert formatting.converted(1000, "EUR", formats=AUSTRALIAN).amount == "AUD\u00a016.67"


def test_nothing_is_converted_without_a_rate_or_a_difference(settings):
    assert formatting.converted(2900, "AUD", formats=AUSTRALIAN) is None
    assert formatting.converted(2900, "GBP", formats=AUSTRALIAN) is None
    assert formatting.converted(2900, "USD", formats=Formats()) is None  # no company currency
    settings.CRM_EXCHANGE_RATES = {"base": "USD", "rates": {"AUD": "lots", "EUR": "-1"}}
    assert formatting.converted(2900, "USD", formats=AUSTRALIAN) is None
    assert formatting.converted(1000, "EUR", formats=AUSTRALIAN) is None
    del settings.CRM_EXCHANGE_RATES
    assert formatting.converted(2900, "USD", formats=AUSTRALIAN) is None


@pytest.fixture
def australian_admin(client, db):
    company = Company.objects.create(
        preset="maestrano",
        group_uid="cld-au",
        name="Aussie Pty Ltd",
        currency="AUD",
        country="AU",
        timezone="Australia/Sydney",
    )
    user = get_user_model().objects.create_user("bruce")
    Membership.objects.create(user=user, company=company, role="Admin")
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return client, company


def subscribe(company, *, currency: str) -> CompanySubscription:
    plan = Plan.objects.create(name=f"Plan {currency}", price_cents=2900, currency=currency)
    return CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=2900,
        currency=currency,
        period="Month",
        start_date=timezone.now() + dt.timedelta(days=14),
    )


@pytest.mark.parametrize("path", ["/dashboard/", "/billing/"])
def test_a_usd_plan_of_an_australian_company_shows_both(australian_admin, path):
    client, company = australian_admin
    subscribe(company, currency="USD")

    page = client.get(path).text

    assert 'id="plan-price">USD\u00a029.00<' in page
    assert 'about <span id="plan-converted">AUD\u00a043.50</span>' in page
    assert "the app's fixed rate of 1 USD = 1.5 AUD (30 Nov 2026)" in page
    assert "bills it in USD, not in AUD" in page


def test_a_plan_in_the_companys_currency_needs_no_note(australian_admin):
    client, company = australian_admin
    subscribe(company, currency="AUD")

    page = client.get("/billing/").text

    assert 'id="plan-price">AUD\u00a029.00<' in page
    assert "plan-currency-note" not in page


def test_the_example_project_ships_the_rate_table_its_readme_names(settings):
    from config import settings as project

    settings.CRM_EXCHANGE_RATES = project.CRM_EXCHANGE_RATES

    conversion = formatting.converted(2900, "USD", formats=AUSTRALIAN)

    assert conversion is not None and conversion.amount == "AUD\u00a043.50"
    assert "CRM_EXCHANGE_RATES" in (formatting.settings.BASE_DIR / "README.md").read_text()


def test_every_billing_page_names_the_currency_of_its_amounts(australian_admin):
    from maestrano_accounts.billing.models import AdHocCharge

    client, company = australian_admin
    subscription = subscribe(company, currency="AUD")
    charge = AdHocCharge.objects.create(
        company=company, idempotency_key="k", amount_cents=500, currency="AUD", description="SMS"
    )

    pages = {
        path: client.get(path).text
        for path in (
            "/billing/",
            f"/billing/purchases/{charge.pk}/",
            "/billing/plans/",
            "/dashboard/",
        )
    }
    other = Plan.objects.create(name="Bigger", price_cents=4900, currency="AUD")
    pages["/billing/plans/<id>/"] = client.get(f"/billing/plans/{other.pk}/").text

    assert "AUD\u00a05.00" in pages["/billing/"]  # the SMS pack and the charge
    assert 'id="plan-price">AUD\u00a029.00<' in pages["/billing/"]
    assert pages[f"/billing/purchases/{charge.pk}/"].count("AUD\u00a05.00") == 1
    assert (
        "AUD\u00a029.00" in pages["/billing/plans/"]
        and subscription.plan.name in pages["/billing/plans/"]
    )
    assert "AUD\u00a05.00" in pages["/dashboard/"]
    assert "AUD\u00a049.00" in pages["/billing/plans/<id>/"]
    for path, page in pages.items():
        assert not re.search(r"\$\s*\d", page), path  # no bare "$5.00"


def test_invoice_totals_and_item_prices_name_their_currency(australian_admin):
    """Invoices (list and page) in the company's currency; an item's price in its own
    currency when it has one, else the company's: the same rule as billed amounts."""

    from crm.models import Invoice, InvoiceLine, Item

    client, company = australian_admin
    local = Item.objects.create(company=company, code="W", name="Widget", sale_price="12.50")
    Item.objects.create(company=company, code="G", name="Gadget", sale_price="7.25", currency="USD")
    invoice = Invoice.objects.create(company=company, number="INV-1", total=Decimal("1234.50"))
    InvoiceLine.objects.create(
        company=company, invoice=invoice, line_number=1, item=local, unit_price=Decimal("12.50")
    )

    items = client.get("/items/").text
    invoices = client.get("/invoices/").text
    page = client.get(f"/invoices/{invoice.pk}/").text

    assert "AUD\u00a012.50" in items and "USD\u00a07.25" in items
    assert "AUD\u00a01,234.50" in invoices
    assert 'id="invoice-total">AUD\u00a01,234.50<' in page
    for path, text in (("/items/", items), ("/invoices/", invoices), ("invoice", page)):
        assert not re.search(r"\$\s*\d", text), path  # no bare "$12.50"


def test_an_amount_without_any_currency_is_the_number_alone():
    assert formatting.amount(Decimal("12.5"), formats=Formats(locale="en_AU")) == "12.50"
    assert formatting.amount(Decimal("12.5"), "eur", formats=AUSTRALIAN) == "EUR\u00a012.50"
    assert formatting.amount(None, formats=AUSTRALIAN) == ""
