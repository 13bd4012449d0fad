"""A plan or a subscription stored with a frequency of 0 gets 1, before ``0006`` makes the
database refuse a frequency below 1.

0 was never a frequency the platform accepts, and the billing computations already read
it as 1 (docs/billing.md, 'Plan change'): setting it to 1 changes no charge, only what
the pages say ("every 0 month"). The rows changed are not listed anywhere (CHANGELOG).
Apart from ``0006`` because PostgreSQL may refuse to alter a table in the transaction that
updated its rows ("pending trigger events").
"""

from django.db import migrations


def frequency_zero_to_one(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    for name in ("Plan", "CompanySubscription"):
        model = apps.get_model("maestrano_accounts", name)
        model.objects.using(db_alias).filter(frequency=0).update(frequency=1)


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0004_plan_trial_and_frequency_limits'),
    ]

    operations = [
        # Nothing to undo: which rows were 0 is not kept.
        migrations.RunPython(frequency_zero_to_one, migrations.RunPython.noop),
    ]
