"""A time from the Account API that is not one never breaks a billing page or task: it is
read as unknown, with a warning (maestrano_integration/times.py, the rule of Connec!'s
times too), and what the app knows locally stands.

The sandbox's times come from its database and are always well formed: these answers are
served by a local stand-in of the Account API (tests/helpers/account_api.py).
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from maestrano_accounts.billing.tasks import refresh_billing_status_task
from maestrano_accounts.models import Company, CompanySubscription, Plan
from tests.conftest import preset_values
from tests.helpers.account_api import account_api
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

ACCOUNT_LOGGER = "maestrano_integration.account"

#: No such day; an offset PostgreSQL refuses; no UTC time (year 10000); no UTC time (year 0).
BAD_TIMES = [
    "2024-02-30T00:00:00Z",
    "2030-01-01T00:00:00+20:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
]


@pytest.fixture
def platform_api(settings):
    with account_api() as api:
        settings.MAESTRANO = {
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                "maestrano": preset_values(api_id="app-1", api_key="key-1", api={"host": api.url})
            },
        }
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
