"""``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` outside a plan's limits (the admin's: a trial of at
most ``MAX_FREE_TRIAL_DAYS``, a frequency of 1 or more, a price in whole cents ≥ 0...) is
never stored: the check says so (``maestrano.E032``, tests/accounts/test_billing_settings.py),
and the login that creates a company still succeeds, its pages too (docs/billing.md, 'What
you configure').

The login is the sandbox's on a live server, as in tests/accounts/test_billing.py.
"""

from __future__ import annotations

import pytest

from maestrano_accounts.billing.services import InvalidDefaultPlan, get_default_plan
from maestrano_accounts.models import Company, CompanySubscription, Plan
from tests.accounts.test_billing import sso
from tests.accounts.test_billing_plans import recurring_bills

pytestmark = pytest.mark.django_db

TIMEOUT = 10

BAD_VALUES = [
    {"free_trial_days": 40_000},
    {"free_trial_days": "two weeks"},
    {"frequency": 0},
    {"price_cents": -100},
    {"price_cents": 29.99},
]


def default_plan(settings, **values):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "BILLING": {"DEFAULT_PLAN": {"name": "Broken", **values}},
    }


@pytest.mark.parametrize("values", BAD_VALUES)
def test_a_login_creates_the_company_and_stores_no_plan_outside_the_limits(
    platform, settings, values
):
    default_plan(settings, **values)

    http = sso(platform, group_uid="cld-broken-plan")
    billing = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    plans = http.get(f"{platform.url}/billing/plans/", timeout=TIMEOUT)

    assert billing.status_code == 200, billing.text[:2000]
    assert plans.status_code == 200, plans.text[:2000]
    assert Company.objects.filter(group_uid="cld-broken-plan").exists()
    assert not Plan.objects.filter(name="Broken").exists()
    assert not CompanySubscription.objects.exists()
    assert recurring_bills("cld-broken-plan") == []


@pytest.mark.parametrize("values", BAD_VALUES)
def test_the_other_offered_plan_is_chosen_when_the_default_one_is_outside_the_limits(
    platform, settings, values
):
    Plan.objects.create(name="Basic", price_cents=1500, currency="USD")
    default_plan(settings, **values)

    sso(platform, group_uid="cld-basic")

    subscription = CompanySubscription.objects.get(company__group_uid="cld-basic")
    assert subscription.plan.name == "Basic"
    assert [(bill.price_cents, bill.currency) for bill in recurring_bills("cld-basic")] == [
        (1500, "USD")
    ]
    assert list(Plan.objects.values_list("name", flat=True)) == ["Basic"]


@pytest.mark.parametrize("values", BAD_VALUES)
def test_the_service_refuses_to_create_it_and_names_the_setting(settings, values):
    default_plan(settings, **values)

    with pytest.raises(InvalidDefaultPlan) as refused:
        get_default_plan()

    assert str(refused.value).startswith("MAESTRANO['BILLING']['DEFAULT_PLAN']")
    assert list(refused.value.errors) == list(values)
    assert not Plan.objects.exists()


def test_a_plan_already_stored_under_its_name_is_used_as_it_is(settings):
    stored = Plan.objects.create(name="Broken", price_cents=900, free_trial_days=30)
    default_plan(settings, free_trial_days=40_000)

    assert get_default_plan() == stored


def test_values_given_as_text_are_stored_as_numbers(settings):
    default_plan(settings, free_trial_days="36500", frequency="2", price_cents="4900")

    plan = get_default_plan()

    plan.refresh_from_db()
    assert (plan.free_trial_days, plan.frequency, plan.price_cents) == (36_500, 2, 4900)
