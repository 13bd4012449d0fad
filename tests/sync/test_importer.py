"""The initial import against the sandbox's Connec! API on a live server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.importer import ImportFailed, run_import
from maestrano_sync.models import IdMap, RemoteTombstone, SyncLock, SyncRecordError, SyncRun
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for, find_local_object

from .conftest import SandboxGroup, make_group


def counts(run: SyncRun) -> dict[str, tuple[int, int, int, int]]:
    return {
        e.entity: (e.created, e.updated, e.skipped, e.failed)
        for e in run.entities.order_by("position")
    }


def inject_record(group, entity: str, data: dict) -> str:
    """Store a record the hub's own validation would refuse (another app's bad data)."""
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    stamp = next_timestamp()
    record = ConnecRecord.objects.create(
        group=group, entity=entity, data=data, created_at=stamp, updated_at=stamp
    )
    return str(record.uid)


def test_import_maps_every_record_and_resolves_references(sandbox_group, company):
    sandbox_group.seed(organizations=4, people=7, items=3, invoices=4)

    run = run_import(company=company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert counts(run) == {
        "organizations": (4, 0, 0, 0),
        "people": (7, 0, 0, 0),
        "items": (3, 0, 0, 0),
        "invoices": (4, 0, 0, 0),
    }
    assert [e.entity for e in run.entities.order_by("position")][:2] == ["organizations", "people"]
    assert all(e.done and e.total == e.created for e in run.entities.all())
    assert Organization.objects.filter(company=company).count() == 4
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 18
    # ... and every invoice line, under its own Connec! id (maestrano_sync.children).
    assert IdMap.objects.filter(company=company, entity="invoices/lines").count() == 8

    person_id = sandbox_group.ids["people"][5]
    person = find_local_object(company=company, entity="people", connec_id=person_id)
    assert (person.first_name, person.last_name, person.email) == (
        "First5",
        "Last5",
        "p5@example.com",
    )
    org_connec_id = sandbox_group.ids["organizations"][5 % 4]
    assert connec_id_for(company=company, obj=person.organization) == org_connec_id
    assert person.organization.city == "Sydney"
    assert person.organization.email == "org1@example.com"

    invoice = find_local_object(
        company=company, entity="invoices", connec_id=sandbox_group.ids["invoices"][1]
    )
    assert invoice.number == "INV-1"
    assert invoice.status == "AUTHORISED"
    assert str(invoice.transaction_date) == "2024-03-01"
    assert invoice.total == Decimal("31.00")
    assert connec_id_for(company=company, obj=invoice.person) == sandbox_group.ids["people"][1]
    lines = list(invoice.lines.order_by("line_number"))
    assert [(line.line_number, line.quantity, line.unit_price) for line in lines] == [
        (1, Decimal("2"), Decimal("10.50")),
        (2, Decimal("1"), Decimal("10.00")),
    ]
    assert [connec_id_for(company=company, obj=line.item) for line in lines] == [
        sandbox_group.ids["items"][0],
        sandbox_group.ids["items"][-1],
    ]
    item = lines[0].item
    assert (item.code, item.sale_price, item.currency, item.purchase_price) == (
        "SKU0",
        Decimal("10.50"),
        "AUD",
        Decimal("4.00"),
    )


def test_a_rerun_imports_nothing_twice(sandbox_group, company):
    sandbox_group.seed(organizations=3, people=4, items=2, invoices=2)
    run_import(company=company)

    second = run_import(company=company)

    assert second.status == SyncRun.Status.SUCCEEDED
    assert {entity: c[0] + c[1] for entity, c in counts(second).items()} == {
        "organizations": 0,
        "people": 0,
        "items": 0,
        "invoices": 0,
    }
    assert counts(second)["people"][2] == 4
    assert Person.objects.filter(company=company).count() == 4
    assert InvoiceLine.objects.filter(company=company).count() == 4
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 11


def test_a_changed_record_is_updated_and_its_lines_replaced(sandbox_group, company):
    sandbox_group.seed(organizations=1, people=1, items=2, invoices=1)
    run_import(company=company)
    invoice_id = sandbox_group.ids["invoices"][0]
    response = requests.put(
        f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/invoices/{invoice_id}",
        json={
            "invoices": {
                "status": "PAID",
                "lines": [
                    {
                        "line_number": 1,
                        "description": "Only",
                        "quantity": 3,
                        "unit_price": {"net_amount": 5},
                        "item_id": sandbox_group.ids["items"][1],
                    },
                ],
            }
        },
        auth=sandbox_group.platform.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text

    run = run_import(company=company)

    assert counts(run)["invoices"] == (0, 1, 0, 0)
    invoice = Invoice.objects.get(company=company)
    assert invoice.status == "PAID"
    assert [(line.description, line.quantity) for line in invoice.lines.all()] == [
        ("Only", Decimal("3"))
    ]
    assert InvoiceLine.objects.filter(company=company).count() == 1


def deleted_counts(run: SyncRun) -> dict[str, int]:
    return {e.entity: e.deleted for e in run.entities.order_by("position") if e.deleted}


def put(sandbox_group, entity: str, connec_id: str, record: dict) -> None:
    """Change a Connec! record as another app of the group would."""
    response = requests.put(
        f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/{entity}/{connec_id}",
        json={entity: record},
        auth=sandbox_group.platform.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_a_record_connec_marks_deleted_is_never_imported(sandbox_group, company):
    dead = sandbox_group.create(
        "people", {"first_name": "Dead", "last_name": "Person", "status": "INACTIVE"}
    )
    sandbox_group.create("people", {"first_name": "Live", "last_name": "Person"})

    run = run_import(company=company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert counts(run)["people"] == (1, 0, 0, 0)
    assert deleted_counts(run) == {"people": 1}
    assert run.entities.get(entity="people").processed == 2
    assert list(Person.objects.filter(company=company).values_list("first_name", flat=True)) == [
        "Live"
    ]
    assert find_local_object(company=company, entity="people", connec_id=dead["id"]) is None
    # Remembered as notifications remember it: an older version delivered late creates nothing.
    assert RemoteTombstone.objects.filter(
        company=company, entity="people", connec_id=dead["id"]
    ).exists()

    # Again: still nothing created, counted the same way.
    again = run_import(company=company)
    assert (counts(again)["people"], deleted_counts(again)) == ((0, 0, 1, 0), {"people": 1})
    assert Person.objects.filter(company=company).count() == 1


def test_a_record_connec_marks_deleted_deletes_its_local_object_on_a_later_import(
    sandbox_group, company
):
    sandbox_group.seed(organizations=1, people=2, items=0, invoices=0)
    run_import(company=company)
    gone_id, kept_id = sandbox_group.ids["people"]
    put(sandbox_group, "people", gone_id, {"status": "INACTIVE"})

    run = run_import(company=company)

    assert counts(run)["people"] == (0, 0, 1, 0)
    assert deleted_counts(run) == {"people": 1}
    assert find_local_object(company=company, entity="people", connec_id=gone_id) is None
    assert find_local_object(company=company, entity="people", connec_id=kept_id) is not None
    assert Person.objects.filter(company=company).count() == 1


def test_a_record_deleted_here_stays_deleted_after_an_import(sandbox_group, company, manual_drain):
    sandbox_group.seed(organizations=1, people=2, items=0, invoices=0)
    run_import(company=company)
    gone_id = sandbox_group.ids["people"][0]
    find_local_object(company=company, entity="people", connec_id=gone_id).delete()
    assert drain_outbox(company=company).done == 1  # Connec!'s record is INACTIVE now
    record = requests.get(
        f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/people/{gone_id}",
        auth=sandbox_group.platform.auth,
        timeout=10,
    ).json()["people"]
    assert record["status"] == "INACTIVE"

    run = run_import(company=company)

    assert counts(run)["people"] == (0, 0, 1, 0)
    assert deleted_counts(run) == {"people": 1}
    assert find_local_object(company=company, entity="people", connec_id=gone_id) is None
    assert Person.objects.filter(company=company).count() == 1


def test_bad_records_are_reported_with_their_reason_and_the_rest_imported(sandbox_group, company):
    sandbox_group.seed(organizations=2, people=3, items=1, invoices=0)
    group = sandbox_group.group
    wrong_type = inject_record(group, "organizations", {"name": "Bad", "is_customer": "yes"})
    not_an_object = inject_record(group, "organizations", {"name": "Bad", "email": "a@b.c"})
    unknown_reference = inject_record(
        group,
        "people",
        {"first_name": "Orphan", "organization_id": "3f1c7a4e-0000-4000-8000-000000000000"},
    )
    bad_status = inject_record(group, "invoices", {"status": "LOST", "transaction_number": "X"})
    bad_price = inject_record(
        group, "items", {"name": "Cheap", "sale_price": {"net_amount": "free"}}
    )
    bad_line = inject_record(
        group,
        "invoices",
        {"transaction_number": "Y", "lines": [{"quantity": 1, "item_id": "nope"}]},
    )

    run = run_import(company=company)

    assert run.status == SyncRun.Status.PARTIAL
    assert counts(run) == {
        "organizations": (2, 0, 0, 2),
        "people": (3, 0, 0, 1),
        "items": (1, 0, 0, 1),
        "invoices": (0, 0, 0, 2),
    }
    reasons = {e.connec_id: e.reason for e in SyncRecordError.objects.filter(run=run)}
    assert "is_customer" in reasons[wrong_type] and "boolean" in reasons[wrong_type]
    assert reasons[not_an_object] == "email.address: email is not an object"
    assert "unknown organizations reference" in reasons[unknown_reference]
    assert "status" in reasons[bad_status] and "LOST" in reasons[bad_status]
    assert "sale_price.net_amount" in reasons[bad_price]
    assert "lines[1]" in reasons[bad_line] and "unknown items reference" in reasons[bad_line]
    error = SyncRecordError.objects.get(connec_id=wrong_type)
    assert error.entity == "organizations" and '"yes"' in error.payload_excerpt
    assert Person.objects.filter(company=company).count() == 3
    assert not Organization.objects.filter(company=company, name="Bad").exists()


def test_an_import_where_every_record_was_parked_failed_and_a_new_import_starts_afresh(
    sandbox_group, company
):
    from maestrano_sandbox.models import ConnecRecord

    bad = inject_record(sandbox_group.group, "organizations", {"name": "Bad", "is_customer": "yes"})

    run = run_import(company=company, entities=["organizations"])

    assert run.status == SyncRun.Status.FAILED  # nothing imported: not "succeeded with errors"
    assert counts(run) == {"organizations": (0, 0, 0, 1)}
    assert SyncRecordError.objects.get(run=run).connec_id == bad

    ConnecRecord.objects.filter(uid=bad).update(data={"name": "Fixed", "is_customer": True})
    again = run_import(company=company, entities=["organizations"])

    assert again.pk != run.pk  # the failed run went to its end: nothing to resume
    assert again.status == SyncRun.Status.SUCCEEDED
    assert Organization.objects.get(company=company).name == "Fixed"


def test_a_run_waiting_for_its_retry_ends_failed_when_a_new_import_starts(sandbox_group, company):
    from maestrano_sync.importer import mark_retrying

    sandbox_group.seed(organizations=1, people=0, items=0, invoices=0)
    waiting = SyncRun.objects.create(
        company=company, kind=SyncRun.Kind.IMPORT, status=SyncRun.Status.FAILED, error="503"
    )
    mark_retrying(run=waiting)
    waiting.refresh_from_db()
    assert waiting.status == SyncRun.Status.RETRYING

    fresh = run_import(company=company, restart=True)

    waiting.refresh_from_db()
    assert fresh.pk != waiting.pk and fresh.status == SyncRun.Status.SUCCEEDED
    assert waiting.status == SyncRun.Status.FAILED  # never left "retrying" with no retry


def test_a_record_the_database_refuses_is_reported_and_the_rest_of_its_page_kept(
    sandbox_group, company
):
    # Two items with one code: our unique (company, code) refuses the second.
    sandbox_group.create("items", {"code": "DUP", "name": "First"})
    sandbox_group.create("items", {"code": "OK", "name": "Fine"})
    duplicate = inject_record(sandbox_group.group, "items", {"code": "DUP", "name": "Second"})

    run = run_import(company=company, entities=["items"])

    assert counts(run) == {"items": (2, 0, 0, 1)}
    assert "rejected by the database" in SyncRecordError.objects.get(connec_id=duplicate).reason
    assert set(Item.objects.filter(company=company).values_list("name", flat=True)) == {
        "First",
        "Fine",
    }


def test_wrong_credentials_stop_the_run_with_a_clear_error(platform, sandbox_group, company):
    sandbox_group.seed(organizations=1, people=0, items=0, invoices=0)
    values = platform.preset_values()
    values["api"]["key"] = "wrong-key"
    platform.configure(maestrano=values)

    with pytest.raises(ImportFailed) as caught:
        run_import(company=company)

    run = caught.value.run
    assert not caught.value.retryable
    assert run.status == SyncRun.Status.FAILED
    assert "401" in run.error and "api id and key" in run.error
    assert run.finished_at is not None
    assert not Organization.objects.filter(company=company).exists()


def test_a_page_waits_for_the_company_lock_and_a_lock_held_past_a_lease_stops_the_run(
    sandbox_group, company, settings
):
    """The import writes a page under the company lock notifications and drains take."""
    sandbox_group.seed(organizations=2, people=0, items=0, invoices=0)
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "LOCK_LEASE_SECONDS": 0.05},
    }
    # Another worker holding the lock and renewing its lease (a busy drain).
    SyncLock.objects.create(
        company=company, token="busy-worker", locked_until=timezone.now() + timedelta(days=1)
    )

    with pytest.raises(ImportFailed) as caught:
        run_import(company=company, entities=["organizations"])

    assert caught.value.retryable
    run = caught.value.run
    assert run.status == SyncRun.Status.FAILED
    assert "sync lock" in run.error and "resumes from its cursor" in run.error
    assert not Organization.objects.filter(company=company).exists()
    # Released by its holder: the retried run resumes and imports the page.
    SyncLock.objects.filter(company=company).update(locked_until=None)
    assert counts(run_import(company=company, entities=["organizations"])) == {
        "organizations": (2, 0, 0, 0)
    }


def test_two_companies_reading_the_same_connec_ids_never_mix(platform, fast_sync):
    # Two marketplaces (presets) whose apps share one sandbox group: both companies
    # see the very same Connec! ids.
    other_app = platform.register_app(api_id="other-market-app")
    group = make_group(platform, apps=[platform.app, other_app])
    shared = SandboxGroup(platform=platform, group=group, app=platform.app)
    shared.seed(organizations=2, people=2, items=1, invoices=1)
    platform.configure(
        maestrano=platform.preset_values(),
        other=platform.preset_values(app=other_app),
    )
    first = Company.objects.create(preset="maestrano", group_uid=group.uid, name="A")
    second = Company.objects.create(preset="other", group_uid=group.uid, name="B")

    run_import(company=first)
    run_import(company=second)

    for company in (first, second):
        assert Person.objects.filter(company=company).count() == 2
        assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 6
        for person in Person.objects.filter(company=company):
            assert person.organization.company_id == company.pk
        for line in InvoiceLine.objects.filter(company=company):
            assert line.item.company_id == company.pk and line.invoice.company_id == company.pk
    connec_id = shared.ids["people"][0]
    mine = find_local_object(company=first, entity="people", connec_id=connec_id)
    theirs = find_local_object(company=second, entity="people", connec_id=connec_id)
    assert mine.pk != theirs.pk
    assert mine.company_id == first.pk and theirs.company_id == second.pk
    people_type = ContentType.objects.get_for_model(Person)
    assert IdMap.objects.filter(content_type=people_type, connec_id=connec_id).count() == 2
