"""What the company's people read of their recurring bill: one plain word per state, the
same on the billing page and the dashboard; the platform's own words stay for the admin
site (docs/billing.md, 'Status refresh')."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from maestrano_accounts.billing.models import CompanySubscription, Plan
from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

Status = CompanySubscription.Status


@pytest.fixture
def company_admin(client):
    company = Company.objects.create(preset="maestrano", group_uid="cld-words", name="Words Ltd")
    log_in_to_company(client, company)
    return client, company


def subscription(company, status, **fields) -> CompanySubscription:
    plan = Plan.objects.create(name="Basic", price_cents=2900, currency="USD")
    return CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=2900,
        currency="USD",
        period="Month",
        start_date=timezone.now() + dt.timedelta(days=14),
        status=status,
        **fields,
    )


def badge(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match, element_id
    return match.group(1)


@pytest.mark.parametrize(
    ("status", "fields", "word"),
    [
        (Status.PENDING, {}, "Being set up"),
        (
            Status.PENDING,
            {"sending_until": timezone.now() + dt.timedelta(minutes=5)},
            "Being set up",
        ),
        (Status.SUBMITTED, {"platform_id": "rbill-1"}, "Active"),
        (Status.ACTIVE, {"platform_id": "rbill-1"}, "Active"),
        (Status.EXPIRED, {"platform_id": "rbill-1"}, "Ended"),
        (Status.FAILED, {}, "Failed"),
    ],
)
def test_the_recurring_bill_says_one_plain_word_on_every_page(company_admin, status, fields, word):
    client, company = company_admin
    subscription(company, status, **fields)

    billing = client.get("/billing/").text
    dashboard = client.get("/dashboard/").text

    assert badge(billing, "recurring-bill-status") == word
    assert badge(dashboard, "plan-status") == word
    for page in (billing, dashboard):
        assert "Submitted" not in page and "not yet on the platform" not in page


def test_the_admin_site_keeps_the_platforms_words(client, company_admin):
    _, company = company_admin
    subscription(company, Status.SUBMITTED, platform_id="rbill-1")
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))

    listing = client.get("/admin/maestrano_accounts/companysubscription/").text

    assert ">Submitted<" in listing
