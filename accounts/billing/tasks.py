"""Celery tasks of billing: thin wrappers around :mod:`accounts.billing.services`.

Transient platform failures (network, 429, 5xx) are retried with exponential
backoff; refusals are not (they stay ``failed`` with the platform's message, for
the admin's "retry" action). In eager mode (no broker, the embedded demo) a task
does not retry inline, which would block the request that queued it: what
failed stays pending and :func:`retry_pending_billing_task` (schedule it with
celery beat, or use the admin action) picks it up.

Services are imported inside the tasks: this module is imported while Django
loads models (so a worker registers the tasks), before services can be.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task
from django.db import transaction

from maestrano_integration.account import AccountApiError
from maestrano_integration.conf import ImproperlyConfiguredPreset, maestrano_settings
from maestrano_integration.http import backoff_delay

logger = logging.getLogger(__name__)


def _is_eager() -> bool:
    return bool(current_app.conf.task_always_eager)


def _countdown(retries: int) -> float:
    config = maestrano_settings.BILLING
    return backoff_delay(
        attempt=retries,
        base=float(config["TASK_RETRY_BACKOFF"]),
        cap=float(config["TASK_RETRY_BACKOFF_MAX"]),
    )


def _retry_if_transient(task: Task, error: Exception) -> None:
    """Re-queue ``task`` later when ``error`` is worth retrying; otherwise let it rest."""
    transient = bool(getattr(error, "is_transient", False))
    max_retries = int(maestrano_settings.BILLING["TASK_MAX_RETRIES"])
    if not transient or task.request.is_eager or task.request.retries >= max_retries:
        logger.warning(
            "Billing task gave up for now: %s",
            type(error).__name__,
            extra={"task": task.name, "task_args": task.request.args, "transient": transient},
        )
        return
    raise task.retry(exc=error, countdown=_countdown(task.request.retries))


def enqueue_on_commit(task: Task, *args: Any) -> None:
    """Queue ``task`` once the current transaction commits; never raise into the caller.

    Used from the login and webhook paths: a broker outage must not fail them
    (the work stays pending in the database and the sweep retries it).
    """

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:
            logger.exception(
                "Could not queue billing task", extra={"task": task.name, "task_args": args}
            )

    transaction.on_commit(send)


def enqueue_retry(task: Task, *args: Any) -> None:
    """Queue a later retry of ``task`` (not in eager mode: the sweep does it)."""
    if _is_eager():
        return

    def send() -> None:
        try:
            task.apply_async(args, countdown=_countdown(0))
        except Exception:
            logger.exception("Could not queue billing retry", extra={"task": task.name})

    transaction.on_commit(send)


#: Failures recorded on the billing row by the services; anything else is a bug and raises.
PLATFORM_ERRORS = (AccountApiError, ImproperlyConfiguredPreset)


@shared_task(bind=True, acks_late=True)
def set_up_billing_task(self: Task, company_id: int) -> str | None:
    """Create the company's recurring bill on the platform (after ``company_created``)."""
    from accounts.models import Company

    from . import services

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return None
    try:
        subscription = services.set_up_billing(company=company)
    except PLATFORM_ERRORS as error:
        _retry_if_transient(self, error)
        return None
    return subscription.platform_id if subscription is not None else None


@shared_task(bind=True, acks_late=True)
def submit_subscription_task(self: Task, subscription_id: int) -> str | None:
    from . import services
    from .models import CompanySubscription

    subscription = CompanySubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return None
    try:
        return services.submit_subscription(subscription=subscription).platform_id
    except PLATFORM_ERRORS as error:
        _retry_if_transient(self, error)
        return None


@shared_task(bind=True, acks_late=True)
def cancel_subscription_task(self: Task, subscription_id: int) -> bool:
    """Cancel a cancelled subscription's recurring bill on the platform."""
    from . import services
    from .models import CompanySubscription

    subscription = CompanySubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return False
    try:
        services.cancel_subscription_on_platform(subscription=subscription)
    except PLATFORM_ERRORS as error:
        _retry_if_transient(self, error)
        return False
    return True


@shared_task(bind=True, acks_late=True)
def submit_charge_task(self: Task, charge_id: int) -> str | None:
    from . import services
    from .models import AdHocCharge

    charge = AdHocCharge.objects.filter(pk=charge_id).first()
    if charge is None:
        return None
    try:
        return services.submit_charge(charge=charge).platform_bill_id
    except PLATFORM_ERRORS as error:
        _retry_if_transient(self, error)
        return None


@shared_task
def retry_pending_billing_task() -> dict[str, int]:
    """Sweep: queue every subscription, cancellation and charge not yet on the platform.

    Schedule it periodically (celery beat); it is also what recovers work
    after an outage in eager mode.
    """
    from . import services

    work = services.pending_billing_work()
    for subscription_id in work.subscriptions_to_submit:
        submit_subscription_task.delay(subscription_id)
    for subscription_id in work.subscriptions_to_cancel:
        cancel_subscription_task.delay(subscription_id)
    for charge_id in work.charges_to_submit:
        submit_charge_task.delay(charge_id)
    return {
        "subscriptions_to_submit": len(work.subscriptions_to_submit),
        "subscriptions_to_cancel": len(work.subscriptions_to_cancel),
        "charges_to_submit": len(work.charges_to_submit),
    }
