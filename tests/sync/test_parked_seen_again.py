"""A record the webhook parks, delivered again: the dashboard, the record's status and the
admin say when it was first parked, when it was last seen and how often; a good version
applied since hides it until the bad one is delivered again (docs/sync.md)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest
import time_machine
from django.urls import reverse

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.inbox import process_inbox
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

URL = "/maestrano/connec/notifications"
AUTHORIZATION = "Basic " + base64.b64encode(b"app-1:key-1").decode()


@pytest.fixture(autouse=True)
def presets(two_presets):
    return two_presets


@pytest.fixture
def company() -> Company:
    return Company.objects.create(preset="maestrano", group_uid="cld-1", name="One", timezone="UTC")


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, tzinfo=dt.UTC)


def notify(client, record: dict, *, when: dt.datetime) -> dict:
    """POST a notification of one organization to the webhook at ``when``, as Connec!
    does (its inbox run is started by the test: on-commit work does not run inside a
    test's transaction)."""
    with time_machine.travel(when, tick=False):
        response = client.post(
            URL,
            json.dumps({"organizations": [record]}),
            content_type="application/json",
            HTTP_AUTHORIZATION=AUTHORIZATION,
        )
    assert response.status_code == 202, response.content
    return response.json()


def good(**fields) -> dict:
    return {"id": "org-1", "group_id": "cld-1", "name": "Globex", **fields}


#: A version of the same record the webhook refuses (and parks): ``updated_at`` no string.
BAD = good(updated_at=5)


def problems_panel(client) -> str:
    page = client.get("/dashboard/").content.decode()
    return re.search(r'<section class="card" id="problems">.*?</section>', page, re.S)[0]


def test_the_dashboard_says_when_a_parked_record_was_first_and_last_seen_and_how_often(
    client, company
):
    for day in (4, 5, 6):
        assert notify(client, BAD, when=at(day))["parked"] == 1
    log_in_to_company(client, company)

    panel = problems_panel(client)

    assert panel.count('data-kind="record"') == 1
    assert '<span class="parked-at">first parked 4 Mar 2030, 09:00 UTC</span>' in panel
    assert '<span class="last-seen">last seen 6 Mar 2030, 09:00 UTC</span>' in panel
    assert '<span class="times-seen">3 times</span>' in panel


def test_a_record_parked_once_was_last_seen_when_it_was_parked(client, company, admin_client):
    notify(client, BAD, when=at(4))
    log_in_to_company(client, company)

    panel = problems_panel(client)
    admin = admin_client.get(reverse("admin:maestrano_sync_syncrecorderror_changelist"))

    assert '<span class="last-seen">last seen 4 Mar 2030, 09:00 UTC</span>' in panel
    assert '<span class="times-seen">1 time</span>' in panel
    # The admin's "last seen" column too (it was empty for a record seen once).
    (cell,) = re.findall(r'<td class="field-last_seen[^"]*">([^<]*)</td>', admin.content.decode())
    assert cell == "March 4, 2030, 9 a.m."


def test_a_parked_record_delivered_again_after_a_good_version_is_shown_again(client, company):
    """Parked, then a good version of the record applied (the problem is fixed: hidden),
    then the bad version delivered again: a problem again, from its last delivery on."""
    notify(client, BAD, when=at(4))
    notify(client, good(updated_at="2030-03-05T00:00:00Z"), when=at(5))
    with time_machine.travel(at(5, 10), tick=False):
        assert process_inbox(company=company).processed == 1
    org = Organization.objects.get(company=company)
    log_in_to_company(client, company)
    status_url = f"/organizations/{org.pk}/sync.json"
    assert 'id="no-problems"' in problems_panel(client)  # the good version fixed it
    assert client.get(status_url).json()["state"] == "synced"

    notify(client, BAD, when=at(6))

    panel = problems_panel(client)
    assert panel.count('data-kind="record"') == 1
    assert "first parked 4 Mar 2030, 09:00 UTC" in panel
    assert "last seen 6 Mar 2030, 09:00 UTC" in panel
    assert '<span class="times-seen">2 times</span>' in panel
    status = client.get(status_url).json()
    assert (status["state"], status["at"]) == ("not_applied", "2030-03-06T09:00:00+00:00")
    assert "updated_at must be a string" in status["detail"]
    # The record's own page shows the problem with its retry button.
    page = client.get(f"/organizations/{org.pk}/").content.decode()
    assert 'id="sync-retry"' in page

    # A good version applied after that fixes it again.
    notify(client, good(name="Globex Corp", updated_at="2030-03-07T00:00:00Z"), when=at(7))
    with time_machine.travel(at(7, 10), tick=False):
        assert process_inbox(company=company).processed == 1
    assert 'id="no-problems"' in problems_panel(client)
    assert client.get(status_url).json()["state"] == "synced"
