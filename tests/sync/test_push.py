"""Pushing local changes to the sandbox's Connec! (docs/protocol.md,
'Integration duties') through the outbox."""

from __future__ import annotations

import datetime

import pytest
from django.db import transaction

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_sync.mappers import connec_time_or_none
from maestrano_sync.models import IdMap, OutboxEntry
from maestrano_sync.push import drain_outbox, retry_parked
from maestrano_sync.selectors import connec_id_for
from maestrano_sync.status import problems, record_status
from tests.helpers.live_sync import (
    LIVE_SYNC,
    connec_id,
    our_entry,
    wait_until,
)

from .conftest import clear_faults, connec_answers_lost, set_faults


def make_org(company, **fields):
    values = {
        "name": "Acme Pty",
        "email": "hello@acme.test",
        "phone": "+61 2 1234 5678",
        "city": "Sydney",
        "country": "AU",
    }
    return Organization.objects.create(company=company, **{**values, **fields})


def test_a_created_record_reaches_connec_with_our_external_id_and_is_mapped(platform, company, hub):
    org = make_org(company)

    [record] = hub.list("organizations")
    assert our_entry(record, provider=platform.api_id, realm=company.group_uid) == {
        "id": str(org.pk),
        "provider": platform.api_id,
        "realm": company.group_uid,
    }
    assert record["name"] == "Acme Pty"
    assert record["email"] == {"address": "hello@acme.test"}
    assert record["address"]["billing"]["city"] == "Sydney"
    assert connec_id_for(company=company, obj=org) == connec_id(record)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}


def test_an_update_goes_to_the_same_connec_record(platform, company, hub):
    org = make_org(company)
    first_id = connec_id_for(company=company, obj=org)

    org.name = "Acme Holdings"
    org.save()

    [record] = hub.list("organizations")
    assert connec_id(record) == first_id
    assert record["name"] == "Acme Holdings"
    assert IdMap.objects.filter(company=company).count() == 1


def test_changes_in_one_transaction_are_coalesced_and_sent_referenced_records_first(
    platform, company, hub, manual_drain
):
    with transaction.atomic():
        org = make_org(company, name="Draft")
        person = Person.objects.create(
            company=company, first_name="Ada", last_name="Lovelace", organization=org
        )
        # The organization's last change is written after the person's.
        org.name = "Final"
        org.save()

    result = drain_outbox(company=company)

    assert (result.requests, result.sent, result.done) == (1, 2, 3)
    [remote_org] = hub.list("organizations")
    [remote_person] = hub.list("people")
    assert remote_org["name"] == "Final"
    assert connec_id(remote_person["organization_id"]) == connec_id(remote_org)
    assert connec_id_for(company=company, obj=person) == connec_id(remote_person)


def test_an_invoice_with_lines_references_its_items_and_customer(platform, company, hub):
    org = make_org(company)
    item = Item.objects.create(company=company, code="SKU1", name="Widget", sale_price="9.50")
    with transaction.atomic():
        invoice = Invoice.objects.create(
            company=company, number="INV-1", organization=org, status="AUTHORISED", total="19.00"
        )
        InvoiceLine.objects.create(
            company=company,
            invoice=invoice,
            line_number=1,
            quantity=2,
            unit_price="9.50",
            item=item,
        )

    [remote] = hub.list("invoices")
    assert remote["transaction_number"] == "INV-1"
    assert connec_id(remote["organization_id"]) == connec_id_for(company=company, obj=org)
    [line] = remote["lines"]
    assert connec_id(line["item_id"]) == connec_id_for(company=company, obj=item)
    assert line["quantity"] == 2

    InvoiceLine.objects.filter(invoice=invoice).get().delete()  # a child change pushes the parent
    [remote] = hub.list("invoices")
    assert remote["lines"] == []


def test_a_saved_but_unchanged_record_is_not_sent_again(platform, company, hub, manual_drain):
    org = make_org(company)
    drain_outbox(company=company)
    updated_at = hub.list("organizations")[0]["updated_at"]

    org.save()
    result = drain_outbox(company=company)

    assert (result.requests, result.skipped, result.done) == (0, 1, 1)
    assert hub.list("organizations")[0]["updated_at"] == updated_at


def test_an_update_push_records_each_new_version_and_keeps_the_rest_of_the_link(
    platform, company, hub, manual_drain
):
    orgs = [make_org(company, name=f"Org {n}", email=f"org{n}@acme.test") for n in range(3)]
    drain_outbox(company=company)
    pulled = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    IdMap.objects.filter(company=company).update(last_pulled_updated_at=pulled)
    before = {link.object_id: link for link in IdMap.objects.filter(company=company)}

    for org in orgs:
        org.name += " (renamed)"
        org.save()
    result = drain_outbox(company=company)

    assert (result.requests, result.done) == (1, 3)
    remote = {connec_id(record): record for record in hub.list("organizations")}
    links = list(IdMap.objects.filter(company=company))
    assert len(links) == 3
    for link in links:
        old = before[link.object_id]
        record = remote[link.connec_id]
        assert record["name"].endswith("(renamed)")
        assert link.connec_id == old.connec_id
        assert link.last_pushed_updated_at == connec_time_or_none(record["updated_at"])
        assert link.last_pushed_updated_at > old.last_pushed_updated_at
        assert link.last_pushed_hash not in ("", old.last_pushed_hash)
        assert link.last_pulled_updated_at == pulled
        assert link.created_at == old.created_at
        assert link.updated_at >= old.updated_at


def test_a_rolled_back_change_leaves_no_outbox_row(platform, company, hub):
    with pytest.raises(RuntimeError), transaction.atomic():
        make_org(company)
        raise RuntimeError("the view failed")

    assert not OutboxEntry.objects.exists()
    assert hub.list("organizations") == []
    # The rolled-back transaction's pending drain does not stop the next one.
    with transaction.atomic():
        make_org(company, name="Committed")
    assert [r["name"] for r in hub.list("organizations")] == ["Committed"]


def test_a_push_that_timed_out_after_connec_applied_it_is_retried_without_duplicate(
    platform, settings, company, hub, manual_drain
):
    """The retry is a create again (no Connec! id is known), and only our external id
    lets Connec! find the record the lost push made: the record is renamed in between, so
    that smart merging (the create's ``opts.matching_fields``, the name for organizations)
    cannot find it instead."""
    org = make_org(company)
    ours = {"id": str(org.pk), "provider": platform.api_id, "realm": company.group_uid}
    with connec_answers_lost(platform, settings):
        first = drain_outbox(company=company)

    assert (first.done, first.retried) == (0, 1)
    row = OutboxEntry.objects.get()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "batch failed" in row.last_error
    assert not IdMap.objects.exists()
    # The sandbox applied the timed-out request anyway, and keeps our external id with it.
    [applied] = wait_until(lambda: hub.list("organizations"))
    assert our_entry(applied, provider=platform.api_id, realm=company.group_uid) == ours
    org.name = "Acme Renamed"
    org.save()  # pending, with the first row: one create, under the new name

    second = drain_outbox(company=company)

    assert (second.sent, second.done) == (1, 2)  # both rows, in one create
    [record] = hub.list("organizations")
    assert (connec_id(record), record["name"]) == (connec_id(applied), "Acme Renamed")
    assert our_entry(record, provider=platform.api_id, realm=company.group_uid) == ours
    assert connec_id_for(company=company, obj=org) == connec_id(record)
    assert IdMap.objects.filter(company=company).count() == 1
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}


def test_server_errors_back_off_and_the_record_is_sent_later(platform, company, hub, manual_drain):
    make_org(company)
    set_faults(platform, error_rate=1.0, scope="connec")

    first = drain_outbox(company=company)

    row = OutboxEntry.objects.get()
    assert (first.retried, row.status, row.attempts) == (1, "pending", 1)
    assert "HTTP 5" in row.last_error or "batch failed" in row.last_error

    clear_faults(platform)
    drain_outbox(company=company)

    assert OutboxEntry.objects.get().status == "done"
    assert len(hub.list("organizations")) == 1


def test_transient_failures_park_the_row_after_max_attempts(platform, company, hub, manual_drain):
    org = make_org(company)
    set_faults(platform, error_rate=1.0, scope="connec")

    for _ in range(LIVE_SYNC["MAX_ATTEMPTS"]):
        drain_outbox(company=company)

    row = OutboxEntry.objects.get()
    assert (row.status, row.attempts) == ("parked", LIVE_SYNC["MAX_ATTEMPTS"] - 1)
    assert row.last_error.startswith("gave up after")
    # Told as what it is: not sent (Connec! kept failing), not refused by Connec!.
    assert record_status(company=company, obj=org).state == "not_sent"
    (problem,) = problems(company=company)
    assert problem.title == "Change not sent: Connec! kept failing"

    clear_faults(platform)
    retry_parked(queryset=OutboxEntry.objects.all())
    drain_outbox(company=company)

    assert record_status(company=company, obj=org).state == "synced"
    assert [r["name"] for r in hub.list("organizations")] == [org.name]


def test_a_rejected_record_is_parked_without_blocking_the_others_and_can_be_retried(
    platform, company, hub, admin_client, manual_drain
):
    bad = make_org(company, name="Bad", email="not-an-email")
    make_org(company, name="Good")

    result = drain_outbox(company=company)

    assert (result.requests, result.done, result.parked) == (1, 1, 1)
    parked = OutboxEntry.objects.get(status="parked")
    assert parked.object_id == str(bad.pk)
    assert "HTTP 422" in parked.last_error and "email" in parked.last_error
    assert record_status(company=company, obj=bad).state == "parked"
    assert [p.title for p in problems(company=company)] == ["Change refused by Connec!"]
    assert [r["name"] for r in hub.list("organizations")] == ["Good"]

    page = admin_client.get("/admin/maestrano_sync/outboxentry/?status__exact=parked")
    assert page.status_code == 200 and "not-an-email" in page.content.decode()

    bad.email = "bad@acme.test"
    bad.save()  # a new row; the parked one is retried from the admin too
    response = admin_client.post(
        "/admin/maestrano_sync/outboxentry/",
        {"action": "retry", "_selected_action": [parked.pk]},
    )
    assert response.status_code == 302
    drain_outbox(company=company)

    assert not OutboxEntry.objects.exclude(status="done").exists()
    assert sorted(r["name"] for r in hub.list("organizations")) == ["Bad", "Good"]


def test_a_delete_is_pushed_as_inactive(platform, company, hub):
    org = make_org(company)
    remote_id = connec_id_for(company=company, obj=org)

    org.delete()

    record = hub.get("organizations", remote_id)
    assert record["status"] == "INACTIVE"
    assert record["name"] == "Acme Pty"
    assert len(hub.list("organizations")) == 1


def test_a_record_created_and_deleted_before_the_drain_sends_nothing(
    platform, company, hub, manual_drain
):
    org = make_org(company)
    org.delete()

    result = drain_outbox(company=company)

    assert result.done == 2
    assert hub.list("organizations") == []


def test_a_drain_pushes_only_its_own_company(platform, company, hub, sandbox_group, manual_drain):
    from maestrano_accounts.models import Company

    from .conftest import make_group

    other_group = make_group(platform, name="Other")
    other = Company.objects.create(preset="maestrano", group_uid=other_group.uid, name="Other")
    make_org(company, name="Ours")
    make_org(other, name="Theirs")

    drain_outbox(company=company)

    assert [r["name"] for r in hub.list("organizations")] == ["Ours"]
    assert OutboxEntry.objects.get(company=other).status == "pending"


def test_a_reference_emptied_locally_is_emptied_in_connec(platform, company, hub):
    org = make_org(company)
    person = Person.objects.create(
        company=company, first_name="Ada", last_name="Lovelace", organization=org
    )
    remote_id = connec_id_for(company=company, obj=person)
    assert connec_id(hub.get("people", remote_id)["organization_id"]) == connec_id_for(
        company=company, obj=org
    )

    person.organization = None
    person.save()

    assert hub.get("people", remote_id).get("organization_id") is None


def test_refused_credentials_park_the_change_with_the_reason_and_nothing_is_lost(
    platform, company, hub, manual_drain
):
    values = platform.preset_values()
    good_key = values["api"]["key"]
    values["api"]["key"] = "wrong-key"
    platform.configure(maestrano=values)
    org = make_org(company, name="Kept")

    result = drain_outbox(company=company)

    [row] = OutboxEntry.objects.filter(company=company)
    assert (result.parked, row.status) == (1, OutboxEntry.Status.PARKED)
    assert "401" in row.last_error and "api id and key" in row.last_error
    assert hub.list("organizations") == []

    # Credentials fixed, the parked change retried by hand: it reaches Connec! once.
    values["api"]["key"] = good_key
    platform.configure(maestrano=values)
    assert retry_parked(queryset=OutboxEntry.objects.filter(pk=row.pk)) == 1
    drain_outbox(company=company)
    [record] = hub.list("organizations")
    assert record["name"] == "Kept" and connec_id_for(company=company, obj=org) == connec_id(record)


def test_a_batch_size_above_what_connec_takes_is_cut_to_500_ops_per_request(
    platform, company, hub, manual_drain, settings
):
    sync = {**settings.MAESTRANO.get("SYNC", {}), "BATCH_SIZE": 2000}
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": sync}
    with transaction.atomic():
        for n in range(501):
            Organization.objects.create(company=company, name=f"Bulk {n}")

    result = drain_outbox(company=company)

    assert (result.requests, result.sent) == (2, 501)
    assert len(hub.list("organizations")) == 501
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}


def _batch_settings(settings, **sync_values):
    sync = {**settings.MAESTRANO.get("SYNC", {}), **sync_values}
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": sync}


@pytest.mark.parametrize("pipeline", [True, False])
def test_a_drain_of_several_batches_records_each_op_from_its_own_answer(
    platform, company, hub, manual_drain, settings, pipeline
):
    """Pipelined (request n in flight while n-1 is recorded and n+1 built) or not, the
    same requests in the same order, and the same outcomes."""
    _batch_settings(settings, BATCH_SIZE=2, PUSH_PIPELINE=pipeline)
    with transaction.atomic():
        orgs = [make_org(company, name=f"Org {n}") for n in range(2)]
        bad = make_org(company, name="Bad", email="not-an-email")
        orgs.append(make_org(company, name="Org 2"))
        people = [
            Person.objects.create(
                company=company, first_name="P", last_name=f"{n}", organization=orgs[n]
            )
            for n in range(3)
        ]

    result = drain_outbox(company=company)

    assert (result.requests, result.sent, result.done, result.parked) == (4, 7, 6, 1)
    assert OutboxEntry.objects.get(status="parked").object_id == str(bad.pk)
    remote_orgs = {r["name"]: r for r in hub.list("organizations")}
    assert sorted(remote_orgs) == ["Org 0", "Org 1", "Org 2"]
    for person, org in zip(people, orgs, strict=True):
        remote_person = next(
            r
            for r in hub.list("people")
            if connec_id(r) == connec_id_for(company=company, obj=person)
        )
        assert connec_id(remote_person["organization_id"]) == connec_id(remote_orgs[org.name])
        assert connec_id_for(company=company, obj=org) == connec_id(remote_orgs[org.name])

    # Everything is in Connec! now: a second drain sends nothing, duplicates nothing.
    again = drain_outbox(company=company)
    assert again.sent == 0
    assert len(hub.list("organizations")) == 3 and len(hub.list("people")) == 3


def test_a_drain_that_loses_its_lock_leaves_what_it_did_not_send_pending(
    platform, company, hub, manual_drain, settings, monkeypatch
):
    """Another worker holds the company now: the rows not sent are its to send (not
    parked, not marked done), and they reach Connec! once, on the next drain."""
    import maestrano_sync.push

    _batch_settings(settings, BATCH_SIZE=2)
    with transaction.atomic():
        for n in range(5):
            make_org(company, name=f"Org {n}")
    renewals = {"calls": 0}
    real_renew = maestrano_sync.push.renew_lock

    def renew_once(**kwargs):
        renewals["calls"] += 1
        return renewals["calls"] == 1 and real_renew(**kwargs)

    monkeypatch.setattr(maestrano_sync.push, "renew_lock", renew_once)
    first = drain_outbox(company=company)

    assert (first.requests, first.done, first.parked) == (1, 2, 0)
    statuses = list(OutboxEntry.objects.order_by("pk").values_list("status", "attempts"))
    assert statuses == [("done", 0)] * 2 + [("pending", 0)] * 3
    assert len(hub.list("organizations")) == 2

    monkeypatch.setattr(maestrano_sync.push, "renew_lock", real_renew)
    second = drain_outbox(company=company)

    assert (second.requests, second.done) == (2, 3)
    assert sorted(r["name"] for r in hub.list("organizations")) == [f"Org {n}" for n in range(5)]
