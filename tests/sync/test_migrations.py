"""Data steps of the sync's migrations, run backwards and forwards on the test database."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.models import Person
from maestrano_accounts.models import Company

BEFORE = ("maestrano_sync", "0007_sync_run_retrying")
AFTER = ("maestrano_sync", "0008_outbox_gave_up")
INDEXED = ("maestrano_sync", "0009_inbox_record")
HELD = ("maestrano_sync", "0010_inbox_held")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture(autouse=True)
def latest_migrations_afterwards():
    """The other tests find every table: the database goes back to the latest migrations."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_rows_parked_by_giving_up_before_0008_are_marked_given_up():
    company = Company.objects.create(preset="maestrano", group_uid="cld-mig", name="Mig")
    content_type = ContentType.objects.get_for_model(Person)
    old = migrate(BEFORE)
    try:
        OutboxEntry = old.get_model("maestrano_sync", "OutboxEntry")
        common = {
            "company_id": company.pk,
            "entity": "people",
            "content_type_id": content_type.pk,
            "operation": "upsert",
        }
        OutboxEntry.objects.create(
            **common, object_id="1", status="parked", last_error="gave up after 8 attempts: 503"
        )
        OutboxEntry.objects.create(
            **common, object_id="2", status="parked", last_error="HTTP 422: bad email"
        )
        OutboxEntry.objects.create(**common, object_id="3", status="pending", last_error="")
    finally:
        new = migrate(AFTER)

    rows = new.get_model("maestrano_sync", "OutboxEntry").objects.order_by("object_id")
    assert [(row.object_id, row.gave_up) for row in rows] == [
        ("1", True),
        ("2", False),
        ("3", False),
    ]


@pytest.mark.django_db(transaction=True)
def test_notifications_waiting_or_failed_before_0009_are_indexed_by_record():
    company = Company.objects.create(preset="maestrano", group_uid="cld-mig", name="Mig")
    old = migrate(AFTER)
    try:
        InboxEntry = old.get_model("maestrano_sync", "InboxEntry")

        def entry(status, records):
            return InboxEntry.objects.create(
                preset="maestrano",
                company_id=company.pk,
                payload={"people": records},
                record_count=len(records),
                status=status,
            ).pk

        pending = entry(
            "pending",
            [
                {"id": "c-plain", "updated_at": "2030-01-02T03:04:05Z"},
                {"id": [{"provider": "app", "id": "ours"}, {"provider": "connec", "id": "c-list"}]},
                {"id": [{"provider": "app", "id": "no-connec-id"}]},  # none: no row
            ],
        )
        failed = entry("failed", [{"id": "c-failed", "updated_at": "not a time"}])
        entry("done", [{"id": "c-done"}])  # applied: never read again
    finally:
        new = migrate(INDEXED)

    rows = new.get_model("maestrano_sync", "InboxRecord").objects.order_by("pk")
    assert [
        (row.entry_id, row.company_id, row.entity, row.connec_id, row.updated_at) for row in rows
    ] == [
        (pending, company.pk, "people", "c-plain", dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        (pending, company.pk, "people", "c-list", None),
        (failed, company.pk, "people", "c-failed", None),
    ]
    migrate(AFTER)  # reversible
    assert "maestrano_sync_inboxrecord" not in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True)
def test_held_notifications_are_marked_done_when_0010_is_reversed():
    company = Company.objects.create(preset="maestrano", group_uid="cld-held", name="Held")
    InboxEntry = migrate(HELD).get_model("maestrano_sync", "InboxEntry")
    held = InboxEntry.objects.create(
        preset="maestrano", company_id=company.pk, payload={"people": []}, status="held"
    )
    pending = InboxEntry.objects.create(
        preset="maestrano", company_id=company.pk, payload={"people": []}, status="pending"
    )

    old = migrate(INDEXED).get_model("maestrano_sync", "InboxEntry")

    assert dict(old.objects.values_list("pk", "status")) == {held.pk: "done", pending.pk: "pending"}


SUMMARY = ("maestrano_sync", "0011_inbox_summary")
PARKED_ONCE = ("maestrano_sync", "0012_parked_once")


@pytest.mark.django_db(transaction=True)
def test_0012_applies_over_identical_parked_records():
    # Before 0012 every delivery of a bad record parked it again: many identical rows.
    # They keep no fingerprint, which the unique constraint does not cover.
    company = Company.objects.create(preset="maestrano", group_uid="cld-mig", name="Mig")
    old = migrate(SUMMARY)
    try:
        SyncRecordError = old.get_model("maestrano_sync", "SyncRecordError")
        SyncRecordError.objects.bulk_create(
            SyncRecordError(
                company_id=company.pk,
                entity="organizations",
                connec_id="org-1",
                reason="Refused when notified: $.organizations[0].group_id …",
                payload_excerpt='{"id": "org-1"}',
            )
            for _ in range(50)
        )
    finally:
        new = migrate(PARKED_ONCE)

    rows = new.get_model("maestrano_sync", "SyncRecordError").objects.all()
    assert [(row.fingerprint, row.times_seen, row.last_seen_at) for row in rows] == [
        ("", 1, None)
    ] * 50


PARKED_FINGERPRINTS = ("maestrano_sync", "0013_parked_fingerprints")


def notify(client, record):
    """POST a notification of ``record`` to the webhook, as Connec! does."""
    return client.post(
        "/maestrano/connec/notifications",
        json.dumps({"organizations": [record]}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"app-1:key-1").decode(),
    )


@pytest.mark.django_db(transaction=True)
def test_0013_merges_records_parked_before_0012_and_a_redelivery_counts_on_them(
    client, two_presets
):
    # Before 0012 each delivery of a bad record parked it again, without a fingerprint:
    # the first delivery after 0012 parked it once more, and the old rows stayed beside it.
    one = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    two = Company.objects.create(preset="maestrano", group_uid="cld-2", name="Two")
    bad = {"id": "org-1", "group_id": "cld-1", "name": "Org", "updated_at": 5}
    other = {"id": "org-2", "group_id": "cld-1", "name": "Other", "updated_at": 6}
    day = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    old = migrate(PARKED_ONCE)
    try:
        SyncRecordError = old.get_model("maestrano_sync", "SyncRecordError")

        def parked(company, record, at, *, reason="Refused when notified: updated_at", **extra):
            row = SyncRecordError.objects.create(
                company_id=company.pk,
                entity="organizations",
                connec_id=record["id"],
                reason=reason,
                payload_excerpt=json.dumps(record, sort_keys=True),
                **extra,
            )
            SyncRecordError.objects.filter(pk=row.pk).update(created_at=day.replace(day=at))
            return row.pk

        first = parked(one, bad, 3)  # delivered three times before 0012
        gone = [parked(one, bad, 2), parked(one, bad, 4)]
        elsewhere = parked(two, bad, 5)  # another company's: its own
        alone = parked(one, other, 6)  # parked once, not seen again
        # The inbox parks a record it cannot apply: no fingerprint, never merged.
        applied = parked(one, bad, 1, reason="name: too long")
        # Parked once more by the first delivery after 0012, and counted on since.
        for at in (7, 8):
            with time_machine.travel(day.replace(day=at), tick=False):
                assert notify(client, bad).json()["parked"] == 1
        (fingerprinted,) = SyncRecordError.objects.exclude(fingerprint="").values_list(
            "pk", flat=True
        )
    finally:
        new = migrate(PARKED_FINGERPRINTS)

    rows = new.get_model("maestrano_sync", "SyncRecordError").objects.order_by("pk")
    kept = {row.pk: row for row in rows}
    assert not set(kept) & {*gone, fingerprinted}
    assert [
        (
            row.pk,
            row.company_id,
            row.fingerprint != "",
            row.times_seen,
            row.created_at.day,
            row.last_seen_at and row.last_seen_at.day,
        )
        for row in kept.values()
    ] == [
        (first, one.pk, True, 5, 2, 8),  # 3 rows + 2 deliveries; first and last seen
        (elsewhere, two.pk, True, 1, 5, None),
        (alone, one.pk, True, 1, 6, None),
        (applied, one.pk, False, 1, 1, None),
    ]

    migrate(PARKED_ONCE)  # reversible: nothing to undo
    assert new.get_model("maestrano_sync", "SyncRecordError").objects.count() == 4
    migrate(PARKED_FINGERPRINTS)

    # The webhook finds each merged record by the same fingerprint: counted, not parked again.
    for record in (bad, other):
        assert notify(client, record).json()["parked"] == 1
    rows = new.get_model("maestrano_sync", "SyncRecordError").objects.filter(company_id=one.pk)
    counts = rows.values_list("pk", "times_seen")
    assert sorted(counts) == [(first, 6), (alone, 2), (applied, 1)]
