# Records the webhook parked before 0012 have no fingerprint: a later delivery of the same
# record parked it on a row of its own, and every delivery after that counted on that row,
# never on the old ones, which stayed as duplicates. Their fingerprints are computed here,
# by the webhook's own rule (maestrano_sync.fingerprints: a module without models, which
# the webhook calls too, so the two cannot differ; a change of that rule needs a migration
# computing every row again), and the rows of one record of a company are merged into its
# first one: the deliveries summed (times_seen), the first parking time kept (created_at)
# and the latest delivery (last_seen_at). Rows parked otherwise (the inbox, the import)
# keep no fingerprint, as the code gives them none. Reversed, nothing changes: the merged
# rows are not split again.

from django.db import migrations
from django.db.models import Q

from maestrano_sync.fingerprints import REFUSED_REASON, parked_fingerprint

#: Rows read per query, rows deleted or updated per statement.
BATCH = 1000


class _Record:
    """The rows of one parked record of one company, merged into the first one (by pk)."""

    __slots__ = ("pk", "fingerprint", "stored", "created_at", "last_seen_at", "times_seen", "merged")

    def __init__(self, *, pk, fingerprint, stored, created_at, last_seen_at, times_seen):
        self.pk = pk
        self.fingerprint = fingerprint
        self.stored = stored  # the fingerprint the row holds already ("": none)
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        self.times_seen = times_seen
        self.merged = False

    def merge(self, *, created_at, last_seen_at, times_seen):
        # A row seen once has no last_seen_at: it was seen when it was parked.
        latest = max(self.last_seen_at or self.created_at, last_seen_at or created_at)
        self.created_at = min(self.created_at, created_at)
        self.last_seen_at = latest
        self.times_seen += times_seen
        self.merged = True


def merge_parked_records(apps, schema_editor):
    SyncRecordError = apps.get_model("maestrano_sync", "SyncRecordError")
    parked = SyncRecordError.objects.filter(
        Q(reason__startswith=REFUSED_REASON) | ~Q(fingerprint="")
    ).order_by("pk")
    records = {}
    duplicates = []
    last = 0
    while True:
        # Pages by primary key, so that deleting rows never moves the next page.
        page = list(
            parked.filter(pk__gt=last).values_list(
                "pk",
                "company_id",
                "entity",
                "payload_excerpt",
                "fingerprint",
                "created_at",
                "last_seen_at",
                "times_seen",
            )[:BATCH]
        )
        if not page:
            break
        last = page[-1][0]
        for pk, company_id, entity, excerpt, stored, created_at, last_seen_at, times_seen in page:
            fingerprint = stored or parked_fingerprint(entity=entity, payload_excerpt=excerpt)
            first = records.get((company_id, fingerprint))
            if first is None:
                records[(company_id, fingerprint)] = _Record(
                    pk=pk,
                    fingerprint=fingerprint,
                    stored=stored,
                    created_at=created_at,
                    last_seen_at=last_seen_at,
                    times_seen=times_seen,
                )
                continue
            first.merge(created_at=created_at, last_seen_at=last_seen_at, times_seen=times_seen)
            duplicates.append(pk)
            if len(duplicates) >= BATCH:
                SyncRecordError.objects.filter(pk__in=duplicates).delete()
                duplicates = []
    # The duplicates go first: a row kept takes its fingerprint once no other row holds it.
    SyncRecordError.objects.filter(pk__in=duplicates).delete()
    changed = [
        SyncRecordError(
            pk=record.pk,
            fingerprint=record.fingerprint,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            times_seen=record.times_seen,
        )
        for record in records.values()
        if record.merged or record.stored != record.fingerprint
    ]
    SyncRecordError.objects.bulk_update(
        changed,
        ["fingerprint", "created_at", "last_seen_at", "times_seen"],
        batch_size=BATCH,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("maestrano_sync", "0012_parked_once"),
    ]

    operations = [
        migrations.RunPython(merge_parked_records, migrations.RunPython.noop),
    ]
