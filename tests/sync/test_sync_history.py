"""Sync history: one row per push drain, batch of notifications and reconciliation, beside the
imports, shown by ``maestrano_sync_status`` and on the dashboard (docs/sync.md, 'Sync history')."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.models import Membership
from accounts.sessions import CURRENT_COMPANY_KEY
from crm.models import Organization, Person
from sync.importer import run_import
from sync.models import SyncRun
from sync.push import drain_outbox
from sync.reconcile import reconcile
from tests.helpers.live_sync import (
    deliver_notifications,
)


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held."""
    return peer


def runs(company, kind):
    return list(SyncRun.objects.filter(company=company, kind=kind).order_by("pk"))


def test_each_drain_that_sent_something_is_one_history_row(company, peer):
    Organization.objects.create(company=company, name="Acme")
    Organization.objects.create(company=company, name="Globex")

    drain_outbox(company=company)
    drain_outbox(company=company)  # nothing due: no row

    [run] = runs(company, SyncRun.Kind.PUSH)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts == {"sent": 2, "done": 2, "requests": 1}
    assert run.finished_at >= run.started_at


def test_a_drain_that_parked_a_record_is_partial(company, peer):
    peer.create("people", {"first_name": "Pat", "email": {"address": "pat@example.com"}})
    Person.objects.create(company=company, first_name="Pat", email="pat@example.com")
    drain_outbox(company=company)
    Person.objects.create(company=company, first_name="Patricia", email="pat@example.com")

    drain_outbox(company=company)

    last = runs(company, SyncRun.Kind.PUSH)[-1]
    assert last.status == SyncRun.Status.PARTIAL
    assert last.counts["parked"] == 1


def test_notifications_and_reconciliations_are_recorded_one_row_per_run(company, peer):
    peer.create("organizations", {"name": "From the peer"})
    peer.create("organizations", {"name": "Also from the peer"})
    deliver_notifications()

    notified = runs(company, SyncRun.Kind.NOTIFICATIONS)
    assert len(notified) >= 1
    assert sum(run.counts.get("created", 0) for run in notified) == 2
    assert all(run.status == SyncRun.Status.SUCCEEDED for run in notified)

    # A change whose notification is lost: the reconciliation finds it.
    record = peer.create("organizations", {"name": "Missed"})
    from sandbox.models import NotificationDelivery

    NotificationDelivery.objects.all().delete()
    reconcile(company=company)
    reconcile(company=company)  # nothing new: no row

    [reconciled] = runs(company, SyncRun.Kind.RECONCILE)
    assert reconciled.counts.get("created") == 1, (reconciled.counts, record)
    assert reconciled.status == SyncRun.Status.SUCCEEDED


def test_the_status_command_and_the_dashboard_list_the_recent_runs(
    sandbox_group, company, peer, client
):
    sandbox_group.seed(organizations=1, people=1, items=0, invoices=0)
    run_import(company=company)
    Organization.objects.create(company=company, name="Pushed")
    drain_outbox(company=company)
    peer.create("organizations", {"name": "Notified"})
    deliver_notifications()

    out = StringIO()
    call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
    text = out.getvalue()
    assert "recent runs:" in text
    assert re.search(r"Push\s+succeeded\s+1 sent, 1 done, 1 requests", text), text
    assert re.search(r"Notifications\s+succeeded\s+1 notifications, 1 created", text), text
    assert re.search(r"Initial import\s+succeeded\s+2 created", text), text

    user = get_user_model().objects.create_user("ada")
    Membership.objects.create(user=user, company=company, role="Admin")
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    page = client.get("/dashboard/").text
    rows = re.findall(r'<tr data-kind="(\w+)" data-status="(\w+)">', page)
    assert rows[:3] == [
        ("notifications", "succeeded"),
        ("push", "succeeded"),
        ("import", "succeeded"),
    ]
    assert "1 sent, 1 done, 1 requests" in page
