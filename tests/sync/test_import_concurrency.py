"""A notification that arrives while the import writes a page: the page holds the company
lock, so the notification is applied after it, never under it (docs/sync.md, 'The initial
import'). The race needs PostgreSQL (SQLite lets one writer at a time in)."""

from __future__ import annotations

import pytest
from django.db import connection

from crm.models import Organization
from maestrano_sync import importer
from maestrano_sync.models import InboxEntry, SyncRecordError, SyncRun
from maestrano_sync.selectors import find_local_object
from tests.helpers.live_sync import deliver_notifications, hub_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers (one lock per file): the webhook cannot store a "
    "notification while the page's transaction is open",
)


@pytest.fixture(autouse=True)
def webhook_does_not_wait_for_the_lock(monkeypatch):
    """In eager mode the webhook runs the inbox task itself, which waits a while for a
    held lock; a worker's task ends at once (the lock holder picks its work up)."""
    monkeypatch.setattr("maestrano_sync.tasks.EAGER_LOCK_WAIT", 0)


def while_the_page_is_prepared(monkeypatch, action) -> list[int]:
    """Run ``action`` once, right after the import has read and mapped its first page of
    organizations and before it writes them."""
    real = importer.pipeline.prepare
    fired: list[int] = []

    def prepare(**kwargs):
        prepared = real(**kwargs)
        if kwargs["mapper"].entity == "organizations" and not fired:
            fired.append(1)
            action()
        return prepared

    monkeypatch.setattr(importer.pipeline, "prepare", prepare)
    return fired


def test_a_notification_of_a_record_the_page_creates_is_applied_after_it(
    company, sandbox_group, peer, monkeypatch
):
    record = sandbox_group.create("organizations", {"name": "V1"})

    def another_app_edits_it():
        peer.update("organizations", record["id"], {"name": "V2 by peer"})
        deliver_notifications()

    fired = while_the_page_is_prepared(monkeypatch, another_app_edits_it)
    run = importer.run_import(company=company, entities=["organizations"])

    assert fired
    assert list(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "V2 by peer"
    ]
    assert run.status == SyncRun.Status.SUCCEEDED
    assert not SyncRecordError.objects.exists()
    assert list(InboxEntry.objects.values_list("status", flat=True)) == ["done"]


def test_a_newer_notification_is_not_overwritten_by_the_older_page(
    platform, company, sandbox_group, peer, monkeypatch
):
    record = sandbox_group.create("organizations", {"name": "V1"})
    importer.run_import(company=company, entities=["organizations"])
    # V2, written with our own app's credentials: Connec! does not notify the writer.
    hub_for(platform, sandbox_group.uid, platform.app).update(
        "organizations", record["id"], {"name": "V2"}
    )

    def another_app_edits_it():
        peer.update("organizations", record["id"], {"name": "V3 by peer"})
        deliver_notifications()

    fired = while_the_page_is_prepared(monkeypatch, another_app_edits_it)
    run = importer.run_import(company=company, entities=["organizations"], restart=True)

    assert fired
    org = find_local_object(company=company, entity="organizations", connec_id=record["id"])
    assert org.name == "V3 by peer"
    assert run.status == SyncRun.Status.SUCCEEDED
