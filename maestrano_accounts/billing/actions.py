"""What views, receivers and adopters call: a billing change recorded, then done on the
platform at once, with a retry queued when the platform fails.

Layers inside billing (one way only, checked by ``lint-imports``): ``models`` ←
``services`` (rules, rows, Account API calls) ← ``tasks`` (Celery, retries) ←
``actions`` ← ``receivers``, ``views``, ``admin``.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription, Plan
from maestrano_integration.account import AccountApiError
from maestrano_integration.saml import SsoAttributes

from . import services, tasks

logger = logging.getLogger(__name__)


def start_billing(*, company: Company, attributes: SsoAttributes | None = None) -> None:
    """Record a new (or reactivated) company's subscription and queue its recurring bill.

    The plan is :func:`maestrano_accounts.billing.services.initial_plan`'s; when the adapter
    leaves the choice to the company's Admin, nothing is recorded until they choose
    (:func:`change_plan`). The pending row is written first so that a broker outage
    loses nothing: the sweep finds it later. Never raises (called from the login).
    """
    try:
        if not services.billing_enabled():
            return
        plan = services.initial_plan(company=company, attributes=attributes)
        if plan is None:
            logger.info(
                "Billing waits for the Admin's choice of plan",
                extra={"preset": company.preset, "group": company.group_uid},
            )
            return
        services.start_subscription(company=company, plan=plan)
    except Exception:
        logger.exception(
            "Could not record the subscription of a new company",
            extra={"preset": company.preset, "group": company.group_uid},
        )
        return
    tasks.enqueue_on_commit(tasks.set_up_billing_task, company.pk)


def change_plan(*, company: Company, plan: Plan) -> CompanySubscription:
    """Move ``company`` to ``plan`` now: the old recurring bill is cancelled and the new
    one created on the platform (the Account API cannot change a recurring bill).

    The first charge of the new bill is the old one's next charge, never before the
    free trial ends. When the platform fails, the change is kept and retried.
    """
    replacement = services.change_plan(company=company, plan=plan)
    tasks.settle_replacement(replacement)
    replacement.current.refresh_from_db()
    return replacement.current


def charge_company(
    *,
    company: Company,
    amount_cents: int,
    description: str,
    idempotency_key: str,
    units: Decimal | float | str | None = None,
    period_started_at: dt.datetime | None = None,
    period_ended_at: dt.datetime | None = None,
    currency: str | None = None,
    product: str = "",
) -> AdHocCharge:
    """Send an ad-hoc bill (docs/protocol.md, 'Bills') now, once per ``idempotency_key`` of
    ``company``; the caller waits for the platform (a person's request should use
    :func:`queue_charge`).

    Validates locally first (:class:`~maestrano_accounts.billing.services.InvalidBill`, no HTTP
    call). A repeat with the same key returns the same charge without a second bill.
    When the platform is unreachable or failing, the charge stays ``pending`` with its
    error and a retry is queued; when the platform refuses it, it is ``failed`` and
    the :class:`AccountApiError` (with the platform's messages) is raised. When the
    create got no answer (``charge.awaiting_answer``), a repeat within the grace
    period (:func:`~maestrano_accounts.billing.services.answer_grace`) returns the pending charge
    without sending anything; after it, the bill is first looked up on the platform.
    ``currency`` defaults to the company's (the group's) currency. ``product`` names what
    was bought (``"sms"``), for the project's ``charge_billed`` receivers: the platform
    never sees it.
    """
    charge = _record(
        company=company,
        amount_cents=amount_cents,
        description=description,
        idempotency_key=idempotency_key,
        units=units,
        period_started_at=period_started_at,
        period_ended_at=period_ended_at,
        currency=currency,
        product=product,
    )
    try:
        return services.submit_charge(charge=charge)
    except AccountApiError as error:
        if not error.is_transient:
            raise
        wait = services.seconds_until_resend(record=charge)
        tasks.enqueue_retry(tasks.submit_charge_task, charge.pk, not_before=wait)
        charge.refresh_from_db()
        return charge


def queue_charge(
    *,
    company: Company,
    amount_cents: int,
    description: str,
    idempotency_key: str,
    units: Decimal | float | str | None = None,
    period_started_at: dt.datetime | None = None,
    period_ended_at: dt.datetime | None = None,
    currency: str | None = None,
    product: str = "",
) -> AdHocCharge:
    """Record an ad-hoc bill and send it in the background: no platform call here, so a
    person's request answers at once (the purchase page follows the charge).

    The same rules as :func:`charge_company`: checked locally first
    (:class:`~maestrano_accounts.billing.services.InvalidBill`), one charge and one bill per
    ``idempotency_key`` of ``company`` (a repeat returns the recorded charge). The sending
    task (``submit_charge_task``) is queued once the transaction commits, for a charge
    still to send; a broker outage loses nothing (the sweep sends what is pending).
    """
    charge = _record(
        company=company,
        amount_cents=amount_cents,
        description=description,
        idempotency_key=idempotency_key,
        units=units,
        period_started_at=period_started_at,
        period_ended_at=period_ended_at,
        currency=currency,
        product=product,
    )
    # A repeat queues the task again only for a charge nobody is sending or waiting on
    # (a lost message); the task's claim and lookup make a second task harmless anyway.
    if charge.status == AdHocCharge.Status.PENDING and not charge.awaiting_answer:
        tasks.enqueue_on_commit(tasks.submit_charge_task, charge.pk)
    return charge


def buy_product(*, company: Company, product: services.Product, form_key: str) -> AdHocCharge:
    """Queue ``company``'s purchase of ``product`` (:func:`queue_charge`), once per
    ``form_key``, the idempotency key of the form it was bought with: the charge's key is
    ``f"{product.key}:{form_key}"`` (its product's own keys, apart from the project's other
    charges; the SMS charges recorded before ``AdHocCharge.product`` have ``sms:`` keys),
    its ``product`` is ``product.key``. A blank ``form_key`` is refused
    (:class:`~maestrano_accounts.billing.services.InvalidBill`)."""
    return queue_charge(
        company=company,
        amount_cents=product.amount_cents,
        units=product.units,
        description=product.description,
        idempotency_key=f"{product.key}:{form_key}" if form_key else "",
        product=product.key,
    )


def _record(*, company: Company, **fields: Any) -> AdHocCharge:
    request = services.validate_charge(company=company, **fields)
    charge, _created = services.record_charge(company=company, request=request)
    return charge
