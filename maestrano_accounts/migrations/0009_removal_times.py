"""The time of the platform's last removal, kept on the company and the membership after a
login brings them back, and the assertion's issue time in a login ticket
(``maestrano_accounts.services.RemovedDuringLogin``).

The rows removed before this migration get the time the old rule read: a cancelled
company's ``cancelled_at``, an inactive membership's ``updated_at``. A company or a
membership brought back before it has no such time (it was emptied, or overwritten).
"""

from django.db import migrations, models
from django.db.models import F


def removal_times_of_removed_rows(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    company = apps.get_model("maestrano_accounts", "Company")
    membership = apps.get_model("maestrano_accounts", "Membership")
    company.objects.using(db_alias).filter(status="cancelled").update(
        removed_at=F("cancelled_at")
    )
    membership.objects.using(db_alias).filter(is_active=False).update(removed_at=F("updated_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0008_platform_removal'),
    ]

    operations = [
        migrations.AddField(
            model_name='company',
            name='removed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='membership',
            name='removed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='ssologinticket',
            name='issued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(removal_times_of_removed_rows, migrations.RunPython.noop),
    ]
