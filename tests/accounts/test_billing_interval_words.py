"""How often a plan charges, in words: "every month", "every 3 months", "every 2 weeks"...
with each period's own plural, in the site's language (``charge_interval`` of
maestrano_accounts.billing.models), on the plans page, the plan's confirmation page and
the billing overview, the example project's own (templates/crm/_subscription.html) included.

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

#: The project's TEMPLATES without its own directory: the app's overview (the example
#: project's replaces the subscription's sentence with its own).
APP_TEMPLATES = [{**django_settings.TEMPLATES[0], "DIRS": []}]


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-words", name="Words Pty")


@pytest.fixture
def admin(client, company):
    log_in_to_company(client, company)
    return client


def offer(name: str, *, period: str, frequency: int) -> Plan:
    return Plan.objects.create(name=name, price_cents=900, period=period, frequency=frequency)


@pytest.mark.parametrize(
    ("period", "frequency", "words"),
    [
        ("Month", 1, "every month"),
        ("Month", 3, "every 3 months"),
        ("Week", 2, "every 2 weeks"),
        ("Day", 1, "every day"),
        ("SemiMonth", 2, "every 2 half months"),
        ("Year", 1, "every year"),
    ],
)
def test_the_plans_page_says_how_often_in_words(admin, period, frequency, words):
    plan = offer("Only", period=period, frequency=frequency)

    plans = admin.get("/billing/plans/").content.decode()
    confirm = admin.get(f"/billing/plans/{plan.pk}/").content.decode()

    assert f"{words}</td>" in plans
    assert words in confirm
    assert f"every {frequency} {period.lower()}<" not in plans  # the old singular


@override_settings(TEMPLATES=APP_TEMPLATES)
def test_the_overview_says_how_often_the_subscription_charges(admin, company):
    plan = offer("Quarterly", period="Month", frequency=3)
    CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=900,
        currency="USD",
        period="Month",
        frequency=3,
        start_date=timezone.now(),
        status="active",
    )

    assert "every 3 months" in admin.get("/billing/").content.decode()


@override_settings(LANGUAGE_CODE="fr")
def test_the_words_follow_the_sites_language(admin):
    offer("Trimestriel", period="Month", frequency=3)
    offer("Annuel", period="Year", frequency=1)

    plans = admin.get("/billing/plans/").content.decode()

    assert "tous les 3 mois" in plans
    assert "tous les ans" in plans


@pytest.mark.parametrize(
    ("period", "frequency", "words"),
    [
        ("Month", 3, "every 3 months"),
        ("Month", 1, "every month"),
        ("SemiMonth", 2, "every 2 half months"),
        ("Week", 1, "every week"),
        ("Year", 2, "every 2 years"),
    ],
)
@pytest.mark.parametrize("path", ["/billing/", "/dashboard/"])
def test_the_example_projects_pages_say_it_in_the_same_words(
    admin, company, path, period, frequency, words
):
    """The example project's subscription sentence (its overview and its dashboard)."""
    plan = offer("Its plan", period=period, frequency=frequency)
    CompanySubscription.objects.create(
        company=company,
        plan=plan,
        price_cents=900,
        currency="USD",
        period=period,
        frequency=frequency,
        start_date=timezone.now(),
        status="active",
    )

    page = admin.get(path).content.decode()

    assert f'id="plan-price">USD\u00a09.00</strong> {words}.</p>' in page
    assert " per " not in page.split('id="plan-price">')[1].split("</p>")[0]
