"""A login ticket keeps when its assertion was accepted: the platform's removals after that
time win over the login (``maestrano_accounts.services.RemovedDuringLogin``). Empty in the
tickets of the two minutes before: read as their expiry less their lifetime.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0006_frequency_at_least_one'),
    ]

    operations = [
        migrations.AddField(
            model_name='ssologinticket',
            name='validated_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
