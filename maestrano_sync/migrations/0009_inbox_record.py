# The records carried by each inbox row, indexed by company, entity and Connec! id
# (InboxRecord): a page's sync status finds its records' notifications without reading
# every waiting notification of the company (maestrano_sync.status). Rows still waiting
# or failed when this migration runs are indexed here; the webhook indexes new ones.

import django.db.models.deletion
from django.db import migrations, models

#: Inbox rows read per query, index rows written per INSERT.
BATCH = 1000


def index_waiting_entries(apps, schema_editor):
    # The webhook's own rule for a stored record's Connec! id and version (a string id,
    # or Connec!'s entry of a [{"provider", "realm", "id"}] list; none: no row).
    from maestrano_sync.notifications import notified_records

    InboxEntry = apps.get_model("maestrano_sync", "InboxEntry")
    InboxRecord = apps.get_model("maestrano_sync", "InboxRecord")
    entries = (
        InboxEntry.objects.filter(status__in=["pending", "processing", "failed"])
        .order_by("pk")
        .values_list("pk", "company_id", "payload")
    )
    rows = []
    for entry_id, company_id, payload in entries.iterator(chunk_size=BATCH):
        rows.extend(
            InboxRecord(
                entry_id=entry_id,
                company_id=company_id,
                entity=entity,
                connec_id=connec_id,
                updated_at=updated_at,
            )
            for entity, connec_id, updated_at in notified_records(payload)
        )
        if len(rows) >= BATCH:
            InboxRecord.objects.bulk_create(rows)
            rows = []
    InboxRecord.objects.bulk_create(rows)


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0001_initial'),
        ('maestrano_sync', '0008_outbox_gave_up'),
    ]

    operations = [
        migrations.CreateModel(
            name='InboxRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('entity', models.CharField(max_length=64)),
                ('connec_id', models.CharField(max_length=64)),
                ('updated_at', models.DateTimeField(blank=True, help_text="The record's updated_at in Connec!, when it has one", null=True)),
                ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='maestrano_accounts.company')),
                ('entry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='records', to='maestrano_sync.inboxentry')),
            ],
            options={
                'ordering': ['pk'],
                'indexes': [models.Index(fields=['company', 'entity', 'connec_id'], name='sync_inbox_record')],
            },
        ),
        migrations.RunPython(index_waiting_entries, migrations.RunPython.noop),
    ]
