"""A time from the Account API that is not one never breaks a billing page or task: it is
read as unknown, with a warning (maestrano_integration/times.py, the rule of Connec!'s
times too), and what the app knows locally stands.

The sandbox's times come from its database and are always well formed: these answers are
served by a local stand-in of the Account API (tests/helpers/account_api.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
from django.utils import timezone

from maestrano_accounts.billing.tasks import refresh_billing_status_task
from maestrano_accounts.models import Company, CompanySubscription, Plan
from tests.helpers.account_api import account_api_for_presets
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

ACCOUNT_LOGGER = "maestrano_integration.account"

#: No such day; an offset PostgreSQL refuses; no UTC time (year 10000); no UTC time (year 0);
#: ISO forms the platform never sends (a week date, the basic form).
BAD_TIMES = [
    "2024-02-30T00:00:00Z",
    "2030-01-01T00:00:00+20:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2030-W01-1T00:00:00Z",
    "20300101T000000Z",
]


@pytest.fixture
def platform_api(settings):
    with account_api_for_presets(settings) as api:
        yield api


@pytest.fixture
def admin(client, platform_api):
    company = Company.objects.create(
        preset="maestrano", group_uid="cld-times", name="Acme", currency="AUD"
    )
    log_in_to_company(client, company)
    return client, company


def recurring_bill(**times):
    return {
        "object": "account_recurring_bill",
        "id": "rb-1",
        "group_id": "cld-times",
        "price_cents": 4900,
        "description": "Bigger subscription",
        "status": "submitted",
        "currency": "AUD",
        "period": "Month",
        "frequency": 1,
        **times,
    }


def time_warnings(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ACCOUNT_LOGGER and "read as unknown" in r.getMessage()
    ]


@pytest.mark.parametrize("bad_time", BAD_TIMES)
def test_choosing_a_plan_keeps_the_local_start_when_the_platform_answers_no_time(
    admin, platform_api, caplog, bad_time
):
    client, company = admin
    plan = Plan.objects.create(name="Bigger", price_cents=4900, currency="AUD")
    platform_api.answers[("POST", "recurring_bills")] = recurring_bill(
        start_date=bad_time, created_at=bad_time, updated_at=bad_time
    )

    with caplog.at_level(logging.WARNING, logger=ACCOUNT_LOGGER):
        done = client.post(f"/billing/plans/{plan.pk}/")
    page = client.get("/billing/")

    assert done.status_code == 302, done.content[:2000]
    assert ("POST", "recurring_bills") in platform_api.calls
    subscription = CompanySubscription.objects.get(company=company)
    assert subscription.platform_id == "rb-1"
    assert abs(subscription.start_date - timezone.now()) < dt.timedelta(days=60)  # its own
    assert page.status_code == 200 and 'id="plan-name">Bigger<' in page.text
    (start_warning, *_) = time_warnings(caplog)
    assert "account_recurring_bill 'rb-1': start_date is not a date-time" in start_warning
    assert repr(bad_time) in start_warning


@pytest.mark.parametrize("bad_time", BAD_TIMES)
def test_the_status_refresh_reads_statuses_past_a_bad_time(admin, platform_api, caplog, bad_time):
    _client, company = admin
    plan = Plan.objects.create(name="Bigger", price_cents=4900, currency="AUD")
    CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=4900,
        currency="AUD",
        period="Month",
        start_date=timezone.now() + dt.timedelta(days=3),
        platform_id="rb-1",
        status=CompanySubscription.Status.SUBMITTED,
    )
    platform_api.answers[("GET", "recurring_bills")] = [
        recurring_bill(status="active", start_date=bad_time, created_at=bad_time)
    ]

    with caplog.at_level(logging.WARNING, logger=ACCOUNT_LOGGER):
        result = refresh_billing_status_task()

    assert result["changed"] == 1, result
    assert CompanySubscription.objects.get(company=company).status == "active"
    assert time_warnings(caplog)


# --- a start no one would set: year 1 ------------------------------------------------------


def _confirmation(client, plan):
    """The plan's confirmation page, and the quickest of three answers, in seconds."""
    quickest = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        page = client.get(f"/billing/plans/{plan.pk}/")
        quickest = min(quickest, time.perf_counter() - started)
        assert page.status_code == 200, page.content[:2000]
    return page, quickest


def test_a_start_in_year_1_from_the_platform_gives_the_next_charge_at_once(admin, platform_api):
    """A time the rule accepts, so it is the subscription's start (the platform's answer
    is): the next charge is computed from it, not stepped through since year 1 (a daily
    plan: 739,000 cycles, about a second a page), and a plan change starts there."""
    client, company = admin
    daily = Plan.objects.create(name="Daily", price_cents=100, currency="AUD", period="Day")
    weekly = Plan.objects.create(name="Weekly", price_cents=500, currency="AUD", period="Week")
    platform_api.answers[("POST", "recurring_bills")] = recurring_bill(
        start_date="0001-01-01T00:00:00Z", period="Day"
    )
    assert client.post(f"/billing/plans/{daily.pk}/").status_code == 302
    subscription = CompanySubscription.objects.get(company=company)
    assert subscription.start_date == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    next_midnight = today + dt.timedelta(days=1)

    page, from_year_1 = _confirmation(client, weekly)
    CompanySubscription.objects.filter(pk=subscription.pk).update(
        start_date=today - dt.timedelta(days=2)
    )
    recent_page, from_recent_start = _confirmation(client, weekly)
    CompanySubscription.objects.filter(pk=subscription.pk).update(
        start_date=dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    )
    platform_api.answers[("POST", "recurring_bills")] = recurring_bill(id="rb-2", period="Week")
    platform_api.answers[("DELETE", "recurring_bills/rb-1")] = recurring_bill(status="cancelled")
    changed = client.post(f"/billing/plans/{weekly.pk}/")

    shown = f"from {next_midnight.day} {next_midnight:%b %Y}, 00:00 UTC."  # the crm's format
    assert shown in page.text and shown in recent_page.text
    # Stepping took 0.49 s against 0.006 s here; computed, both pages take the same time.
    assert from_year_1 < max(0.1, 5 * from_recent_start), (from_year_1, from_recent_start)
    assert changed.status_code == 302
    replacement = CompanySubscription.objects.get(company=company, plan=weekly)
    assert replacement.start_date == next_midnight  # the old bill's next charge
    assert replacement.replaces_id == subscription.pk
