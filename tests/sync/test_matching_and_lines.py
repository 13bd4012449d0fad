"""Matching fields on a record's first push, and invoice lines that keep their Connec! ids
both ways (docs/sync.md, 'Matching' and 'Invoice lines'), against the sandbox's hub."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
import requests
from django.contrib.contenttypes.models import ContentType

from crm.mappers import PersonMapper
from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_sync.importer import run_import
from maestrano_sync.mappers import Mapper
from maestrano_sync.models import IdMap, OutboxEntry, SyncConflict
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for, find_local_object
from tests.helpers.live_sync import (
    connec_id,
    deliver_notifications,
    our_entry,
)


@pytest.fixture
def peer(held_sync, peer):
    """The conftest's peer, with drains and notifications held."""
    return peer


def line_links(company) -> dict[int, str]:
    """{local line pk: its Connec! line id}."""
    return {
        int(object_id): line_id
        for object_id, line_id in IdMap.objects.filter(
            company=company,
            entity="invoices/lines",
            content_type=ContentType.objects.get_for_model(InvoiceLine),
        ).values_list("object_id", "connec_id")
    }


def lines_of(record) -> list[tuple[str, str, float]]:
    return [(line["id"], line["description"], line["quantity"]) for line in record["lines"]]


# --- matching --------------------------------------------------------------------------


def test_a_first_push_merges_into_the_connec_record_with_the_same_email(platform, company, peer):
    theirs = peer.create(
        "people",
        {"first_name": "Ada", "last_name": "Byron", "email": {"address": "ada@example.com"}},
    )
    person = Person.objects.create(
        company=company, first_name="Ada", last_name="Lovelace", email="ada@example.com"
    )

    result = drain_outbox(company=company)

    assert (result.done, result.parked) == (1, 0)
    [record] = peer.list("people")  # one record: merged, not duplicated
    assert connec_id(record) == connec_id(theirs)
    assert connec_id_for(company=company, obj=person) == connec_id(theirs)
    assert record["last_name"] == "Lovelace"  # our values were merged into it
    assert our_entry(record, provider=platform.api_id, realm=company.group_uid) == {
        "id": str(person.pk),
        "provider": platform.api_id,
        "realm": company.group_uid,
    }
    # Later pushes update that record by its id.
    person.job_title = "Analyst"
    person.save()
    drain_outbox(company=company)
    [record] = peer.list("people")
    assert record["job_title"] == "Analyst"


def test_organizations_match_by_name_and_records_without_a_match_are_created(company, peer):
    theirs = peer.create("organizations", {"name": "Acme Pty"})
    acme = Organization.objects.create(company=company, name="Acme Pty", city="Sydney")
    other = Organization.objects.create(company=company, name="Globex")
    nameless = Person.objects.create(company=company, first_name="No", last_name="Email")

    drain_outbox(company=company)

    organizations = peer.list("organizations")
    assert len(organizations) == 2
    assert connec_id_for(company=company, obj=acme) == connec_id(theirs)
    assert connec_id_for(company=company, obj=other) not in (None, connec_id(theirs))
    # An empty matching value never merges: the person is a new record.
    assert len(peer.list("people")) == 1
    assert connec_id_for(company=company, obj=nameless) is not None


def test_two_local_records_matching_one_connec_record_are_not_linked_twice(company, peer):
    peer.create("people", {"first_name": "Pat", "email": {"address": "pat@example.com"}})
    first = Person.objects.create(company=company, first_name="Pat", email="pat@example.com")
    drain_outbox(company=company)
    second = Person.objects.create(company=company, first_name="Patricia", email="pat@example.com")

    result = drain_outbox(company=company)

    assert result.parked == 1
    assert len(peer.list("people")) == 1
    assert connec_id_for(company=company, obj=first) is not None
    assert connec_id_for(company=company, obj=second) is None
    row = OutboxEntry.objects.get(object_id=str(second.pk), status=OutboxEntry.Status.PARKED)
    assert "already linked to local object" in row.last_error
    assert "email.address" in row.last_error


def test_matching_fields_must_be_paths_the_mapper_sends():
    class Broken(Mapper):
        model = Person
        entity = "people"
        fields = {"first_name": "first_name"}
        matching_fields = ("email.address",)

    assert any("email.address" in problem for problem in Broken.check_declarations())
    assert PersonMapper.check_declarations() == []


# --- invoice lines ---------------------------------------------------------------------


@pytest.fixture
def imported_invoice(sandbox_group, company, held_sync):
    """One invoice of three lines created by another app and imported."""
    sandbox_group.seed(organizations=1, people=1, items=2, invoices=0)
    record = sandbox_group.create(
        "invoices",
        {
            "transaction_number": "INV-L",
            "organization_id": sandbox_group.ids["organizations"][0],
            "lines": [
                {"line_number": n, "description": f"Line {n}", "quantity": n} for n in (1, 2, 3)
            ],
        },
    )
    run_import(company=company)
    invoice = find_local_object(company=company, entity="invoices", connec_id=record["id"])
    return invoice, record


def test_imported_lines_keep_their_connec_ids_and_are_updated_in_place(
    sandbox_group, company, imported_invoice, peer
):
    invoice, record = imported_invoice
    first, second, third = invoice.lines.order_by("line_number")
    assert line_links(company) == {
        line.pk: remote["id"]
        for line, remote in zip((first, second, third), record["lines"], strict=True)
    }

    # Another app changes the second line, removes the third and adds one.
    ids = [line["id"] for line in record["lines"]]
    peer.update(
        "invoices",
        record["id"],
        {
            "lines": [
                {"id": ids[0]},
                {"id": ids[1], "quantity": 7},
                {"line_number": 3, "description": "Added there", "quantity": 1},
            ]
        },
    )
    deliver_notifications()

    lines = list(invoice.lines.order_by("line_number"))
    assert [(line.pk, line.description, line.quantity) for line in lines[:2]] == [
        (first.pk, "Line 1", Decimal("1")),
        (second.pk, "Line 2", Decimal("7")),
    ]
    assert lines[2].description == "Added there"
    assert not InvoiceLine.objects.filter(pk=third.pk).exists()
    remote = peer.get("invoices", record["id"])
    assert line_links(company) == {
        line.pk: remote_line["id"] for line, remote_line in zip(lines, remote["lines"], strict=True)
    }
    assert [line["id"] for line in remote["lines"]][:2] == ids[:2]


def test_a_push_sends_each_line_with_its_id_and_new_lines_get_theirs(company, peer):
    item = Item.objects.create(company=company, code="W-1", name="Widget")
    invoice = Invoice.objects.create(company=company, number="INV-9")
    for n in (1, 2):
        InvoiceLine.objects.create(
            company=company, invoice=invoice, line_number=n, description=f"L{n}", item=item
        )
    drain_outbox(company=company)
    record = peer.get("invoices", connec_id_for(company=company, obj=invoice))
    first_ids = [line["id"] for line in record["lines"]]
    assert all(first_ids) and len(set(first_ids)) == 2
    assert set(line_links(company).values()) == set(first_ids)

    line_one = invoice.lines.get(line_number=1)
    line_one.description = "L1 edited"
    line_one.save()
    InvoiceLine.objects.create(company=company, invoice=invoice, line_number=3, description="L3")
    drain_outbox(company=company)

    record = peer.get("invoices", connec_id(record))
    assert [line["description"] for line in record["lines"]] == ["L1 edited", "L2", "L3"]
    assert [line["id"] for line in record["lines"]][:2] == first_ids  # not replaced
    links = line_links(company)
    assert links[line_one.pk] == first_ids[0]
    assert links[invoice.lines.get(line_number=3).pk] == record["lines"][2]["id"]
    assert connec_id(record["lines"][0]["item_id"]) == connec_id_for(company=company, obj=item)


def test_a_line_edited_on_each_side_keeps_both_edits(company, imported_invoice, peer):
    invoice, record = imported_invoice
    ids = [line["id"] for line in record["lines"]]
    pks = list(invoice.lines.order_by("line_number").values_list("pk", flat=True))
    # Connec! first: another app changes line 2 (its notification is not applied yet) ...
    peer.update(
        "invoices",
        record["id"],
        {"lines": [{"id": ids[0]}, {"id": ids[1], "quantity": 9}, {"id": ids[2]}]},
    )
    # ... then a user here changes line 1: the later write, so the local version wins.
    line_one = invoice.lines.get(line_number=1)
    line_one.description = "Edited here"
    line_one.save()
    deliver_notifications()
    assert SyncConflict.objects.get().winner == "local"

    drain_outbox(company=company)

    remote = peer.get("invoices", record["id"])
    assert lines_of(remote) == [
        (ids[0], "Edited here", 1),
        (ids[1], "Line 2", 9),
        (ids[2], "Line 3", 3),
    ]
    local = list(invoice.lines.order_by("line_number").values_list("pk", "description", "quantity"))
    assert local == [
        (pks[0], "Edited here", Decimal("1")),
        (pks[1], "Line 2", Decimal("9")),
        (pks[2], "Line 3", Decimal("3")),
    ]
    assert line_links(company) == dict(zip(pks, ids, strict=True))


def test_the_hub_keeps_line_ids_through_updates(sandbox_group):
    """The sandbox side of the contract, over HTTP (docs/protocol.md, 'Sub-records')."""
    url = f"{sandbox_group.platform.connec_url}/api/v2/{sandbox_group.uid}/invoices"
    auth = sandbox_group.platform.auth
    created = requests.post(
        url,
        json={"invoices": {"lines": [{"description": "A"}, {"description": "B"}]}},
        auth=auth,
        timeout=10,
    ).json()["invoices"]
    a, b = (line["id"] for line in created["lines"])
    assert a and b and a != b

    answer = requests.put(
        f"{url}/{created['id']}",
        json={
            "invoices": {
                "lines": [
                    {"id": b, "quantity": 2},
                    {"description": "C"},
                    {"id": "gone-meanwhile"},
                ]
            }
        },
        auth=auth,
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    lines = answer.json()["invoices"]["lines"]
    assert [(line["id"] == b, line["description"], line.get("quantity")) for line in lines] == [
        (True, "B", 2),
        (False, "C", None),
    ]
    assert lines[1]["id"] not in (a, b)


def test_an_imported_line_s_link_keeps_the_hash_of_its_values_in_the_stored_form(
    company, imported_invoice
):
    """The hash the two sides compare is SHA-256 of the line's mapped values as compact JSON
    with sorted keys (numbers as numbers): hashes stored by earlier versions still compare,
    so an upgrade pushes no line that did not change."""
    invoice, _record = imported_invoice
    content_type = ContentType.objects.get_for_model(InvoiceLine)
    for line in invoice.lines.all():
        stored = IdMap.objects.get(
            company=company, content_type=content_type, object_id=str(line.pk)
        ).last_pushed_hash
        values = {
            "description": line.description,
            "item": line.item_id,
            "line_number": line.line_number,
            "quantity": float(line.quantity),
            "unit_price": None if line.unit_price is None else float(line.unit_price),
        }
        text = json.dumps(values, sort_keys=True, separators=(",", ":"))
        assert stored == hashlib.sha256(text.encode()).hexdigest()


def test_a_line_s_hash_follows_its_mapping_s_declarations_when_they_change(
    company, imported_invoice, monkeypatch
):
    """The names a line's hash reads are kept per mapping class, and made again when the
    class's declarations change (as its field applier is)."""
    from crm.mappers import InvoiceLineMapping
    from maestrano_sync.children import values_hash

    invoice, _record = imported_invoice
    line = invoice.lines.order_by("line_number").first()
    before = values_hash(InvoiceLineMapping, line)
    fields = {k: v for k, v in InvoiceLineMapping.fields.items() if k != "description"}
    monkeypatch.setattr(InvoiceLineMapping, "fields", fields)
    values = {
        "item": line.item_id,
        "line_number": line.line_number,
        "quantity": float(line.quantity),
        "unit_price": None if line.unit_price is None else float(line.unit_price),
    }
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    assert values_hash(InvoiceLineMapping, line) == hashlib.sha256(text.encode()).hexdigest()
    monkeypatch.undo()
    assert values_hash(InvoiceLineMapping, line) == before
