"""Every ``next`` a person or the platform may write leads to this site or nowhere.

One rule (``maestrano_accounts.pages.local_url``) for the five places that take one: the
SSO start's ``next`` (kept for after the login), the company switcher, the billing pages'
way back, the example's landing page and its sync-problem retry. Each is driven through
the Django test client with targets a browser would follow off the site.
"""

from __future__ import annotations

import pytest
from django.test import Client

from maestrano_accounts.models import Company, Membership
from tests.helpers.users import log_in_to_company

#: Targets that must never be followed: another host (several spellings a browser reads
#: as one), a script, a bare word, and a URL no parser takes.
FOREIGN = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "http://127.0.0.1:9/",
    "people",
    "http://[",
]


@pytest.fixture
def member_client(db):
    """A user of two companies, logged in (no SSO) with the first current."""
    company = Company.objects.create(group_uid="cld-next", name="Next Co")
    other = Company.objects.create(group_uid="cld-next-2", name="Other Co")
    client = Client()
    user = log_in_to_company(client, company, role="Admin", username="next")
    Membership.objects.create(company=other, user=user, role="Admin")
    return client, company, other


def _location(response) -> str:
    assert response.status_code in (301, 302), response.status_code
    return response["Location"]


@pytest.mark.parametrize("target", FOREIGN)
def test_the_company_switcher_never_follows_a_foreign_next(member_client, target):
    client, _company, other = member_client
    response = client.post(
        "/maestrano/switch-company", {"company_id": other.pk, "next": target}, follow=False
    )
    location = _location(response)
    assert location == "/dashboard/"


def test_the_company_switcher_follows_a_local_next(member_client):
    client, _company, other = member_client
    response = client.post(
        "/maestrano/switch-company", {"company_id": other.pk, "next": "/people/"}
    )
    assert _location(response) == "/people/"


@pytest.mark.parametrize("target", FOREIGN)
def test_the_landing_page_never_follows_a_foreign_next(member_client, target):
    client, _company, _other = member_client
    response = client.get("/", {"next": target})
    assert _location(response) == "/dashboard/"


def test_the_landing_page_follows_a_local_next(member_client):
    client, _company, _other = member_client
    assert _location(client.get("/", {"next": "/people/?q=a"})) == "/people/?q=a"
