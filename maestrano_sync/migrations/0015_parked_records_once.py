# Until 0015 only the webhook parked a record once per company: the inbox and the import
# parked it on a new row each time (every import run, every notification of it), without a
# fingerprint, and the webhook's fingerprint did not read the Connec! id (a row keeping no
# record, such as a local object a foreign key keeps, is another record only by its id).
# Every row's fingerprint is computed again here by the rule of the code now
# (maestrano_sync.fingerprints.record_fingerprint: entity, Connec! id and stored record),
# and the rows of one record of a company are merged into its first one (by pk): the
# parkings summed (times_seen), the first parking time kept (created_at), the latest one's
# time (last_seen_at), reason and import run (run, when it had one), as a parking counted
# again leaves them (maestrano_sync.services.park_records). A row whose record was kept as
# an excerpt cut short (the inbox and the import kept 2,000 characters) cannot say which
# record it was: it keeps no fingerprint and is merged with nothing. Reversed, nothing
# changes: the merged rows are not split again, and the new fingerprints stay (the
# constraint is the same).

from django.db import migrations

from maestrano_sync.fingerprints import record_fingerprint

#: Rows read per query, rows deleted or updated per statement.
BATCH = 1000
#: The excerpt the inbox and the import kept until 0015: cut to this many characters,
#: the last one an ellipsis.
EXCERPT_CHARS = 2000


def _cut_short(excerpt):
    return len(excerpt) == EXCERPT_CHARS and excerpt.endswith("…")


class _Record:
    """The rows of one parked record of one company, merged into the first one (by pk)."""

    __slots__ = (
        "pk",
        "fingerprint",
        "stored",
        "created_at",
        "last_seen",
        "last_seen_at",
        "times_seen",
        "reason",
        "run_id",
        "run_seen",
        "merged",
    )

    def __init__(self, *, pk, fingerprint, stored, created_at, last_seen_at, times_seen, run_id):
        self.pk = pk
        self.fingerprint = fingerprint
        self.stored = stored  # the fingerprint the row holds already ("": none)
        self.created_at = created_at
        self.last_seen = last_seen_at or created_at  # a row seen once: when it was parked
        self.last_seen_at = last_seen_at
        self.times_seen = times_seen
        self.reason = None  # a later row's reason, once one was seen later than this one
        self.run_id = run_id  # the run of the latest row seen that has one
        self.run_seen = self.last_seen
        self.merged = False

    def merge(self, *, created_at, last_seen_at, times_seen, reason, run_id):
        # Rows are read by pk: of two seen at once, the later row's reason and run win.
        seen = last_seen_at or created_at
        if seen >= self.last_seen:
            self.last_seen = seen
            self.reason = reason
        if run_id is not None and (self.run_id is None or seen >= self.run_seen):
            self.run_id = run_id
            self.run_seen = seen
        self.created_at = min(self.created_at, created_at)
        self.last_seen_at = self.last_seen
        self.times_seen += times_seen
        self.merged = True


def merge_parked_records(apps, schema_editor):
    SyncRecordError = apps.get_model("maestrano_sync", "SyncRecordError")
    records = {}
    duplicates = []
    last = 0
    while True:
        # Pages by primary key, so that deleting rows never moves the next page.
        page = list(
            SyncRecordError.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk",
                "company_id",
                "entity",
                "connec_id",
                "payload_excerpt",
                "fingerprint",
                "created_at",
                "last_seen_at",
                "times_seen",
                "run_id",
            )[:BATCH]
        )
        if not page:
            break
        last = page[-1][0]
        later = {}  # duplicates seen later than their first row, whose reason it takes
        for pk, company_id, entity, connec_id, excerpt, stored, *times, run_id in page:
            created_at, last_seen_at, times_seen = times
            if _cut_short(excerpt):
                continue  # which record it was is not kept
            fingerprint = record_fingerprint(
                entity=entity, connec_id=connec_id, payload_excerpt=excerpt
            )
            first = records.get((company_id, fingerprint))
            if first is None:
                records[(company_id, fingerprint)] = _Record(
                    pk=pk,
                    fingerprint=fingerprint,
                    stored=stored,
                    created_at=created_at,
                    last_seen_at=last_seen_at,
                    times_seen=times_seen,
                    run_id=run_id,
                )
                continue
            if (last_seen_at or created_at) >= first.last_seen:
                later[pk] = first
            first.merge(
                created_at=created_at,
                last_seen_at=last_seen_at,
                times_seen=times_seen,
                reason=pk,  # its reason is read below, only for the rows seen later
                run_id=run_id,
            )
            duplicates.append(pk)
        if later:
            reasons = dict(
                SyncRecordError.objects.filter(pk__in=later).values_list("pk", "reason")
            )
            for pk, record in later.items():
                if record.reason == pk:  # not a row seen later still (of the same page)
                    record.reason = reasons[pk]
        if len(duplicates) >= BATCH:
            SyncRecordError.objects.filter(pk__in=duplicates).delete()
            duplicates = []
    # The duplicates go first: a row kept takes its fingerprint once no other row holds it.
    SyncRecordError.objects.filter(pk__in=duplicates).delete()
    changed = []
    for record in records.values():
        if not record.merged and record.stored == record.fingerprint:
            continue
        row = SyncRecordError(
            pk=record.pk,
            fingerprint=record.fingerprint,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            times_seen=record.times_seen,
            run_id=record.run_id,
        )
        fields = ["fingerprint", "created_at", "last_seen_at", "times_seen", "run"]
        if record.reason is not None:
            row.reason = record.reason
            fields.append("reason")
        changed.append((tuple(fields), row))
    by_fields = {}
    for fields, row in changed:
        by_fields.setdefault(fields, []).append(row)
    for fields, rows in by_fields.items():
        SyncRecordError.objects.bulk_update(rows, list(fields), batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("maestrano_sync", "0014_idmap_content_type_without_index"),
    ]

    operations = [
        migrations.RunPython(merge_parked_records, migrations.RunPython.noop),
    ]
