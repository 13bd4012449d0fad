"""A plan's limits, refused in the admin with a clear error: a free trial of at most
``MAX_FREE_TRIAL_DAYS`` (36,500 days: its end is a date every database and time zone
holds) and a frequency of at least 1 (the platform charges every 1 or more periods).

Rows stored before are left as they are: the billing computations read them
defensively (docs/billing.md, 'The free trial' and 'Plan change').
"""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0003_charge_product'),
    ]

    operations = [
        migrations.AlterField(
            model_name='plan',
            name='free_trial_days',
            field=models.PositiveIntegerField(default=0, help_text="Free days from the company's creation (0 to 36500)", validators=[django.core.validators.MaxValueValidator(36500, 'A free trial is at most 36500 days (100 years).')]),
        ),
        migrations.AlterField(
            model_name='plan',
            name='frequency',
            field=models.PositiveSmallIntegerField(default=1, help_text='Periods between two charges (1 or more)', validators=[django.core.validators.MinValueValidator(1, 'A plan charges every 1 or more periods.')]),
        ),
    ]
