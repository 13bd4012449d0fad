"""An import page carrying a record whose local object has a change not pushed yet: the
conflict rule of notifications decides (docs/sync.md, 'Conflicts: last writer wins')."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from crm.models import Organization
from maestrano_sync.importer import run_import
from maestrano_sync.models import OutboxEntry, SyncConflict, SyncRun
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for, find_local_object


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held: only the import brings
    Connec!'s changes here."""
    return peer


@pytest.fixture
def imported_org(company, sandbox_group, peer):
    record = sandbox_group.create("organizations", {"name": "Remote V1"})
    run_import(company=company, entities=["organizations"])
    return find_local_object(company=company, entity="organizations", connec_id=record["id"])


def organization_counts(run: SyncRun) -> tuple[int, int, int, int]:
    entity = run.entities.get(entity="organizations")
    return (entity.created, entity.updated, entity.skipped, entity.deleted)


def test_a_restarted_import_keeps_a_later_local_edit_and_records_the_conflict(
    company, sandbox_group, peer, imported_org
):
    remote_id = connec_id_for(company=company, obj=imported_org)
    peer.update("organizations", remote_id, {"name": "Remote V2"})
    imported_org.name = "Local edit"  # the later write, not pushed yet
    imported_org.city = "Perth"
    imported_org.save()

    call_command(
        "maestrano_import",
        "--company",
        sandbox_group.uid,
        "--entity",
        "organizations",
        "--restart",
        stdout=StringIO(),
        stderr=StringIO(),
    )

    imported_org.refresh_from_db()
    assert (imported_org.name, imported_org.city) == ("Local edit", "Perth")
    run = SyncRun.objects.filter(company=company).latest("pk")
    assert organization_counts(run) == (0, 0, 1, 0)
    conflict = SyncConflict.objects.get()
    assert (conflict.winner, conflict.connec_id, conflict.object_id) == (
        "local",
        remote_id,
        str(imported_org.pk),
    )
    assert conflict.losing_data["name"] == "Remote V2"
    # The local version is pushed over Connec!'s.
    assert drain_outbox(company=company).done == 1
    assert peer.get("organizations", remote_id)["name"] == "Local edit"


def test_an_import_applies_a_later_remote_edit_over_a_pending_local_one(
    company, peer, imported_org
):
    remote_id = connec_id_for(company=company, obj=imported_org)
    imported_org.name = "Local edit"  # pending
    imported_org.save()
    peer.update("organizations", remote_id, {"name": "Remote V2"})  # the later write

    run = run_import(company=company, entities=["organizations"], restart=True)

    imported_org.refresh_from_db()
    assert imported_org.name == "Remote V2"
    assert organization_counts(run) == (0, 1, 0, 0)
    conflict = SyncConflict.objects.get()
    assert conflict.winner == "remote"
    assert conflict.losing_data["name"] == "Local edit"
    # The superseded local change is not pushed over the newer remote one.
    assert not OutboxEntry.objects.filter(status=OutboxEntry.Status.PENDING).exists()
    assert drain_outbox(company=company).requests == 0
    assert peer.get("organizations", remote_id)["name"] == "Remote V2"


def test_an_import_never_recreates_a_record_whose_local_delete_is_pending(
    company, peer, imported_org
):
    remote_id = connec_id_for(company=company, obj=imported_org)
    peer.update("organizations", remote_id, {"name": "Remote V2"})
    imported_org.delete()  # pending in the outbox

    run = run_import(company=company, entities=["organizations"], restart=True)

    assert not Organization.objects.filter(company=company).exists()
    assert organization_counts(run) == (0, 0, 1, 0)
    conflict = SyncConflict.objects.get()
    assert (conflict.winner, conflict.connec_id) == ("local", remote_id)
    # The delete reaches Connec!: the record the IdMap still maps is deactivated.
    assert drain_outbox(company=company).done == 1
    assert peer.get("organizations", remote_id)["status"] == "INACTIVE"
    assert find_local_object(company=company, entity="organizations", connec_id=remote_id) is None
    assert not Organization.objects.filter(company=company).exists()
