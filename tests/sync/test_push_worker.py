"""Push and notifications through a real Celery worker on Redis, killed and restarted."""

from __future__ import annotations

import pytest

from crm.models import Organization
from sync.models import InboxEntry, OutboxEntry
from sync.selectors import find_local_object
from tests.helpers.live_sync import LIVE_CONNEC, LIVE_SYNC, hub_for, register_peer, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_sync(platform, settings, sandbox_group):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "CONNEC": LIVE_CONNEC,
        "SYNC": {**LIVE_SYNC, "LOCK_LEASE_SECONDS": 5, "PUSH_RETRY_BACKOFF": 0.2},
    }


@pytest.fixture
def peer(platform, sandbox_group, worker_sync):
    return hub_for(platform, sandbox_group.uid, register_peer(platform, sandbox_group.group))


def test_the_worker_pushes_local_changes_and_applies_notifications(
    company, peer, worker_sync, real_worker
):
    Organization.objects.create(company=company, name="Pushed by the worker")
    wait_until(lambda: [r["name"] for r in peer.list("organizations")] == ["Pushed by the worker"])
    wait_until(lambda: not OutboxEntry.objects.filter(status="pending").exists())

    remote = peer.create("organizations", {"name": "From the peer"})
    wait_until(
        lambda: find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    )
    # The records are applied (and committed) before the notification is marked done.
    wait_until(lambda: InboxEntry.objects.get().status == "done")


def test_changes_made_while_the_worker_is_dead_are_sent_after_its_restart(
    company, peer, worker_sync, real_worker
):
    real_worker.kill()
    Organization.objects.create(company=company, name="Queued while down")
    remote = peer.create("organizations", {"name": "Notified while down"})
    wait_until(lambda: InboxEntry.objects.exists())  # stored by the webhook, not applied

    real_worker.start()

    wait_until(
        lambda: (
            {r["name"] for r in peer.list("organizations")}
            == {
                "Queued while down",
                "Notified while down",
            }
        )
    )
    wait_until(
        lambda: find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    )
    wait_until(lambda: not OutboxEntry.objects.filter(status="pending").exists())
