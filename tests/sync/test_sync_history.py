"""Sync history: one row per push drain, batch of notifications and reconciliation, beside the
imports, shown by ``maestrano_sync_status`` and on the dashboard (docs/sync.md, 'Sync history')."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from crm.models import Organization, Person
from maestrano_sync.history import run_status
from maestrano_sync.importer import run_import
from maestrano_sync.models import InboxEntry, SyncRun
from maestrano_sync.push import drain_outbox
from maestrano_sync.reconcile import reconcile
from maestrano_sync.tasks import process_inbox_task
from tests.helpers.live_sync import (
    deliver_notifications,
)
from tests.helpers.users import log_in_to_company

from .conftest import clear_faults, set_faults


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


def park_a_merged_person(company, peer) -> None:
    """A local person whose first push Connec! merges into a record already linked here
    (equal email): parked when pushed."""
    peer.create("people", {"first_name": "Pat", "email": {"address": "pat@example.com"}})
    Person.objects.create(company=company, first_name="Pat", email="pat@example.com")
    drain_outbox(company=company)
    Person.objects.create(company=company, first_name="Patricia", email="pat@example.com")


def test_a_drain_that_parked_a_record_and_sent_others_is_partial(company, peer):
    park_a_merged_person(company, peer)
    Organization.objects.create(company=company, name="Acme")

    drain_outbox(company=company)

    last = runs(company, SyncRun.Kind.PUSH)[-1]
    assert last.status == SyncRun.Status.PARTIAL
    assert (last.counts["parked"], last.counts["done"]) == (1, 1)


def test_a_drain_that_parked_every_record_failed(company, peer):
    park_a_merged_person(company, peer)

    drain_outbox(company=company)

    last = runs(company, SyncRun.Kind.PUSH)[-1]
    assert last.status == SyncRun.Status.FAILED
    assert last.counts == {"sent": 1, "parked": 1, "requests": 1}


def test_a_drain_where_every_record_was_retried_is_shown_retrying_not_succeeded(
    platform, company, peer, client
):
    Organization.objects.create(company=company, name="Acme")
    Organization.objects.create(company=company, name="Globex")
    set_faults(platform, error_rate=1.0, scope="connec")
    try:
        result = drain_outbox(company=company)
    finally:
        clear_faults(platform)

    assert (result.done, result.retried) == (0, 2)
    [run] = runs(company, SyncRun.Kind.PUSH)
    assert run.status == SyncRun.Status.RETRYING
    assert run.counts == {"sent": 2, "retried": 2, "requests": 1}
    assert re.search(
        r"(?m)Push\s+retrying\s+2 records sent, 2 to try again, in 1 request$",
        status_command(company),
    )
    assert dashboard_rows(client, company)[0] == ("push", "retrying")
    assert ">retrying</span>" in dashboard(client, company)

    drain_outbox(company=company)  # Connec! answers again: the retried records go through

    assert runs(company, SyncRun.Kind.PUSH)[-1].status == SyncRun.Status.SUCCEEDED
    assert len(peer.list("organizations")) == 2


def test_a_drain_that_gave_up_on_a_record_is_not_shown_succeeded(
    platform, company, peer, client, settings
):
    from django.utils import timezone

    from maestrano_sync.models import OutboxEntry

    sync = settings.MAESTRANO.get("SYNC", {})
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {**sync, "MAX_ATTEMPTS": 2}}
    Organization.objects.create(company=company, name="Acme")
    set_faults(platform, error_rate=1.0, scope="connec")
    try:
        drain_outbox(company=company)  # attempt 1: to try again
        OutboxEntry.objects.update(next_attempt_at=timezone.now())  # due now
        drain_outbox(company=company)  # the last attempt: given up
    finally:
        clear_faults(platform)

    assert OutboxEntry.objects.get().gave_up
    last = runs(company, SyncRun.Kind.PUSH)[-1]
    assert last.status == SyncRun.Status.FAILED
    assert last.counts == {"sent": 1, "parked": 1, "requests": 1}
    assert re.search(
        r"(?m)Push\s+failed\s+1 record sent, 1 refused or given up, in 1 request$",
        status_command(company),
    )
    assert dashboard_rows(client, company)[0] == ("push", "failed")


def test_notifications_only_deferred_are_shown_retrying_not_succeeded(platform, company, peer):
    from maestrano_sandbox.models import NotificationDelivery

    # The person's organization is unknown here (its notification is lost): applying the
    # person fetches it from Connec!, which answers only errors: the notification waits.
    organization = peer.create("organizations", {"name": "Acme"})
    NotificationDelivery.objects.all().delete()
    peer.create("people", {"first_name": "Ada", "organization_id": organization["id"]})
    set_faults(platform, error_rate=1.0, scope="connec")
    try:
        deliver_notifications()
    finally:
        clear_faults(platform)

    assert InboxEntry.objects.get(company=company).status == InboxEntry.Status.PENDING
    [run] = runs(company, SyncRun.Kind.NOTIFICATIONS)
    assert run.counts == {"notifications_deferred": 1}
    assert run.status == SyncRun.Status.RETRYING

    process_inbox_task.apply((company.pk,))  # Connec! answers again

    last = runs(company, SyncRun.Kind.NOTIFICATIONS)[-1]
    assert last.status == SyncRun.Status.SUCCEEDED
    assert Person.objects.get(company=company).organization.name == "Acme"


@pytest.mark.parametrize(
    ("counts", "error", "status"),
    [
        ({}, "", SyncRun.Status.SUCCEEDED),
        ({"sent": 2, "done": 2, "requests": 1}, "", SyncRun.Status.SUCCEEDED),
        ({"notifications": 1, "skipped": 3}, "", SyncRun.Status.SUCCEEDED),
        ({"sent": 2, "retried": 2, "requests": 1}, "", SyncRun.Status.RETRYING),
        ({"sent": 2, "done": 1, "retried": 1}, "", SyncRun.Status.RETRYING),
        ({"notifications_deferred": 1}, "", SyncRun.Status.RETRYING),
        ({"sent": 2, "done": 1, "parked": 1}, "", SyncRun.Status.PARTIAL),
        ({"created": 5, "failed": 1, "retried": 1}, "", SyncRun.Status.PARTIAL),
        ({"sent": 1, "parked": 1}, "", SyncRun.Status.FAILED),
        ({"notifications": 1, "failed": 2}, "", SyncRun.Status.FAILED),
        ({"notifications_failed": 1, "notifications_deferred": 1}, "", SyncRun.Status.FAILED),
        ({"created": 4}, "organizations: Connec! unreachable", SyncRun.Status.FAILED),
    ],
)
def test_one_rule_decides_a_runs_status_from_its_counts(counts, error, status):
    assert run_status(counts=counts, error=error) == status


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
    from maestrano_sandbox.models import NotificationDelivery

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

    text = status_command(company)
    assert "recent runs:" in text
    assert re.search(
        r"(?m)Push\s+succeeded\s+1 record sent, 1 accepted by Connec!, in 1 request$", text
    ), text
    assert re.search(r"(?m)Notifications\s+succeeded\s+1 notification, 1 created$", text), text
    assert re.search(r"(?m)Initial import\s+succeeded\s+2 created$", text), text

    page = dashboard(client, company)
    rows = dashboard_rows(client, company)
    assert rows[:3] == [
        ("notifications", "succeeded"),
        ("push", "succeeded"),
        ("import", "succeeded"),
    ]
    assert "1 record sent, 1 accepted by Connec!, in 1 request" in page


def status_command(company) -> str:
    out = StringIO()
    call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
    return out.getvalue()


def dashboard(client, company) -> str:
    """The company's dashboard as an Admin of it sees it."""
    log_in_to_company(client, company)
    return client.get("/dashboard/").text


def dashboard_rows(client, company) -> list[tuple[str, str]]:
    """(kind, status) of the dashboard's recent sync runs, newest first."""
    return re.findall(r'<tr data-kind="(\w+)" data-status="(\w+)">', dashboard(client, company))


def test_a_runs_technical_error_is_under_collapsed_details_on_the_dashboard(company, client):
    SyncRun.objects.create(
        company=company,
        kind=SyncRun.Kind.PUSH,
        status=SyncRun.Status.FAILED,
        error="ConnectionError: http://127.0.0.1:9/connec/api/v2 refused",
    )

    page = dashboard(client, company)

    row = page[page.index('<tr data-kind="push" data-status="failed">') :].split("</tr>")[0]
    assert "127.0.0.1:9" in row
    # Only inside the details element a person opens, never in a tooltip or the row's text.
    outside = re.sub(r"<details.*?</details>", "", row, flags=re.S)
    assert "127.0.0.1" not in outside and "ConnectionError" not in outside
    # Plain words for the person, and what a push is.
    assert '<p class="run-advice">It stopped before the end' in row
    assert "changes made here, sent to Connec!" in row
