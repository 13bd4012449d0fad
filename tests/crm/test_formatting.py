"""A price in another currency than the company's: its ISO code, and about how much it is
in the company's currency at the settings' fixed rate table (crm/formatting.py)."""

from __future__ import annotations

import datetime as dt

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


def test_a_foreign_price_is_converted_at_the_rate_table():
    conversion = formatting.converted(2900, "USD", formats=AUSTRALIAN)
    assert conversion == formatting.Conversion(
        amount="$43.50", rate="1 USD = 1.5 AUD", as_of="30 Nov 2026"
    )
    # Through the base currency: 10 EUR = 10 / 0.9 * 1.5 AUD.
    assert formatting.converted(1000, "EUR", formats=AUSTRALIAN).amount == "$16.67"


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
    assert 'about <span id="plan-converted">$43.50</span>' in page
    assert "the app's fixed rate of 1 USD = 1.5 AUD (30 Nov 2026)" in page
    assert "bills it in USD, not in AUD" in page


def test_a_plan_in_the_companys_currency_needs_no_note(australian_admin):
    client, company = australian_admin
    subscribe(company, currency="AUD")

    page = client.get("/billing/").text

    assert 'id="plan-price">$29.00<' in page
    assert "plan-currency-note" not in page


def test_the_example_project_ships_the_rate_table_its_readme_names(settings):
    from config import settings as project

    settings.CRM_EXCHANGE_RATES = project.CRM_EXCHANGE_RATES

    conversion = formatting.converted(2900, "USD", formats=AUSTRALIAN)

    assert conversion is not None and conversion.amount == "$43.50"
    assert "CRM_EXCHANGE_RATES" in (formatting.settings.BASE_DIR / "README.md").read_text()
