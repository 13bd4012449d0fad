"""Data steps of the sync's migrations, run backwards and forwards on the test database."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.models import Person
from maestrano_accounts.models import Company
from maestrano_sync.fingerprints import parked_fingerprint

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
LATEST = ("maestrano_sync", "0015_parked_records_once")


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
    # (The webhook of 0012 to 0014 fingerprinted by parked_fingerprint: its rows are made
    # here as it made them; the webhook of today counts on them once 0015 ran.)
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
        fingerprinted = parked(
            one,
            bad,
            7,
            fingerprint=parked_fingerprint(
                entity="organizations", payload_excerpt=json.dumps(bad, sort_keys=True)
            ),
            times_seen=2,
            last_seen_at=day.replace(day=8),
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
    migrate(LATEST)  # 0015: the fingerprints of today; the inbox's row is the same record

    # The webhook finds each merged record by the same fingerprint: counted, not parked again.
    for record in (bad, other):
        assert notify(client, record).json()["parked"] == 1
    rows = new.get_model("maestrano_sync", "SyncRecordError").objects.filter(company_id=one.pk)
    counts = rows.values_list("pk", "times_seen")
    assert sorted(counts) == [(first, 7), (alone, 2)]


IDMAP_WITHOUT_INDEX = ("maestrano_sync", "0014_idmap_content_type_without_index")


@pytest.mark.django_db(transaction=True)
def test_0015_merges_the_records_the_import_and_the_inbox_parked_again_and_counts_on_them(
    client, two_presets
):
    # Until 0015 the import and the inbox parked a record on a new row each time, without
    # a fingerprint, and kept it as an excerpt of 2,000 characters.
    one = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    two = Company.objects.create(preset="maestrano", group_uid="cld-2", name="Two")
    imported = {"id": "org-1", "group_id": "cld-1", "name": "Org", "is_customer": "yes"}
    notified = {"id": "org-2", "group_id": "cld-1", "name": "Org 2", "updated_at": 5}
    long = {"id": "org-3", "group_id": "cld-1", "name": "x" * 3000}
    day = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    old = migrate(IDMAP_WITHOUT_INDEX)
    try:
        SyncRecordError = old.get_model("maestrano_sync", "SyncRecordError")
        SyncRun = old.get_model("maestrano_sync", "SyncRun")
        runs = [SyncRun.objects.create(company_id=one.pk, kind="import") for _ in range(3)]

        def parked(company, record, at, *, reason, connec_id=None, excerpt=None, **extra):
            row = SyncRecordError.objects.create(
                company_id=company.pk,
                entity="organizations",
                connec_id=connec_id if connec_id is not None else record["id"],
                reason=reason,
                payload_excerpt=excerpt or json.dumps(record, sort_keys=True),
                **extra,
            )
            SyncRecordError.objects.filter(pk=row.pk).update(created_at=day.replace(day=at))
            return row.pk

        # Imported three times: a row per run, the latest reason the mapping's of today.
        first = parked(one, imported, 2, reason="is_customer: old", run_id=runs[0].pk)
        gone = [
            parked(one, imported, 4, reason="is_customer: not a boolean", run_id=runs[1].pk),
            parked(one, imported, 3, reason="is_customer: older", run_id=runs[2].pk),
        ]
        elsewhere = parked(two, imported, 5, reason="is_customer: x")  # another company's
        # Refused by the webhook (fingerprinted by the rule of 0013), then by the inbox.
        refused = parked(
            one,
            notified,
            6,
            reason="Refused when notified: updated_at",
            fingerprint=parked_fingerprint(
                entity="organizations", payload_excerpt=json.dumps(notified, sort_keys=True)
            ),
            times_seen=2,
            last_seen_at=day.replace(day=8),
        )
        gone.append(parked(one, notified, 7, reason="updated_at: not a date-time"))
        # Kept as an excerpt cut short: which record it was is not kept, never merged.
        cut = json.dumps(long, sort_keys=True)[:1999] + "…"
        short = [parked(one, long, at, reason="name: too long", excerpt=cut) for at in (9, 10)]
        # No record kept: two records by their Connec! id alone.
        kept_apart = [
            parked(one, {}, 11, reason="cannot delete locally", connec_id=connec_id)
            for connec_id in ("org-4", "org-5")
        ]
        # Imported, notified, imported again by a run read after the inbox's row: the
        # latest reason is the inbox's, the latest run the one that parked it last.
        again = {**imported, "id": "org-6"}
        mixed = parked(one, again, 12, reason="import", run_id=runs[0].pk)
        gone.append(parked(one, again, 14, reason="inbox"))
        gone.append(parked(one, again, 13, reason="import again", run_id=runs[1].pk))
    finally:
        new = migrate(LATEST)

    rows = new.get_model("maestrano_sync", "SyncRecordError").objects.order_by("pk")
    kept = {row.pk: row for row in rows}
    assert not set(kept) & set(gone)
    assert [
        (
            row.pk,
            row.company_id,
            row.fingerprint != "",
            row.times_seen,
            row.created_at.day,
            row.last_seen_at and row.last_seen_at.day,
            row.run_id,
            row.reason,
        )
        for row in kept.values()
    ] == [
        # Three parkings; the first and last seen, the latest one's reason and run.
        (first, one.pk, True, 3, 2, 4, runs[1].pk, "is_customer: not a boolean"),
        (elsewhere, two.pk, True, 1, 5, None, None, "is_customer: x"),
        (refused, one.pk, True, 3, 6, 8, None, "Refused when notified: updated_at"),
        *(
            (pk, one.pk, False, 1, at, None, None, "name: too long")
            for pk, at in zip(short, (9, 10), strict=True)
        ),
        *((pk, one.pk, True, 1, 11, None, None, "cannot delete locally") for pk in kept_apart),
        (mixed, one.pk, True, 3, 12, 14, runs[1].pk, "inbox"),
    ]

    migrate(IDMAP_WITHOUT_INDEX)  # reversible: nothing to undo
    assert new.get_model("maestrano_sync", "SyncRecordError").objects.count() == 8
    migrate(LATEST)

    # The webhook counts on the merged row, by the fingerprint of today.
    assert notify(client, notified).json()["parked"] == 1
    assert (
        new.get_model("maestrano_sync", "SyncRecordError").objects.get(pk=refused).times_seen == 4
    )
