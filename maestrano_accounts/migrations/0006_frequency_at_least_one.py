"""The database refuses a plan's or a subscription's frequency below 1, whoever writes it
(``update()``, raw SQL, a fixture): the admin's validator (``0004``) guards only the admin.
``0005`` set the 0s stored before to 1.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0005_repair_frequency_zero'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='plan',
            constraint=models.CheckConstraint(condition=models.Q(('frequency__gte', 1)), name='plan_frequency_at_least_one', violation_error_message='A plan charges every 1 or more periods.'),
        ),
        migrations.AddConstraint(
            model_name='companysubscription',
            constraint=models.CheckConstraint(condition=models.Q(('frequency__gte', 1)), name='subscription_frequency_at_least_one', violation_error_message='A plan charges every 1 or more periods.'),
        ),
    ]
