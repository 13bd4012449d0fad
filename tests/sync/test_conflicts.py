"""A record changed locally and in Connec! at once: the last writer wins, the loser is kept."""

from __future__ import annotations

import pytest

from crm.models import Organization, Person
from maestrano_sync.models import IdMap, OutboxEntry, SyncConflict
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for
from tests.helpers.live_sync import (
    deliver_notifications,
    wait_until,
)

from .conftest import connec_answers_lost


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held."""
    return peer


@pytest.fixture
def pushed_org(company, peer):
    org = Organization.objects.create(company=company, name="Original", city="Sydney")
    drain_outbox(company=company)
    return org, connec_id_for(company=company, obj=org)


def test_a_later_remote_change_wins_and_the_local_version_is_recorded(company, peer, pushed_org):
    org, remote_id = pushed_org
    org.name = "Local edit"
    org.save()  # pending, not pushed yet
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # later

    deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Remote edit"
    conflict = SyncConflict.objects.get()
    assert (conflict.winner, conflict.connec_id, conflict.object_id) == (
        "remote",
        remote_id,
        str(org.pk),
    )
    assert conflict.losing_data["name"] == "Local edit"
    assert conflict.remote_updated_at > conflict.local_changed_at
    # The superseded local change is not pushed over the newer remote one.
    result = drain_outbox(company=company)
    assert result.requests == 0
    assert peer.get("organizations", remote_id)["name"] == "Remote edit"
    assert not OutboxEntry.objects.filter(status="pending").exists()


def test_a_later_local_change_wins_and_overwrites_connec(company, peer, pushed_org):
    org, remote_id = pushed_org
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # delivery held back
    org.name = "Local edit"
    org.save()  # later

    deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Local edit"
    conflict = SyncConflict.objects.get()
    assert conflict.winner == "local"
    assert conflict.losing_data["name"] == "Remote edit"
    assert conflict.local_changed_at > conflict.remote_updated_at

    drain_outbox(company=company)

    assert peer.get("organizations", remote_id)["name"] == "Local edit"
    # The same (old) notification again is stale now: no second conflict.
    from maestrano_sync.models import InboxEntry

    entry = InboxEntry.objects.get()
    InboxEntry.objects.filter(pk=entry.pk).update(status="pending")
    from maestrano_sync.inbox import process_inbox

    process_inbox(company=company)
    org.refresh_from_db()
    assert org.name == "Local edit"
    assert SyncConflict.objects.count() == 1


def test_conflicts_are_listed_in_the_admin(company, peer, pushed_org, admin_client):
    org, remote_id = pushed_org
    org.name = "Local edit"
    org.save()
    peer.update("organizations", remote_id, {"name": "Remote edit"})
    deliver_notifications()

    page = admin_client.get("/admin/maestrano_sync/syncconflict/?winner__exact=remote")

    assert page.status_code == 200
    assert remote_id in page.content.decode()


def test_a_pending_local_delete_wins_over_a_later_remote_update(company, peer, pushed_org):
    org, remote_id = pushed_org
    org.delete()  # pending, not pushed yet
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # later

    deliver_notifications()

    assert not Organization.objects.exists()
    assert SyncConflict.objects.get().winner == "local"
    drain_outbox(company=company)
    assert peer.get("organizations", remote_id)["status"] == "INACTIVE"


def test_a_later_local_change_without_a_reference_clears_the_remote_one(company, peer, pushed_org):
    _, org_remote_id = pushed_org
    person = Person.objects.create(company=company, first_name="Ada", last_name="Lovelace")
    drain_outbox(company=company)
    person_remote_id = connec_id_for(company=company, obj=person)
    # Another app gives the person an organization (delivery held back)...
    peer.update("people", person_remote_id, {"organization_id": org_remote_id})
    person.last_name = "King"
    person.save()  # ...and our later edit of the person, still without one, wins.

    deliver_notifications()
    drain_outbox(company=company)

    person.refresh_from_db()
    assert SyncConflict.objects.get().winner == "local"
    assert person.organization_id is None
    remote = peer.get("people", person_remote_id)
    assert (remote["last_name"], remote.get("organization_id")) == ("King", None)


def test_a_later_remote_version_empties_what_it_does_not_carry(company, peer, pushed_org):
    org, _ = pushed_org
    remote = peer.create("people", {"first_name": "Ada", "last_name": "Lovelace"})
    deliver_notifications()
    person = Person.objects.get(company=company)
    # Local changes, not pushed yet: a title and an organization the Connec! record lacks.
    person.title = "Dr."
    person.organization = org
    person.save()
    peer.update("people", remote["id"], {"last_name": "Byron"})  # later: its version wins

    deliver_notifications()
    drain_outbox(company=company)

    person.refresh_from_db()
    assert SyncConflict.objects.get().winner == "remote"
    assert (person.last_name, person.title, person.organization_id) == ("Byron", "", None)
    remote = peer.get("people", remote["id"])
    assert (remote["last_name"], remote.get("title"), remote.get("organization_id")) == (
        "Byron",
        None,
        None,
    )


def test_a_push_whose_answer_was_lost_is_not_undone_by_an_older_remote_change(
    platform, settings, company, peer, pushed_org
):
    org, remote_id = pushed_org
    org.name = "Local edit"
    org.save()  # pending
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # later, delivery held
    # Our push reaches Connec! after that remote change, but its answer is lost.
    with connec_answers_lost(platform, settings):
        assert drain_outbox(company=company).retried == 1
    wait_until(lambda: peer.get("organizations", remote_id)["name"] == "Local edit")

    deliver_notifications()  # the remote change: newer than our edit, older than our push
    drain_outbox(company=company)

    org.refresh_from_db()
    assert org.name == "Local edit"
    assert peer.get("organizations", remote_id)["name"] == "Local edit"


def test_a_record_we_deleted_before_its_push_answer_arrived_is_not_brought_back(
    settings, company, peer, pushed_org
):
    """Connec! created our record but the answer was lost (no IdMap); another app then
    edits it, and we delete ours. The late notification carries our external id: it is
    our deleted record, not a new one (the chaos test once found it alive here only)."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "EXTERNAL_IDS": True},
    }
    org, remote_id = pushed_org
    IdMap.objects.all().delete()  # the worker died after Connec! applied the push
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # delivery held back
    object_id = str(org.pk)
    org.delete()  # pending: a delete addressed by our external id

    deliver_notifications()  # applied before the delete is pushed
    drain_outbox(company=company)

    assert not Organization.objects.filter(company=company).exists()
    assert peer.get("organizations", remote_id)["status"] == "INACTIVE"
    conflict = SyncConflict.objects.get()
    assert (conflict.winner, conflict.connec_id, conflict.object_id) == (
        "local",
        remote_id,
        object_id,
    )


def test_a_notification_of_our_record_whose_push_answer_was_lost_is_linked_not_duplicated(
    company, peer, pushed_org
):
    """Notifications with plain string ids do not say the record is ours: while one of our
    pushes has no answer, an unknown record is looked up with its external ids first."""
    org, remote_id = pushed_org
    # The worker died after Connec! applied the push: no IdMap, the row is still due.
    IdMap.objects.all().delete()
    OutboxEntry.objects.update(status=OutboxEntry.Status.PENDING)
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # later than ours

    deliver_notifications()
    drain_outbox(company=company)

    assert list(Organization.objects.filter(company=company)) == [org]
    org.refresh_from_db()
    assert org.name == "Remote edit"
    assert connec_id_for(company=company, obj=org) == remote_id
    assert peer.get("organizations", remote_id)["name"] == "Remote edit"
    assert not OutboxEntry.objects.filter(status=OutboxEntry.Status.PARKED).exists()


@pytest.mark.parametrize("edited", [False, True], ids=["unchanged", "edited-before"])
@pytest.mark.parametrize("step", ["inbox", "import"])
def test_a_local_delete_committed_while_a_remote_update_is_applied_is_not_undone(
    company, peer, pushed_org, step, edited
):
    """The user deletes the object after the worker planned the batch (it read the
    outbox: no pending change, or an older edit the remote version wins over) and before
    it writes: the plan's remote update must not bring the object back as a new row
    while the delete goes on to Connec!, nor close the delete with the edit it
    supersedes; the delete wins, as it would have in the plan (the chaos test once
    ended with the record alive here and INACTIVE in Connec!, once the other way)."""
    import contextvars

    from django.db import connection

    from maestrano_sync.importer import run_import
    from maestrano_sync.inbox import apply_records

    org, remote_id = pushed_org
    object_id = str(org.pk)
    if edited:
        org.name = "Local edit"
        org.save()  # pending; the remote edit below is later and wins over it
    record = peer.update("organizations", remote_id, {"name": "Remote edit"})  # held back
    # The read of whole rows that maps the records onto the local objects.
    rows_read = f'"{Organization._meta.db_table}"."name"'
    seen_outbox = []

    def user_deletes_after_the_plan(execute, sql, params, many, context):
        if OutboxEntry._meta.db_table in sql:
            seen_outbox.append(sql)
        elif seen_outbox and sql.startswith("SELECT") and rows_read in sql and org.pk:
            # The plan has read the outbox (no pending change): the user deletes now.
            # The user's request is not the worker's apply (an empty context: its delete
            # writes its outbox row, as outside the worker).
            pk, org.pk = org.pk, None
            contextvars.Context().run(Organization.objects.get(pk=pk).delete)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(user_deletes_after_the_plan):
        if step == "inbox":
            apply_records(company=company, entity="organizations", records=[record])
        else:
            run_import(company=company, entities=["organizations"], restart=True)

    assert org.pk is None, "the user's delete did not run during the apply"
    assert not Organization.objects.filter(company=company).exists()
    conflict = SyncConflict.objects.get(winner="local")
    assert (conflict.connec_id, conflict.object_id) == (remote_id, object_id)
    assert conflict.losing_data["name"] == "Remote edit"
    # The edit lost to the remote version (closed); the delete is pending, and pushed.
    pending = OutboxEntry.objects.filter(status=OutboxEntry.Status.PENDING)
    assert list(pending.values_list("operation", flat=True)) == ["delete"]
    drain_outbox(company=company)
    assert peer.get("organizations", remote_id)["status"] == "INACTIVE"
    assert not Organization.objects.filter(company=company).exists()
