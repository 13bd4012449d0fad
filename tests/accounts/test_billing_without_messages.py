"""The billing pages in a project without Django's messages framework.

``django.contrib.messages`` is optional: the apps say things through it "when your project
uses it" (docs/install.md), as the logout and the company switch do. The billing pages
did not: in a project without ``MessageMiddleware`` (no admin, say), an Admin opening the
confirmation of the plan they are already on, or buying when the purchase is refused,
got a 500 from ``MessageFailure``. They now land where they would have, without the
message.

Through the Django test client, logged in as the company's Admin.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from django.utils import timezone

from maestrano_accounts.models import Company, CompanySubscription, Plan
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

WITHOUT_MESSAGES = [
    name
    for name in django_settings.MIDDLEWARE
    if name != "django.contrib.messages.middleware.MessageMiddleware"
]


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-nomsg", name="Quiet Pty")


@override_settings(MIDDLEWARE=WITHOUT_MESSAGES)
def test_the_plan_the_company_is_on_sends_back_to_the_plans(client, company):
    plan = Plan.objects.create(name="Current", price_cents=900)
    CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=900,
        currency="USD",
        period="Month",
        start_date=timezone.now(),
        status="active",
    )
    log_in_to_company(client, company)

    answer = client.get(f"/billing/plans/{plan.pk}/")

    assert answer.status_code == 302
    assert answer["Location"] == "/billing/plans/"


@override_settings(MIDDLEWARE=WITHOUT_MESSAGES)
def test_a_refused_purchase_sends_back_to_the_billing_page(client, company):
    log_in_to_company(client, company)

    # A form key no bill can carry (longer than an idempotency key may be): refused.
    answer = client.post("/billing/buy/sms/", {"idempotency_key": "k" * 200})

    assert answer.status_code == 302
    assert answer["Location"] == "/billing/"
    assert not company.charges.exists()
