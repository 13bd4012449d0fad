"""A record Connec! answers for this company's group but that says it is another group's
(its ``group_id``) is parked with its reason and never stored in this company; the
others of the same page go through. Against the sandbox on a live server, its fault
injection answering records as another group's (``foreign_group_rate``)."""

from __future__ import annotations

import logging

from crm.models import Organization, Person
from maestrano_sandbox.faults import FOREIGN_GROUP
from maestrano_sync.importer import run_import
from maestrano_sync.models import IdMap, OutboxEntry, SyncConflict, SyncRecordError
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for, find_local_object
from maestrano_sync.status import retry_problem
from tests.helpers.live_sync import deliver_notifications


def set_faults(settings, platform, **plan) -> None:
    faults = {platform.api_id: {"scope": "connec", **plan}} if plan else {}
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": faults}


def connec_id(value) -> str:
    """A record id as the sandbox logged it (plain, or the list of external ids)."""
    if isinstance(value, list):
        return next(entry["id"] for entry in value if entry.get("provider") == "connec")
    return value


def answered_as_foreign(caplog) -> set[str]:
    return {
        connec_id(record_id)
        for record in caplog.records
        if record.name == "maestrano_sandbox.faults"
        and getattr(record, "fault", "") == "foreign_group"
        for record_id in record.records
    }


def test_an_imports_records_of_another_group_are_parked_and_the_others_imported(
    platform, settings, sandbox_group, company, caplog
):
    sandbox_group.seed(organizations=12, people=0, items=0, invoices=0)  # 4 pages of 3
    set_faults(settings, platform, foreign_group_rate=0.4, seed=3)
    caplog.set_level(logging.INFO)

    run = run_import(company=company)

    foreign = answered_as_foreign(caplog)
    every = set(sandbox_group.ids["organizations"])
    assert foreign and foreign < every  # the seed answers some of them, not all
    parked = SyncRecordError.objects.filter(company=company, entity="organizations")
    assert {error.connec_id for error in parked} == foreign
    for error in parked:
        assert error.reason == (
            f"another group's record: its group_id is {FOREIGN_GROUP!r}, "
            f"and this company's group is {company.group_uid!r}"
        )
    mapped = set(
        IdMap.objects.filter(company=company, entity="organizations").values_list(
            "connec_id", flat=True
        )
    )
    assert mapped == every - foreign
    assert Organization.objects.filter(company=company).count() == len(every - foreign)
    cursor = run.entities.get(entity="organizations")
    assert (cursor.created, cursor.failed, cursor.done) == (
        len(every - foreign),
        len(foreign),
        True,
    )

    # Answered as this group's again, a retry of each parked record applies it.
    set_faults(settings, platform)
    for error in list(parked):
        assert retry_problem(company=company, kind="record", pk=error.pk) == 1
    assert Organization.objects.filter(company=company).count() == len(every)


def test_a_fetched_reference_of_another_group_is_parked_not_stored(
    platform, settings, company, peer, sandbox_group, caplog
):
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    # An organization we were never told about: the inbox fetches it for the person.
    stamp = next_timestamp()
    hidden = ConnecRecord.objects.create(
        group=sandbox_group.group,
        entity="organizations",
        data={"name": "Hidden Co", "status": "ACTIVE"},
        created_at=stamp,
        updated_at=stamp,
    )
    set_faults(settings, platform, foreign_group_rate=1.0)
    caplog.set_level(logging.INFO)
    remote = peer.create(
        "people", {"first_name": "Grace", "last_name": "Hopper", "organization_id": str(hidden.uid)}
    )

    deliver_notifications()

    assert answered_as_foreign(caplog) == {str(hidden.uid)}
    assert not Organization.objects.filter(company=company).exists()
    assert not IdMap.objects.filter(company=company, entity="organizations").exists()
    (error,) = SyncRecordError.objects.filter(company=company, entity="organizations")
    assert error.connec_id == str(hidden.uid)
    assert error.reason.startswith("another group's record: its group_id is")
    # The person, notified for this group, is parked on its own reason (its organization
    # is unknown here): never linked to another group's organization.
    assert find_local_object(company=company, entity="people", connec_id=remote["id"]) is None
    (person_error,) = SyncRecordError.objects.filter(company=company, entity="people")
    assert "unknown organizations reference" in person_error.reason
    assert not Person.objects.filter(company=company, organization__isnull=False).exists()


def test_a_conflicts_current_version_of_another_group_is_parked_not_applied(
    platform, settings, company, held_sync, peer, caplog
):
    org = Organization.objects.create(company=company, name="Original")
    drain_outbox(company=company)
    remote_id = connec_id_for(company=company, obj=org)
    org.name = "Local edit"
    org.save()  # pending, not pushed yet
    peer.update("organizations", remote_id, {"name": "Remote edit"})  # later: it wins
    # The inbox fetches the winner's current version first: answered as another group's.
    set_faults(settings, platform, foreign_group_rate=1.0)
    caplog.set_level(logging.INFO)

    deliver_notifications()

    assert answered_as_foreign(caplog) == {remote_id}
    org.refresh_from_db()
    assert org.name == "Local edit"
    (error,) = SyncRecordError.objects.filter(company=company, entity="organizations")
    assert (error.connec_id, error.reason.startswith("another group's record")) == (
        remote_id,
        True,
    )
    assert not SyncConflict.objects.exists()


def test_our_lost_records_lookup_answered_by_another_group_is_parked_not_linked(
    platform, settings, company, held_sync, peer, caplog
):
    org = Organization.objects.create(company=company, name="Original")
    drain_outbox(company=company)
    remote_id = connec_id_for(company=company, obj=org)
    # The worker died after Connec! applied the push: no IdMap, the row is still due; the
    # notification's plain id is looked up with its external ids (maestrano_sync.lost_answers).
    IdMap.objects.all().delete()
    OutboxEntry.objects.update(status=OutboxEntry.Status.PENDING)
    peer.update("organizations", remote_id, {"name": "Remote edit"})
    set_faults(settings, platform, foreign_group_rate=1.0)
    caplog.set_level(logging.INFO)

    deliver_notifications()

    assert answered_as_foreign(caplog) == {remote_id}
    assert list(Organization.objects.filter(company=company)) == [org]  # no second one
    org.refresh_from_db()
    assert org.name == "Original"
    assert not IdMap.objects.filter(company=company).exists()
    (error,) = SyncRecordError.objects.filter(company=company, entity="organizations")
    assert error.connec_id == remote_id
    assert error.reason.startswith("another group's record")
