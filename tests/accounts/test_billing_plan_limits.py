"""A plan's limits: the admin refuses a free trial longer than ``MAX_FREE_TRIAL_DAYS`` and a
frequency below 1 with a clear error; a plan stored before those rules breaks no page, no
login and no recurring bill (its trial counts as the longest one; docs/billing.md, 'The
free trial'). A frequency of 0 is refused by the database too (migration ``0006``), and
one stored before is 1 since migration ``0005`` (docs/billing.md, 'Plan change').

The Account API is a local stand-in (tests/helpers/account_api.py) that records what it is
sent; the login is the sandbox's on a live server, as in tests/accounts/test_billing.py.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from maestrano_accounts.billing.models import MAX_FREE_TRIAL_DAYS
from maestrano_accounts.billing.services import LATEST_BILLING_MOMENT
from maestrano_accounts.models import Company, CompanySubscription, Plan
from maestrano_integration.times import platform_time
from tests.accounts.test_billing import sso
from tests.accounts.test_billing_bad_times import recurring_bill
from tests.helpers.account_api import account_api_for_presets
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

#: The largest trial a PositiveIntegerField stores: 5.9 million years.
ABSURD_TRIAL = 2**31 - 1


def plan_form(**values):
    return {
        "name": "Forever",
        "price_cents": "900",
        "period": "Month",
        "frequency": "1",
        "currency": "USD",
        "free_trial_days": "0",
        "offered": "on",
        **values,
    }


def add_plan(admin_client, **values):
    return admin_client.post(reverse("admin:maestrano_accounts_plan_add"), plan_form(**values))


# --- the admin refuses what the rules refuse -----------------------------------------------


@pytest.mark.parametrize("days", [str(MAX_FREE_TRIAL_DAYS + 1), str(ABSURD_TRIAL), "10" * 20])
def test_the_admin_refuses_a_free_trial_too_long_with_a_clear_error(admin_client, days):
    page = add_plan(admin_client, free_trial_days=days)

    assert page.status_code == 200
    errors = page.context["adminform"].form.errors["free_trial_days"]
    assert errors, errors
    if int(days) <= ABSURD_TRIAL:
        assert errors == [f"A free trial is at most {MAX_FREE_TRIAL_DAYS} days (100 years)."]
    assert not Plan.objects.filter(name="Forever").exists()


def test_the_admin_accepts_the_longest_free_trial(admin_client):
    done = add_plan(admin_client, free_trial_days=str(MAX_FREE_TRIAL_DAYS))

    assert done.status_code == 302
    assert Plan.objects.get(name="Forever").free_trial_days == MAX_FREE_TRIAL_DAYS


@pytest.mark.parametrize("frequency", ["0", "-1"])
def test_the_admin_refuses_a_frequency_below_one(admin_client, frequency):
    page = add_plan(admin_client, frequency=frequency)

    assert page.status_code == 200
    errors = page.context["adminform"].form.errors["frequency"]
    assert "A plan charges every 1 or more periods." in errors
    assert not Plan.objects.filter(name="Forever").exists()


def test_the_admin_refuses_a_frequency_of_zero_on_an_existing_plan(admin_client):
    plan = Plan.objects.create(name="Forever", price_cents=900)
    url = reverse("admin:maestrano_accounts_plan_change", args=[plan.pk])

    page = admin_client.post(url, plan_form(frequency="0"))

    assert page.status_code == 200
    assert "A plan charges every 1 or more periods." in page.content.decode()
    plan.refresh_from_db()
    assert plan.frequency == 1


def test_the_admins_list_shows_a_plan_stored_with_an_absurd_trial(admin_client):
    Plan.objects.create(name="Forever", price_cents=900, free_trial_days=ABSURD_TRIAL)

    page = admin_client.get(reverse("admin:maestrano_accounts_plan_changelist"))

    assert page.status_code == 200 and "Forever" in page.content.decode()


# --- plans stored before the rules: the pages and the recurring bill -----------------------


@pytest.fixture
def stand_in(settings):
    """The Account API's stand-in, recording what the app sends."""
    with account_api_for_presets(settings) as api:
        yield api


@pytest.fixture
def company_admin(client, stand_in):
    company = Company.objects.create(
        preset="maestrano", group_uid="cld-times", name="Acme", currency="USD"
    )
    log_in_to_company(client, company)
    return client, company


def sent_start_date(stand_in):
    (body,) = [b for (m, r, b) in stand_in.bodies if (m, r) == ("POST", "recurring_bills")]
    return platform_time(json.loads(body)["start_date"], required=True)


@pytest.mark.parametrize("days", [ABSURD_TRIAL, 1_000_000_000, MAX_FREE_TRIAL_DAYS + 1])
def test_a_stored_absurd_trial_counts_as_the_longest_on_the_plan_pages_and_the_bill(
    company_admin,
    stand_in,
    days,
):
    client, company = company_admin
    plan = Plan.objects.create(name="Forever", price_cents=900, free_trial_days=days)
    longest = company.created_at + dt.timedelta(days=MAX_FREE_TRIAL_DAYS)
    stand_in.answers[("POST", "recurring_bills")] = recurring_bill(currency="USD", price_cents=900)

    plans = client.get("/billing/plans/")
    confirmation = client.get(f"/billing/plans/{plan.pk}/")
    done = client.post(f"/billing/plans/{plan.pk}/")
    billing = client.get("/billing/")

    assert plans.status_code == 200 and "Forever" in plans.content.decode()
    assert confirmation.status_code == 200
    assert f"{longest:%Y}" in confirmation.content.decode()
    assert done.status_code == 302, done.content[:2000]
    assert billing.status_code == 200
    subscription = CompanySubscription.objects.get(company=company)
    assert subscription.start_date == longest
    assert sent_start_date(stand_in) == longest  # the Account API's data


# --- a frequency of 0: refused by the database, repaired by migration 0005 ------------------


def test_the_database_refuses_a_frequency_of_0_written_past_the_admin(company_admin):
    """``update()`` skips the model's validator: the check constraints of ``0006`` refuse it."""
    _client, company = company_admin
    plan = Plan.objects.create(name="Monthly", price_cents=900)
    subscription = CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=900,
        currency="USD",
        period="Month",
        start_date=timezone.now(),
    )

    for rows in (
        Plan.objects.filter(pk=plan.pk),
        CompanySubscription.objects.filter(pk=subscription.pk),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.update(frequency=0)

    plan.refresh_from_db()
    subscription.refresh_from_db()
    assert (plan.frequency, subscription.frequency) == (1, 1)


BEFORE_0005 = ("maestrano_accounts", "0004_plan_trial_and_frequency_limits")


def migrate_to(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_a_frequency_of_0_stored_before_0005_becomes_1_and_the_pages_say_every_month(
    client, settings
):
    company = Company.objects.create(
        preset="maestrano", group_uid="cld-zero", name="Zero Ltd", currency="USD"
    )
    old = migrate_to([BEFORE_0005])
    try:
        OldPlan = old.get_model("maestrano_accounts", "Plan")
        OldSubscription = old.get_model("maestrano_accounts", "CompanySubscription")
        zero = OldPlan.objects.create(name="Zero", price_cents=900, frequency=0)
        OldPlan.objects.create(name="Quarterly", price_cents=2500, frequency=3)
        OldSubscription.objects.create(
            company_id=company.pk,
            plan=zero,
            price_cents=900,
            currency="USD",
            period="Month",
            frequency=0,
            start_date=timezone.now(),
            status="active",
        )
    finally:
        migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert dict(Plan.objects.values_list("name", "frequency")) == {"Zero": 1, "Quarterly": 3}
    assert list(CompanySubscription.objects.values_list("frequency", flat=True)) == [1]
    log_in_to_company(client, company)
    plans = client.get("/billing/plans/").content.decode()
    billing = client.get("/billing/").content.decode()
    assert "every 0" not in plans and "per 0" not in billing
    assert "9.00 every month</td>" in plans  # the Zero plan
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.filter(name="Quarterly").update(frequency=0)


# --- the login that creates the company -------------------------------------------------


def test_a_company_created_at_login_on_a_plan_with_an_absurd_trial_is_subscribed(platform):
    Plan.objects.create(name="Standard", price_cents=2900, free_trial_days=ABSURD_TRIAL)

    http = sso(platform, group_uid="cld-forever")
    page = http.get(f"{platform.url}/billing/", timeout=10)

    assert page.status_code == 200
    company = Company.objects.get(group_uid="cld-forever")
    subscription = CompanySubscription.objects.get(company=company)
    longest = company.created_at + dt.timedelta(days=MAX_FREE_TRIAL_DAYS)
    # The sandbox answers the start it stored, to the second.
    assert abs(subscription.start_date - longest) < dt.timedelta(seconds=1)
    assert subscription.start_date > timezone.now() + dt.timedelta(days=365 * 99)


@pytest.mark.parametrize("days", [ABSURD_TRIAL, MAX_FREE_TRIAL_DAYS + 1])
def test_the_pages_give_the_trial_days_that_count_not_those_stored(company_admin, stand_in, days):
    """The first charge is explained by the days that set it (36,500), never by the stored
    count next to a clamped date ("40000 free days" ending 100 years after creation)."""
    client, company = company_admin
    plan = Plan.objects.create(name="Forever", price_cents=900, free_trial_days=days)
    stand_in.answers[("POST", "recurring_bills")] = recurring_bill(currency="USD", price_cents=900)
    assert client.post(f"/billing/plans/{plan.pk}/").status_code == 302

    billing = client.get("/billing/").content.decode()
    plans = client.get("/billing/plans/").content.decode()

    longest = company.created_at + dt.timedelta(days=MAX_FREE_TRIAL_DAYS)
    assert f"First charge on {longest.day} {longest:%b %Y}" in billing
    assert f"the Forever plan includes {MAX_FREE_TRIAL_DAYS} free days from" in billing
    assert f'<td data-label="Free trial">{MAX_FREE_TRIAL_DAYS} days</td>' in plans
    assert str(days) not in billing and str(days) not in plans


# --- a frequency whose next cycle ends after year 9999 ---------------------------------------


@pytest.mark.parametrize(
    ("period", "frequency"),
    [
        ("Year", 32_767),  # the largest PostgreSQL's smallint column stores: 32,767 years
        pytest.param(
            "Day",
            10**9,
            marks=pytest.mark.skipif(
                connection.vendor != "sqlite", reason="only SQLite stores a billion"
            ),
        ),
    ],
)
def test_the_next_charge_past_year_9999_breaks_no_page_and_no_plan_change(
    company_admin, stand_in, period, frequency
):
    """The old recurring bill's next charge (the plan confirmation's first charge, the new
    bill's start) is past any date: it is the latest moment billing computes, 30 Dec 9999
    (docs/billing.md, 'Plan change'), instead of an OverflowError, a 500."""
    client, company = company_admin
    eon = Plan.objects.create(name="Eon", price_cents=900, period=period, frequency=frequency)
    CompanySubscription.objects.create(
        company=company,
        plan=eon,
        price_cents=900,
        currency="USD",
        period=period,
        frequency=frequency,
        start_date=timezone.now() - dt.timedelta(days=30),
        platform_id="rb-1",
        status=CompanySubscription.Status.ACTIVE,
    )
    premium = Plan.objects.create(name="Premium", price_cents=4900)
    stand_in.answers[("DELETE", "recurring_bills/rb-1")] = recurring_bill(status="cancelled")
    stand_in.answers[("POST", "recurring_bills")] = recurring_bill(
        id="rb-2", currency="USD", price_cents=4900
    )

    billing = client.get("/billing/")
    plans = client.get("/billing/plans/")
    confirmation = client.get(f"/billing/plans/{premium.pk}/")
    done = client.post(f"/billing/plans/{premium.pk}/")

    assert billing.status_code == 200 and plans.status_code == 200
    assert confirmation.status_code == 200, confirmation.content[:2000]
    assert "30 Dec 9999" in confirmation.content.decode()
    assert done.status_code == 302, done.content[:2000]
    replacement = CompanySubscription.objects.get(company=company, plan=premium)
    assert replacement.start_date == LATEST_BILLING_MOMENT
    assert sent_start_date(stand_in) == LATEST_BILLING_MOMENT  # the Account API's data
    assert ("DELETE", "recurring_bills/rb-1") in stand_in.calls
