"""Periodic reconciliation: changes whose notification never arrived are fetched and applied."""

from __future__ import annotations

import pytest

from crm.models import Organization, Person
from maestrano_sync.models import IdMap, OutboxEntry
from maestrano_sync.reconcile import reconcile
from maestrano_sync.selectors import connec_id_for, find_local_object


@pytest.fixture
def peer(lost_notifications, peer):
    """The conftest's peer, with notifications never delivered."""
    return peer


@pytest.fixture
def lost_notifications(live_sync, settings):
    """The hub never delivers notifications (as if they were all lost)."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }


def test_reconciliation_applies_changes_whose_notifications_were_lost(company, peer):
    org = peer.create("organizations", {"name": "Missed Co"})
    person = peer.create(
        "people", {"first_name": "Ada", "last_name": "Byron", "organization_id": org["id"]}
    )

    summary = reconcile(company=company)

    assert summary["organizations"]["created"] == 1
    assert summary["people"]["created"] == 1
    local = find_local_object(company=company, entity="people", connec_id=person["id"])
    assert local.organization.name == "Missed Co"

    peer.update("organizations", org["id"], {"name": "Missed Co Ltd"})
    again = reconcile(company=company)

    assert again["organizations"] == {**again["organizations"], "updated": 1, "created": 0}
    assert again["people"]["created"] + again["people"]["updated"] == 0
    assert Organization.objects.get(company=company).name == "Missed Co Ltd"


def test_reconciliation_skips_the_echo_of_our_own_pushes(company, peer):
    Organization.objects.create(company=company, name="Ours")
    pushed = OutboxEntry.objects.count()

    summary = reconcile(company=company)

    assert summary["organizations"]["created"] == 0
    assert Organization.objects.filter(company=company).count() == 1
    assert OutboxEntry.objects.count() == pushed


def test_a_push_whose_answer_was_lost_is_linked_not_duplicated(company, peer):
    org = Organization.objects.create(company=company, name="Ours")
    remote_id = connec_id_for(company=company, obj=org)
    IdMap.objects.all().delete()  # the worker died after Connec! applied the push

    reconcile(company=company)

    assert list(Organization.objects.filter(company=company)) == [org]
    assert connec_id_for(company=company, obj=org) == remote_id
    assert not Person.objects.exists()


def test_the_beat_schedule_runs_reconciliation_and_the_drain_safety_net(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"maestrano_sync.reconcile_all", "maestrano_sync.drain_all"} <= tasks
