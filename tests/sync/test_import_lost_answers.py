"""An import reading our own record whose push answer was lost (docs/sync.md, 'Notifications:
the inbox', on lost answers): the record is linked to our object, never imported as a
second one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from crm.models import Organization, Person
from maestrano_sync.importer import run_import
from maestrano_sync.models import IdMap, OutboxEntry, SyncRun
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for
from tests.helpers.live_sync import connec_id, our_entry, wait_until

from .conftest import connec_answers_lost


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held: only the import brings
    Connec!'s records here."""
    return peer


def restart_import(group_uid: str) -> None:
    call_command(
        "maestrano_import",
        "--company",
        group_uid,
        "--entity",
        "organizations",
        "--restart",
        stdout=StringIO(),
        stderr=StringIO(),
    )


def test_an_import_links_our_record_whose_push_answer_was_lost(
    platform, settings, company, sandbox_group, peer
):
    org = Organization.objects.create(company=company, name="Acme Pty", city="Sydney")
    with connec_answers_lost(platform, settings):
        drain_outbox(company=company)
    # Connec! applied the create anyway, with our external id; we know nothing of it.
    [applied] = wait_until(lambda: peer.list("organizations"))
    assert our_entry(applied, provider=platform.api_id, realm=company.group_uid)
    assert not IdMap.objects.exists()
    assert OutboxEntry.objects.get().status == "pending"

    restart_import(sandbox_group.uid)

    assert list(Organization.objects.filter(company=company)) == [org]
    assert connec_id_for(company=company, obj=org) == connec_id(applied)
    org.refresh_from_db()
    assert (org.name, org.city) == ("Acme Pty", "Sydney")
    run = SyncRun.objects.filter(company=company).latest("pk")
    assert run.entities.get(entity="organizations").created == 0
    # The pending create is then sent as an update of that record: still one on each side.
    drain_outbox(company=company)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}
    assert list(Organization.objects.filter(company=company)) == [org]
    [record] = peer.list("organizations")
    assert connec_id(record) == connec_id(applied)
    assert connec_id_for(company=company, obj=org) == connec_id(applied)


def test_an_import_without_unanswered_pushes_imports_records_as_new(company, sandbox_group, peer):
    """The common case: the records of other apps are created here, one each."""
    record = sandbox_group.create("organizations", {"name": "Remote"})

    restart_import(sandbox_group.uid)

    [org] = Organization.objects.filter(company=company)
    assert (org.name, connec_id_for(company=company, obj=org)) == ("Remote", record["id"])


def test_an_import_links_our_person_and_keeps_its_reference(
    platform, settings, company, sandbox_group, peer
):
    """The pages read with external ids carry references in that form too."""
    remote_org = sandbox_group.create("organizations", {"name": "Remote Org"})
    run_import(company=company, entities=["organizations"])
    org = Organization.objects.get(company=company)
    person = Person.objects.create(company=company, first_name="Ada", organization=org)
    with connec_answers_lost(platform, settings):
        drain_outbox(company=company)
    [applied] = wait_until(lambda: peer.list("people"))

    call_command(
        "maestrano_import",
        "--company",
        sandbox_group.uid,
        "--restart",
        stdout=StringIO(),
        stderr=StringIO(),
    )

    assert list(Person.objects.filter(company=company)) == [person]
    assert list(Organization.objects.filter(company=company)) == [org]
    person.refresh_from_db()
    assert (person.first_name, person.organization) == ("Ada", org)
    assert connec_id_for(company=company, obj=person) == connec_id(applied)
    assert connec_id_for(company=company, obj=org) == remote_org["id"]
    drain_outbox(company=company)
    assert [connec_id(r) for r in peer.list("people")] == [connec_id(applied)]
