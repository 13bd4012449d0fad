# Rows parked because Connec! kept failing are told apart from rows Connec! refused
# (maestrano_sync.status: "Not sent" and "Refused by Connec!"). Rows parked before this
# migration are recognised by the message the push wrote when it gave up.

from django.db import migrations, models


def mark_given_up_rows(apps, schema_editor):
    OutboxEntry = apps.get_model("maestrano_sync", "OutboxEntry")
    OutboxEntry.objects.filter(status="parked", last_error__startswith="gave up after ").update(
        gave_up=True
    )


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_sync', '0007_sync_run_retrying'),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxentry',
            name='gave_up',
            field=models.BooleanField(default=False, help_text='Parked because Connec! kept failing (no answer, 5xx, 429), not refused'),
        ),
        migrations.RunPython(mark_given_up_rows, migrations.RunPython.noop),
    ]
