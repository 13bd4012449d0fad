"""The initial import's fast paths keep its contract: IdMap rows, entity order, 401 mid-run."""

from __future__ import annotations

import gc

import pytest
import requests
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.models import Organization, Person
from maestrano_sync.importer import ImportFailed, run_import
from maestrano_sync.models import IdMap, SyncRun


def connec_updated_at(sandbox_group, entity: str, record_id: str):
    response = requests.get(
        f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/{entity}/{record_id}",
        auth=sandbox_group.platform.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return parse_datetime(response.json()[entity]["updated_at"])


def test_imported_id_map_rows_are_complete(sandbox_group, company):
    sandbox_group.seed(organizations=2, people=3, items=1, invoices=1)
    before = timezone.now()

    run_import(company=company)

    rows = list(IdMap.objects.filter(company=company).exclude(entity__contains="/"))
    assert len(rows) == 7
    for row in rows:
        mapped = row.content_type.model_class()._default_manager.get(pk=row.object_id)
        assert mapped.company_id == company.pk
        assert row.last_pulled_updated_at == connec_updated_at(
            sandbox_group, row.entity, row.connec_id
        )
        assert (row.last_pushed_updated_at, row.last_pushed_hash) == (None, "")
        assert before <= row.created_at == row.updated_at <= timezone.now()
    people = ContentType.objects.get_for_model(Person)
    assert {r.connec_id for r in rows if r.content_type == people} == set(
        sandbox_group.ids["people"]
    )


def test_a_changed_record_moves_its_id_map_forward(sandbox_group, company):
    sandbox_group.seed(organizations=1, people=1, items=0, invoices=0)
    run_import(company=company)
    person_id = sandbox_group.ids["people"][0]
    first = IdMap.objects.get(company=company, connec_id=person_id)
    response = requests.put(
        f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/people/{person_id}",
        json={"people": {"first_name": "Renamed"}},
        auth=sandbox_group.platform.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text

    run_import(company=company)

    again = IdMap.objects.get(company=company, connec_id=person_id)
    assert (again.pk, again.object_id, again.created_at) == (
        first.pk,
        first.object_id,
        first.created_at,
    )
    assert again.last_pulled_updated_at == connec_updated_at(sandbox_group, "people", person_id)
    assert again.last_pulled_updated_at > first.last_pulled_updated_at
    assert again.updated_at > first.updated_at
    assert Person.objects.get(pk=again.object_id).first_name == "Renamed"


def test_entities_finish_in_order_even_when_one_is_empty(sandbox_group, company):
    sandbox_group.seed(organizations=4, people=0, items=2, invoices=0)
    seen: list[tuple[str, int, bool]] = []

    run = run_import(company=company, progress=lambda e: seen.append((e.entity, e.pages, e.done)))

    assert run.status == SyncRun.Status.SUCCEEDED
    finished = [entity for entity, _, done in seen if done]
    assert finished == ["organizations", "people", "items", "invoices"]
    # Every page of an entity is reported before the entity is done, none after.
    for entity in finished:
        events = [(pages, done) for e, pages, done in seen if e == entity]
        assert events[-1][1] and not any(done for _, done in events[:-1])
    assert all(e.done for e in run.entities.all())


def test_a_401_on_a_later_entity_stops_the_run_and_the_rerun_resumes(
    platform, sandbox_group, company
):
    from maestrano_sandbox.models import RegisteredApp

    sandbox_group.seed(organizations=4, people=4, items=0, invoices=0)
    key = platform.app.api_key

    def revoke_after_organizations(run_entity):
        if run_entity.entity == "organizations" and run_entity.done:
            RegisteredApp.objects.filter(pk=platform.app.pk).update(api_key="revoked-" + key)

    with pytest.raises(ImportFailed) as caught:
        run_import(company=company, progress=revoke_after_organizations)

    run = caught.value.run
    assert not caught.value.retryable
    assert run.status == SyncRun.Status.FAILED and "401" in run.error
    organizations = run.entities.get(entity="organizations")
    assert (organizations.done, organizations.created) == (True, 4)
    assert gc.get_freeze_count() == 0  # the import gave the heap back to the collector

    RegisteredApp.objects.filter(pk=platform.app.pk).update(api_key=key)
    resumed = run_import(company=company)

    assert resumed.pk == run.pk and resumed.status == SyncRun.Status.SUCCEEDED
    assert resumed.entities.get(entity="organizations").created == 4
    assert Organization.objects.filter(company=company).count() == 4
    assert Person.objects.filter(company=company).count() == 4
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 8


def manual_analyze_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'maestrano_sync_idmap'"
        )
        return cursor.fetchone()[0]


def test_postgresql_statistics_follow_a_large_import(sandbox_group, company, monkeypatch):
    from django.db import connection

    from maestrano_sync.idmap import TableStatistics

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    # The import analyzes IdMap each time an entity's rows double (from 5000 rows on);
    # a small threshold exercises it on a small data set (page size 3: 3, 6, 12 rows).
    monkeypatch.setattr(TableStatistics, "MIN_ROWS", 3)
    sandbox_group.seed(organizations=13, people=0, items=0, invoices=0)
    before = manual_analyze_count()

    run = run_import(company=company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert manual_analyze_count() - before == 3


@pytest.mark.django_db
def test_id_map_rows_keep_their_values_whatever_the_text_and_offsets():
    """``insert_id_maps`` (PostgreSQL: one JSON parameter; SQLite: executemany) stores ids
    as they are (non-ASCII, quotes, backslashes), times at their instant whatever their
    offset, shared times adapted once, and skips conflicting rows when asked."""
    import datetime

    from maestrano_accounts.models import Company
    from maestrano_sync import idmap

    company = Company.objects.create(preset="maestrano", group_uid="cld-rows", name="Rows")
    content_type = ContentType.objects.get_for_model(Organization)
    paris = datetime.timezone(datetime.timedelta(hours=2))
    shared = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    rows = [
        idmap.NewIdMap("1", "ünïcødé-☃", datetime.datetime(2024, 5, 1, 14, 0, tzinfo=paris)),
        idmap.NewIdMap("2", "quote'\"back\\slash%s", shared),
        idmap.NewIdMap("3", "plain", shared, last_pushed_hash="abc"),
        idmap.NewIdMap("4", "no-time"),
    ]
    now = timezone.now()
    idmap.insert_id_maps(
        company=company, entity="organizations", content_type=content_type, rows=rows, now=now
    )
    idmap.insert_id_maps(
        company=company,
        entity="organizations",
        content_type=content_type,
        rows=[idmap.NewIdMap("9", "plain"), idmap.NewIdMap("5", "new-one")],
        now=now,
        ignore_conflicts=True,
    )
    found = idmap.bulk_lookup(
        company=company,
        entity="organizations",
        connec_ids=[row.connec_id for row in rows] + ["new-one"],
    )
    assert {key: row.object_id for key, row in found.items()} == {
        "ünïcødé-☃": "1",
        "quote'\"back\\slash%s": "2",
        "plain": "3",
        "no-time": "4",
        "new-one": "5",
    }
    assert found["ünïcødé-☃"].last_pulled_updated_at == shared  # 14:00+02:00 is 12:00 UTC
    assert found["plain"].last_pulled_updated_at == shared
    assert found["plain"].last_pushed_hash == "abc"
    assert found["no-time"].last_pulled_updated_at is None
    assert {row.created_at for row in found.values()} == {now}
