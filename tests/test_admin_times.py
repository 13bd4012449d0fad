"""Times in the admin: the request's time zone (``TIME_ZONE``, or one a middleware of the
project activates), one zone for every row, never each row's company's
(docs/deploy.md, "Times in the admin")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db(databases="__all__")

#: One instant, for three companies in three time zones.
INSTANT = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
ZONES = {"cld-syd": "Australia/Sydney", "cld-lon": "Europe/London", "cld-la": "America/Los_Angeles"}


@pytest.fixture
def companies():
    return [
        Company.objects.create(
            preset="maestrano",
            group_uid=uid,
            name=uid,
            timezone=zone,
            free_trial_end_at=INSTANT,
        )
        for uid, zone in ZONES.items()
    ]


def test_a_list_of_companies_in_several_zones_shows_one_instant_as_one_time(
    admin_client, companies
):
    page = admin_client.get(reverse("admin:maestrano_accounts_company_changelist"))

    assert page.status_code == 200
    assert page.content.decode().count("Jan. 1, 2026, 12:30 a.m.") == len(ZONES)  # UTC


def test_the_admin_follows_the_projects_time_zone(admin_client, companies, settings):
    settings.TIME_ZONE = "Australia/Sydney"

    page = admin_client.get(reverse("admin:maestrano_accounts_company_changelist"))

    assert page.content.decode().count("Jan. 1, 2026, 11:30 a.m.") == len(ZONES)


def test_a_change_form_shows_and_reads_times_in_the_same_zone(admin_client, companies):
    london = Company.objects.get(group_uid="cld-lon")
    url = reverse("admin:maestrano_accounts_company_change", args=[london.pk])

    page = admin_client.get(url)

    form = page.context["adminform"].form
    assert form["free_trial_end_at"].value().isoformat() == "2026-01-01T00:30:00+00:00"


def test_an_operators_own_company_does_not_change_the_admins_zone(client, companies, settings):
    """A staff user who also works in a company (the example project activates a
    company's zone for its own pages, crm.formatting) reads the admin in the project's."""
    sydney = Company.objects.get(group_uid="cld-syd")
    user = log_in_to_company(client, sydney)
    user.is_staff = user.is_superuser = True
    user.save()
    settings.TIME_ZONE = "Europe/London"  # 00:30 on the 1st there too

    page = client.get(reverse("admin:maestrano_accounts_company_changelist"))

    html = page.content.decode()
    assert html.count("Jan. 1, 2026, 12:30 a.m.") == len(ZONES)
    assert "11:30 a.m." not in html  # not Sydney's
