"""The SMS a company bought: granted when the platform has the bill of a purchase.

Billing sends ``maestrano_accounts.signals.charge_billed`` once per charge, inside the
transaction that records the bill, and :func:`grant_sms` writes the credit in it: the
credit commits with the bill or not at all. The charge is the credit's unique key, so
even a second signal could not grant twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Sum

from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.billing.services import BILLED_CHARGE_STATUSES
from maestrano_accounts.models import Company

from .models import SmsCredit

#: The key of the SMS pack in ``MAESTRANO["BILLING"]["PRODUCTS"]`` (config/settings.py): the
#: ``product`` of its charges (migration ``maestrano_accounts.0003`` gave the purchases made
#: before that field this product too).
SMS_PRODUCT = "sms"


def grant_sms(sender: Any, *, charge: AdHocCharge, company: Company, **kwargs: Any) -> None:
    """Receiver of ``charge_billed``: credit the SMS of a purchase of the SMS pack (its
    ``units``)."""
    if charge.product != SMS_PRODUCT:
        return  # another charge (a final bill, an adopter's own)
    SmsCredit.objects.get_or_create(
        charge=charge,
        defaults={"company": company, "quantity": int(charge.units or Decimal(0))},
    )


def sms_bought(*, company: Company) -> int:
    """How many SMS the company bought: the credits of its purchases whose bill stands (a
    bill the marketplace cancelled later, read back by the status refresh, no longer
    counts; buying again credits again)."""
    credits = SmsCredit.objects.filter(
        company=company, charge__status__in=BILLED_CHARGE_STATUSES
    ).aggregate(total=Sum("quantity"))
    return credits["total"] or 0
