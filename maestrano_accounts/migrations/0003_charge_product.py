"""``AdHocCharge.product``: what a charge bought, for the project's receivers.

The SMS purchases recorded before it (the billing views' "Buy 100 SMS", told by their
``sms:`` key) get the product ``sms`` their receivers now look for; other charges none.
"""

from django.db import migrations, models

#: As ``maestrano_accounts.billing.views`` (SMS_KEY_PREFIX, SMS_PRODUCT) had them then.
SMS_KEY_PREFIX = "sms:"
SMS_PRODUCT = "sms"


def name_the_sms_purchases(apps, schema_editor):
    charges = apps.get_model("maestrano_accounts", "AdHocCharge")
    # Compared in Python as the receivers did: SQLite's LIKE ignores case ("SMS:" too).
    candidates = charges.objects.filter(idempotency_key__startswith=SMS_KEY_PREFIX)
    pks = [
        pk
        for pk, key in candidates.values_list("pk", "idempotency_key").iterator()
        if key.startswith(SMS_KEY_PREFIX)
    ]
    for start in range(0, len(pks), 500):
        charges.objects.filter(pk__in=pks[start : start + 500]).update(product=SMS_PRODUCT)


class Migration(migrations.Migration):
    dependencies = [
        ("maestrano_accounts", "0002_billing_plans"),
    ]

    operations = [
        migrations.AddField(
            model_name="adhoccharge",
            name="product",
            field=models.CharField(
                blank=True,
                default="",
                help_text='What was bought, as the caller names it ("sms"); empty when it names none',
                max_length=64,
            ),
        ),
        migrations.RunPython(name_the_sms_purchases, migrations.RunPython.noop, elidable=True),
    ]
