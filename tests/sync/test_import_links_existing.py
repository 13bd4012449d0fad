"""Existing local rows meet Connec!'s records (docs/sync.md, 'Matching fields'): a record
the IdMap does not know whose matching values equal those of exactly one local row not
linked to Connec! is linked to that row, never imported as a second one; several such rows
park the record; an empty matching value, a linked row and another company's row never
match."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.importer import run_import
from maestrano_sync.inbox import apply_records
from maestrano_sync.models import (
    IdMap,
    OutboxEntry,
    RemoteTombstone,
    SyncConflict,
    SyncRecordError,
    SyncRun,
)
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for
from tests.helpers.id_maps import link_objects
from tests.helpers.live_sync import connec_id


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held: only the import brings
    Connec!'s records here, and pushes leave only when the test drains."""
    return peer


def assigned_rows(company, *rows: dict) -> list[Organization]:
    """Rows an adopter had before Maestrano, handed to the company by its adapter with a
    queryset write (no ``post_save``: nothing waits in the outbox)."""
    return Organization.objects.bulk_create(Organization(company=company, **row) for row in rows)


def entity_counts(run: SyncRun, entity: str) -> tuple[int, int, int, int]:
    e = run.entities.get(entity=entity)
    return (e.created, e.updated, e.skipped, e.failed)


def test_a_record_equal_to_an_unlinked_local_row_is_linked_to_it(company, sandbox_group, peer):
    [globex] = assigned_rows(
        company, {"name": "Globex", "city": "Springfield", "email": "info@globex.example"}
    )
    remote = sandbox_group.create(
        "organizations", {"name": "Globex", "address": {"billing": {"city": "Cypress Creek"}}}
    )
    sandbox_group.create("organizations", {"name": "Initech"})

    run = run_import(company=company, entities=["organizations"])

    assert entity_counts(run, "organizations") == (1, 1, 0, 0)
    assert Organization.objects.filter(company=company, name="Globex").count() == 1
    assert connec_id_for(company=company, obj=globex) == remote["id"]
    # No change was waiting here: the record is applied as to any linked row, its values
    # win; a value it does not have (the email) is kept.
    globex.refresh_from_db()
    assert (globex.name, globex.city, globex.email) == (
        "Globex",
        "Cypress Creek",
        "info@globex.example",
    )
    assert not SyncRecordError.objects.exists()
    # Pushed later, the row is an update of that record: one Globex on each side.
    globex.phone = "555-0100"
    globex.save()
    drain_outbox(company=company)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}
    [record] = [r for r in peer.list("organizations") if r["name"] == "Globex"]
    assert connec_id(record) == remote["id"]
    assert (record["email"]["address"], record["phone"]["landline"]) == (
        "info@globex.example",
        "555-0100",
    )
    assert record["address"]["billing"]["city"] == "Cypress Creek"


def test_a_pending_local_change_of_the_linked_row_follows_the_conflict_rule(
    company, sandbox_group, peer
):
    """The adapter saved the row at the first login, after Connec!'s last write of the
    record: the later write (ours) wins, and is pushed over the record."""
    remote = sandbox_group.create(
        "organizations", {"name": "Globex", "address": {"billing": {"city": "Old Town"}}}
    )
    globex = Organization.objects.create(company=company, name="Globex", city="Springfield")

    run = run_import(company=company, entities=["organizations"])

    assert entity_counts(run, "organizations") == (0, 0, 1, 0)
    assert list(Organization.objects.filter(company=company)) == [globex]
    assert connec_id_for(company=company, obj=globex) == remote["id"]
    globex.refresh_from_db()
    assert globex.city == "Springfield"
    conflict = SyncConflict.objects.get()
    assert (conflict.winner, conflict.object_id) == ("local", str(globex.pk))
    drain_outbox(company=company)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}
    [record] = peer.list("organizations")
    assert connec_id(record) == remote["id"]
    assert record["address"]["billing"]["city"] == "Springfield"


def test_several_equal_local_rows_park_the_record_and_the_page_goes_on(company, sandbox_group):
    rows = assigned_rows(company, {"name": "Globex"}, {"name": "Globex"})
    parked = sandbox_group.create("organizations", {"name": "Globex"})
    sandbox_group.create("organizations", {"name": "Initech"})
    sandbox_group.create("organizations", {"name": "Umbrella"})  # the same page (3 a page)

    run = run_import(company=company, entities=["organizations"])

    assert entity_counts(run, "organizations") == (2, 0, 0, 1)
    assert sorted(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "Globex",
        "Globex",
        "Initech",
        "Umbrella",
    ]
    assert not any(connec_id_for(company=company, obj=row) for row in rows)
    error = SyncRecordError.objects.get()
    assert error.connec_id == parked["id"]
    assert "2 local records not linked to Connec! have the same name" in error.reason
    assert "retry" in error.reason


def test_a_record_with_an_empty_matching_value_is_created(company, sandbox_group):
    Person.objects.bulk_create([Person(company=company, first_name="Local", email="")])
    sandbox_group.create("people", {"first_name": "Remote"})  # no email

    run = run_import(company=company, entities=["people"])

    assert entity_counts(run, "people") == (1, 0, 0, 0)
    assert sorted(Person.objects.filter(company=company).values_list("first_name", flat=True)) == [
        "Local",
        "Remote",
    ]


def test_a_row_linked_to_another_record_is_never_taken(company, sandbox_group):
    first = sandbox_group.create("organizations", {"name": "Globex"})
    run_import(company=company, entities=["organizations"])
    [linked] = Organization.objects.filter(company=company)
    assigned_rows(company, {"name": "Unrelated"})  # an unlinked row: candidates are looked up
    second = sandbox_group.create("organizations", {"name": "Globex"})

    run = run_import(company=company, entities=["organizations"], restart=True)

    assert entity_counts(run, "organizations") == (1, 0, 1, 0)
    globexes = list(Organization.objects.filter(company=company, name="Globex"))
    assert len(globexes) == 2
    assert connec_id_for(company=company, obj=linked) == first["id"]
    [new] = [row for row in globexes if row != linked]
    assert connec_id_for(company=company, obj=new) == second["id"]


def test_another_companys_row_is_never_taken(company, sandbox_group):
    other = Company.objects.create(preset="maestrano", group_uid="other-group", name="Other")
    [theirs] = assigned_rows(other, {"name": "Globex"})
    remote = sandbox_group.create("organizations", {"name": "Globex"})

    run = run_import(company=company, entities=["organizations"])

    assert entity_counts(run, "organizations") == (1, 0, 0, 0)
    [ours] = Organization.objects.filter(company=company)
    assert connec_id_for(company=company, obj=ours) == remote["id"]
    assert not IdMap.objects.filter(company=other).exists()
    theirs.refresh_from_db()
    assert (theirs.company_id, theirs.name) == (other.pk, "Globex")


def test_a_notified_record_equal_to_an_unlinked_local_row_is_linked_to_it(platform, company):
    """The inbox applies records through the same steps: a record another app created
    after the import, equal to a row of ours not linked yet, is that row."""
    [globex] = assigned_rows(company, {"name": "Globex", "city": "Springfield"})
    record = {
        "id": [{"provider": "connec", "id": "org-globex"}],
        "group_id": company.group_uid,
        "name": "Globex",
        "updated_at": "2030-01-01T00:00:00Z",
        "address": {"billing": {"city": "Shelbyville"}},
    }

    result = apply_records(company=company, entity="organizations", records=[record])

    assert (result.created, result.updated, result.failed) == (0, 1, 0)
    assert list(Organization.objects.filter(company=company)) == [globex]
    assert connec_id_for(company=company, obj=globex) == "org-globex"
    globex.refresh_from_db()
    assert globex.city == "Shelbyville"


def test_an_older_version_of_a_record_deleted_in_connec_takes_no_row(platform, company):
    """Connec! deleted the record before we knew it (its tombstone): a version of it
    delivered late is skipped, never linked to an equal row of ours."""
    [globex] = assigned_rows(company, {"name": "Globex"})
    RemoteTombstone.objects.create(
        company=company,
        entity="organizations",
        connec_id="org-globex",
        updated_at=datetime.datetime(2030, 2, 1, tzinfo=datetime.UTC),
    )
    record = {
        "id": [{"provider": "connec", "id": "org-globex"}],
        "group_id": company.group_uid,
        "name": "Globex",
        "updated_at": "2030-01-01T00:00:00Z",
    }

    result = apply_records(company=company, entity="organizations", records=[record])

    assert (result.created, result.updated, result.skipped) == (0, 0, 1)
    assert connec_id_for(company=company, obj=globex) is None


# --- what it costs --------------------------------------------------------------------------

MODEL_TABLES = {"organizations": "crm_organization", "people": "crm_person"}


def unlinked_row_reads(queries: list[dict]) -> dict[str, int]:
    """SELECTs of a mapped model's rows that are not lookups by primary key: the looks for
    local rows not linked to Connec! (the company's keys, the candidates of a page); the
    import's other reads of the model go by primary key."""
    counts = dict.fromkeys(MODEL_TABLES, 0)
    for query in queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        for entity, table in MODEL_TABLES.items():
            if re.search(rf'FROM "?{table}"?[\s"]', sql) and not re.search(
                rf'"{table}"\."id" (IN|= ANY)', sql
            ):
                counts[entity] += 1
    return counts


@pytest.mark.parametrize("rerun", [False, True], ids=["first-import", "all-rows-linked"])
def test_without_unlinked_rows_an_import_looks_once_per_entity(company, sandbox_group, rerun):
    """Several pages of each entity (3 records a page): one cheap look per entity and run
    for unlinked rows, none per page."""
    sandbox_group.seed(organizations=7, people=7, items=0, invoices=0)
    if rerun:
        run_import(company=company, entities=["organizations", "people"])
        sandbox_group.create("organizations", {"name": "Late"})

    with CaptureQueriesContext(connection) as captured:
        run = run_import(company=company, entities=["organizations", "people"], restart=rerun)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.entities.get(entity="organizations").pages >= 3
    assert run.entities.get(entity="organizations").created == (1 if rerun else 7)
    assert unlinked_row_reads(captured.captured_queries) == {"organizations": 1, "people": 1}


def test_unlinked_rows_cost_one_read_per_page(company, sandbox_group):
    assigned_rows(company, {"name": "Org 1"}, {"name": "Somewhere else"})
    sandbox_group.seed(organizations=7, people=0, items=0, invoices=0)

    with CaptureQueriesContext(connection) as captured:
        run = run_import(company=company, entities=["organizations"])

    organizations = run.entities.get(entity="organizations")
    assert (organizations.created, organizations.updated) == (6, 1)
    reads = unlinked_row_reads(captured.captured_queries)["organizations"]
    assert reads <= 1 + organizations.pages


@pytest.mark.parametrize(("unlinked_at", "expected"), [(None, False), (0, True), (7, True)])
def test_the_look_for_unlinked_rows_reads_the_keys_in_chunks(
    company, monkeypatch, unlinked_at, expected
):
    """Past a chunk of keys the look goes on with the next one, and stops at the first
    unlinked row (a company's rows read a chunk at a time, never compared with every IdMap
    row at once)."""
    from django.contrib.contenttypes.models import ContentType

    from maestrano_sync import matching
    from maestrano_sync.registry import registry

    monkeypatch.setattr(matching, "_CHUNK", 3)
    rows = assigned_rows(company, *({"name": f"Org {index}"} for index in range(8)))
    content_type = ContentType.objects.get_for_model(Organization)
    link_objects(
        company,
        Organization,
        "organizations",
        ((row.pk, f"org-{index}") for index, row in enumerate(rows) if index != unlinked_at),
    )

    with CaptureQueriesContext(connection) as captured:
        found = matching.has_unlinked_rows(
            company=company,
            mapper=registry.for_entity("organizations"),
            content_type_id=content_type.pk,
        )

    assert found is expected
    # Every chunk read when all are linked (8 keys: 3 + 3 + 2), only the first otherwise.
    chunks = 3 if unlinked_at in (None, 7) else 1
    assert unlinked_row_reads(captured.captured_queries)["organizations"] == chunks
