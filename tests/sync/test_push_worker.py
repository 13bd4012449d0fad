"""Push and notifications through a real Celery worker on Redis, killed and restarted."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from crm.models import Organization
from maestrano_sync.models import InboxEntry, OutboxEntry
from maestrano_sync.selectors import find_local_object
from tests.helpers.live_sync import (
    LIVE_CONNEC,
    LIVE_SYNC,
    hub_for,
    organization_record,
    register_peer,
    wait_until,
)

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


def queued_tasks() -> int:
    """Messages waiting in the worker's queue (the fixture's Redis keys)."""
    import redis

    from config.celery import app

    prefix = app.conf.broker_transport_options["global_keyprefix"]
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        return client.llen(f"{prefix}{app.conf.task_default_queue}")
    finally:
        client.close()


def notify_organization(platform, company, name: str) -> str:
    connec_id = str(uuid.uuid4())
    record = organization_record(company, connec_id, name, "2030-01-01T00:00:01.000000Z")
    response = requests.post(
        f"{platform.url}/maestrano/connec/notifications",
        json={"organizations": [record]},
        auth=platform.auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return connec_id


def applied(company, connec_ids) -> bool:
    return all(
        find_local_object(company=company, entity="organizations", connec_id=connec_id)
        for connec_id in connec_ids
    )


def test_notifications_of_a_company_queue_one_task_until_it_starts_and_all_are_applied(
    platform, company, worker_sync, real_worker
):
    real_worker.kill()
    ids = [notify_organization(platform, company, f"Notified {n}") for n in range(5)]
    assert InboxEntry.objects.filter(status="pending").count() == 5
    # One task applies them all: the other four publishes were skipped.
    assert queued_tasks() == 1

    real_worker.start()
    wait_until(lambda: applied(company, ids))
    wait_until(lambda: InboxEntry.objects.filter(status="done").count() == 5)

    # The task that ran let the next notifications publish again: applied at once, not
    # after the queued key's expiry (maestrano_sync.scheduling.INBOX_QUEUED_SECONDS, beyond the
    # wait).
    for round_ in range(3):
        later = notify_organization(platform, company, f"Later {round_}")
        wait_until(lambda later=later: applied(company, [later]), timeout=15)
    # The last row is marked done just after its record is applied: waited for, not raced.
    wait_until(lambda: not InboxEntry.objects.exclude(status="done").exists())


def test_a_notification_stored_while_the_task_runs_is_applied(
    platform, company, worker_sync, real_worker
):
    # Many notifications, posted while the worker applies the first ones: every one
    # is applied, whichever task (or follow-up) reads it.
    ids = [notify_organization(platform, company, f"Burst {n}") for n in range(30)]
    wait_until(lambda: applied(company, ids), timeout=30)
    wait_until(lambda: not InboxEntry.objects.exclude(status="done").exists(), timeout=30)


def test_a_change_whose_drain_found_an_import_page_locking_is_pushed_when_the_import_ends(
    company, peer, worker_sync, real_worker, settings
):
    from maestrano_sync.locks import acquire_lock, release_lock
    from maestrano_sync.tasks import import_company

    real_worker.kill()
    # As a page of an import holds it, for longer than the worker's restart may take on a
    # loaded machine (the worker's own lease, 5 s, ran out before its drain under CI load).
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "LOCK_LEASE_SECONDS": 300},
    }
    token = acquire_lock(company_id=company.pk)
    name = "Saved during the import"
    Organization.objects.create(company=company, name=name)
    assert queued_tasks() == 1  # its drain
    earlier = len(real_worker.log_path.read_text(errors="replace"))  # the first worker's lines
    real_worker.start()

    def drain_ended() -> bool:
        log = real_worker.log_path.read_text(errors="replace")[earlier:]
        return re.search(r"drain_outbox\[[^\]]+\] succeeded", log) is not None

    # The drain ran, found the company locked and ended (the page's holder is no task
    # that looks for work afterwards).
    wait_until(drain_ended)
    release_lock(company_id=company.pk, token=token)
    assert OutboxEntry.objects.get().status == "pending"

    import_company.delay(company.pk)

    # Pushed once the import ends, not at the next beat (none runs here).
    wait_until(
        lambda: [r["name"] for r in peer.list("organizations")] == ["Saved during the import"]
    )
    wait_until(lambda: not OutboxEntry.objects.filter(status="pending").exists())


@pytest.fixture
def slow_retries(platform, settings, sandbox_group):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "CONNEC": LIVE_CONNEC,
        "SYNC": {**LIVE_SYNC, "TASK_RETRY_BACKOFF": 60, "TASK_RETRY_BACKOFF_MAX": 60},
    }


def test_an_import_the_worker_will_try_again_is_retrying_not_failed(
    platform, company, slow_retries, real_worker
):
    from maestrano_sync.models import SyncRun
    from maestrano_sync.tasks import import_company

    from .conftest import set_faults

    set_faults(platform, error_rate=1.0, error_status=503, scope="connec")

    import_company.delay(company.pk)

    # The task stopped on Connec!'s 503 and scheduled its retry (a minute away).
    wait_until(lambda: SyncRun.objects.filter(company=company, status="retrying").exists())
    run = SyncRun.objects.get(company=company)
    assert "transient" in run.error
