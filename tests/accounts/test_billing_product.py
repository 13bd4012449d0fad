"""A charge says what it bought (``AdHocCharge.product``): the example project credits SMS
for the charges whose product is ``sms``, whatever their key; migration ``0003`` names the
SMS purchases recorded before (their ``sms:`` key)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.credits import sms_bought
from crm.models import SmsCredit
from maestrano_accounts.billing import actions
from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.billing.services import IdempotencyKeyReused, InvalidBill
from maestrano_accounts.models import Company
from maestrano_accounts.signals import charge_billed


@pytest.fixture
def company(db):
    return Company.objects.create(
        preset="maestrano", group_uid="cld-product", name="Product Ltd", currency="AUD"
    )


def billed(charge: AdHocCharge) -> AdHocCharge:
    """The charge as the platform's bill makes it: submitted, and ``charge_billed`` sent."""
    AdHocCharge.objects.filter(pk=charge.pk).update(status="submitted", platform_bill_id="b-1")
    charge.refresh_from_db()
    charge_billed.send(sender=AdHocCharge, charge=charge, company=charge.company)
    return charge


def test_the_sms_are_credited_for_a_charge_whose_product_is_sms_whatever_its_key(company):
    charge = actions.queue_charge(
        company=company,
        amount_cents=500,
        description="100 SMS",
        units="100",
        idempotency_key="order-17",
        product="sms",
    )

    billed(charge)

    assert charge.product == "sms"
    assert [credit.quantity for credit in SmsCredit.objects.filter(charge=charge)] == [100]
    assert sms_bought(company=company) == 100


def test_a_charge_of_another_product_is_not_credited_even_with_an_sms_key(company):
    final_bill = actions.queue_charge(
        company=company, amount_cents=900, description="Final bill", idempotency_key="sms:final"
    )
    other = actions.queue_charge(
        company=company,
        amount_cents=900,
        description="Storage",
        units="100",
        idempotency_key="storage-1",
        product="storage",
    )

    billed(final_bill)
    billed(other)

    assert final_bill.product == ""
    assert not SmsCredit.objects.exists()


def test_a_key_repeated_for_another_product_is_refused_and_a_bad_product_is_invalid(company):
    fields = {"company": company, "amount_cents": 500, "description": "100 SMS"}
    actions.queue_charge(**fields, idempotency_key="k-1", product="sms")
    assert actions.queue_charge(**fields, idempotency_key="k-1", product=" sms ").product == "sms"

    with pytest.raises(IdempotencyKeyReused, match="product"):
        actions.queue_charge(**fields, idempotency_key="k-1", product="storage")
    for product in ("x" * 65, "sms\x00", 42):
        with pytest.raises(InvalidBill) as refused:
            actions.queue_charge(**fields, idempotency_key="k-2", product=product)
        assert set(refused.value.errors) == {"product"}, product
    assert AdHocCharge.objects.count() == 1


BEFORE = ("maestrano_accounts", "0002_billing_plans")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_the_sms_purchases_recorded_before_0003_get_their_product():
    company = Company.objects.create(preset="maestrano", group_uid="cld-mig", name="Mig")
    old = migrate(BEFORE)
    try:
        OldCharge = old.get_model("maestrano_accounts", "AdHocCharge")
        for key in ("sms:form-1", "final-bill", "SMS:upper"):
            OldCharge.objects.create(
                company_id=company.pk, idempotency_key=key, amount_cents=500, description=key
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    products = dict(AdHocCharge.objects.values_list("idempotency_key", "product"))
    assert products == {"sms:form-1": "sms", "final-bill": "", "SMS:upper": ""}
