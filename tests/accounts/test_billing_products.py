"""What the company's Admins may buy is ``MAESTRANO["BILLING"]["PRODUCTS"]`` (docs/billing.md,
'Products'): the billing page offers one form per product, each posting to
``buy/<key>/``; none is configured by default, and then nothing is offered and the route
answers 404. A product the setting gets wrong fails ``manage.py check``
(``maestrano.E040``) and is not offered.

Through the Django test client, logged in as the company's Admin (the transaction of the
test never commits: the bill's sending is not queued).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

SMS = {"description": "100 SMS", "amount_cents": 500, "units": "100"}
SEATS = {"description": "5 extra seats", "amount_cents": 1250, "units": "5"}


def products(settings, value=None, **billing):
    """``MAESTRANO["BILLING"]`` with ``PRODUCTS = value`` (``None``: the key left out)."""
    section = dict(billing)
    if value is not None:
        section["PRODUCTS"] = value
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": section}


@pytest.fixture
def admin(client):
    company = Company.objects.create(preset="maestrano", group_uid="cld-products", name="Wares")
    log_in_to_company(client, company, role="Admin", username="wares-admin")
    return client


def buy_forms(page: str) -> dict[str, str]:
    """``{form id: action}`` of the billing page's purchase forms."""
    found = re.findall(r'<form method="post" action="([^"]+)" id="(buy-[^"]+)"', page)
    return {form_id: action for action, form_id in found}


def buttons(page: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]*)</button>', page)


def form_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)


def test_without_products_the_billing_page_offers_nothing_and_the_route_is_a_404(admin, settings):
    products(settings)  # the default: no PRODUCTS

    page = admin.get("/billing/").content.decode()
    answer = admin.post("/billing/buy/sms/", {"idempotency_key": "k-none"})

    assert buy_forms(page) == {}
    assert "Buy " not in page
    assert "purchases-admins-only" not in page  # no purchase to say who makes
    assert answer.status_code == 404
    assert not AdHocCharge.objects.exists()


def test_a_product_not_configured_is_a_404(admin, settings):
    products(settings, {"sms": SMS})

    answer = admin.post("/billing/buy/seats/", {"idempotency_key": "k-unknown"})

    assert answer.status_code == 404
    assert not AdHocCharge.objects.exists()


def test_each_product_has_its_form_and_a_charge_that_carries_what_was_bought(admin, settings):
    products(settings, {"sms": SMS, "seats": SEATS})
    page = admin.get("/billing/").content.decode()
    key = form_key(page)

    bought = admin.post("/billing/buy/seats/", {"idempotency_key": key})
    again = admin.post("/billing/buy/seats/", {"idempotency_key": key}, follow=True)
    sms = admin.post("/billing/buy/sms/", {"idempotency_key": key})  # same page, other form

    assert buy_forms(page) == {"buy-sms": "/billing/buy/sms/", "buy-seats": "/billing/buy/seats/"}
    # Each with its description and price (the example project's money: USD by default).
    assert buttons(page) == ["Buy 100 SMS (USD\xa05.00)", "Buy 5 extra seats (USD\xa012.50)"]
    seats = AdHocCharge.objects.get(product="seats")
    assert (seats.amount_cents, seats.description, seats.units) == (
        1250,
        "5 extra seats",
        Decimal("5"),
    )
    assert seats.idempotency_key == f"seats:{key}"
    assert bought.status_code == 302
    assert bought["Location"] == f"/billing/purchases/{seats.pk}/"
    # The same form sent again: the purchase it made, said so, never a second one.
    assert again.redirect_chain[-1][0] == f"/billing/purchases/{seats.pk}/"
    assert "nothing was bought twice" in again.content.decode()
    assert AdHocCharge.objects.filter(product="seats").count() == 1
    # The other product's form of the same page is its own purchase (its own key).
    assert sms.status_code == 302
    assert AdHocCharge.objects.get(product="sms").idempotency_key == f"sms:{key}"


def test_a_member_is_told_purchases_are_for_admins_only_when_there_is_one(client, settings):
    company = Company.objects.create(preset="maestrano", group_uid="cld-wares-m", name="Wares")
    log_in_to_company(client, company, role="Member", username="wares-member")

    products(settings, {"seats": SEATS})
    offered = client.get("/billing/").content.decode()
    products(settings)
    none = client.get("/billing/").content.decode()

    assert buy_forms(offered) == {} and 'id="purchases-admins-only"' in offered
    assert 'id="purchases-admins-only"' not in none


def test_with_billing_off_a_configured_product_is_not_offered(admin, settings):
    products(settings, {"seats": SEATS}, ENABLED=False)

    page = admin.get("/billing/").content.decode()
    answer = admin.post("/billing/buy/seats/", {"idempotency_key": "k-off"})

    assert buy_forms(page) == {}
    assert answer.status_code == 404
    assert not AdHocCharge.objects.exists()


# --- the setting's check (maestrano.E040) -------------------------------------------------


def test_valid_products_pass_the_check(settings):
    products(
        settings,
        {"sms": SMS, "seats": SEATS, "priority_support": {"description": "x", "amount_cents": 1}},
    )

    assert not [m for m in run_checks() if m.id in ("maestrano.E039", "maestrano.E040")]


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("100 sms", SMS, "its key must be a slug (letters, digits, '-' and '_')"),
        ("x" * 65, SMS, "its key is too long (at most 64 characters)"),
        ("sms", "100 SMS", "must be a dict with description, amount_cents, units, not '100 SMS'"),
        ("sms", {**SMS, "amount_cents": 0}, "amount_cents must be a whole number of cents above 0"),
        ("sms", {**SMS, "amount_cents": 4.99}, "not 4.99"),
        ("sms", {**SMS, "amount_cents": "500"}, "not '500'"),
        ("sms", {**SMS, "amount_cents": True}, "not True"),
        ("sms", {"amount_cents": 500}, "description can't be blank"),
        ("sms", {**SMS, "description": "x" * 201}, "description is too long (at most 200"),
        ("sms", {**SMS, "units": "0"}, "units must be greater than 0"),
        ("sms", {**SMS, "units": "1.005"}, "units must have at most 8 digits and 2 decimals"),
        ("sms", {**SMS, "units": 0.1}, 'units must be a text or a Decimal ("100"), not 0.1'),
        ("sms", {**SMS, "price": 500}, "'price' is not a product's key"),
        ("sms", {**SMS, "unit": "1"}, "'unit' is not a product's key (did you mean 'units'?)"),
    ],
)
def test_a_product_that_cannot_be_bought_fails_the_check_and_is_not_offered(
    admin, settings, key, value, reason
):
    products(settings, {key: value, "seats": SEATS})

    with pytest.raises(SystemCheckError) as failure:
        call_command("check")
    page = admin.get("/billing/").content.decode()

    message = str(failure.value)
    assert "maestrano.E040" in message
    assert f"MAESTRANO['BILLING']['PRODUCTS'][{key!r}] cannot be bought, so it is not" in message
    assert reason in message
    assert "'seats'" not in message  # the valid one is not reported, and still offered
    assert buy_forms(page) == {"buy-seats": "/billing/buy/seats/"}


def test_products_that_are_not_a_dict_are_a_wrong_type(settings):
    products(settings, [SMS])

    found = [m for m in run_checks() if m.id in ("maestrano.E039", "maestrano.E040")]

    assert [m.id for m in found] == ["maestrano.E039"]
    assert 'MAESTRANO["BILLING"]["PRODUCTS"]' in found[0].msg
