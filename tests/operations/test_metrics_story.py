"""A day of production through the live sandbox, seen from /metrics (docs/operations.md).

SSO login, a push, a notification, a parked record, a refused login and a change
waiting in the outbox: each moves the metric an operator would watch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.models import IdMap, OutboxEntry
from maestrano_sync.push import drain_outbox
from tests.helpers.live_sync import (
    LIVE_CONNEC,
    LIVE_SYNC,
    deliver_notifications,
    hub_for,
    register_peer,
)
from tests.helpers.saml import obtain_saml_response, post_saml_response
from tests.helpers.sso_flow import deliver, login

from .conftest import SCRAPER, basic_auth, scrape

#: Where to write the /metrics text after the story (for docs/operations.md), if set.
SAMPLE_FILE = os.environ.get("METRICS_SAMPLE_FILE", "")

PRESET = "maestrano"


@pytest.fixture
def operations(platform, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "CONNEC": LIVE_CONNEC,
        "SYNC": dict(LIVE_SYNC),
        "METRICS": {"BASIC_AUTH": SCRAPER},
    }
    return settings


def set_sync(settings, **values):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], **values},
    }


def test_the_story_of_a_company_moves_each_metric(platform, operations, client):
    before = scrape(client)

    # 1. A user logs in through SSO: the company is created.
    http = platform.session()
    answer = login(platform, http, user_uid="usr-ops", group_uid="cld-ops", group_name="Ops Co")
    assert answer.status_code == 302
    company = Company.objects.get(group_uid="cld-ops")

    # 2. A local change is pushed to Connec! when its transaction commits.
    pushed = Organization.objects.create(company=company, name="Acme", email="hello@acme.test")
    assert IdMap.objects.filter(object_id=str(pushed.pk)).exists()

    # 3. Another app of the group creates a record: Connec! notifies us.
    from maestrano_sandbox.models import Group

    peer = hub_for(platform, "cld-ops", register_peer(platform, Group.objects.get(uid="cld-ops")))
    peer.create("organizations", {"name": "Globex"})
    deliver_notifications()
    assert Organization.objects.filter(company=company, name="Globex").exists()

    # 4. A record Connec! refuses is parked.
    Organization.objects.create(company=company, name="Bad", email="not-an-email")
    assert OutboxEntry.objects.filter(status="parked").count() == 1

    # 5. A replayed SAML response is refused.
    other = platform.session()
    post = obtain_saml_response(platform, other, user_uid="usr-ops", group_uid="cld-ops")
    assert deliver(other, post).status_code == 302
    assert post_saml_response(other, post).status_code >= 400

    # 6. A change waits in the outbox (the drain is late).
    set_sync(operations, PUSH_ON_COMMIT=False)
    Organization.objects.create(company=company, name="Waiting", email="wait@acme.test")

    after = scrape(client)
    if SAMPLE_FILE:
        response = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(*SCRAPER))
        Path(SAMPLE_FILE).write_bytes(response.content)

    def delta(name, **labels):
        return after.total(name, **labels) - before.total(name, **labels)

    assert delta("maestrano_sso_logins_total", preset=PRESET) == 2
    assert delta("maestrano_sso_refusals_total", preset=PRESET) == 1
    [refusal] = [
        dict(labels)
        for (name, labels), value in after.items()
        if name == "maestrano_sso_refusals_total" and value > before.value(name, **dict(labels))
    ]
    assert refusal["reason"]  # a bounded reason, e.g. replayed_assertion
    # Platform-facing requests, by endpoint and status.
    assert (
        delta("maestrano_platform_requests_total", endpoint="maestrano_accounts:sso-consume") == 3
    )
    assert (
        delta(
            "maestrano_platform_requests_total",
            endpoint="maestrano_sync:connec-notifications",
            preset=PRESET,
        )
        >= 1
    )
    assert (
        delta(
            "maestrano_platform_request_duration_seconds_count",
            endpoint="maestrano_accounts:sso-consume",
        )
        == 3
    )
    # Calls to the platform: the pushes (batch requests: a refused record is still HTTP 200)
    # and the billing set-up of the new company on the Account API.
    assert delta("maestrano_platform_api_calls_total", api="connec", status="200") >= 2
    assert delta("maestrano_platform_api_calls_total", api="account") >= 1
    assert delta("maestrano_platform_api_call_duration_seconds_count", api="connec") >= 2
    # State read at scrape time.
    assert (
        after.value(
            "maestrano_parked_records", preset=PRESET, entity="organizations", direction="push"
        )
        == 1
    )
    assert (
        after.value(
            "maestrano_outbox_entries", preset=PRESET, entity="organizations", status="pending"
        )
        == 1
    )
    lag = after.value("maestrano_sync_lag_seconds", preset=PRESET, entity="organizations")
    assert lag > 0
    assert (
        after.value(
            "maestrano_sync_last_notification_age_seconds", preset=PRESET, entity="organizations"
        )
        > 0
    )
    assert after.value("maestrano_metrics_source_errors", source="sync") == 0

    # The late drain catches up: the lag is back to 0, the parked record stays.
    drain_outbox(company=company)
    caught_up = scrape(client)
    assert caught_up.value("maestrano_sync_lag_seconds", preset=PRESET, entity="organizations") == 0
    assert (
        caught_up.value(
            "maestrano_outbox_entries", preset=PRESET, entity="organizations", status="pending"
        )
        == 0
    )
    assert (
        caught_up.value(
            "maestrano_parked_records", preset=PRESET, entity="organizations", direction="push"
        )
        == 1
    )
