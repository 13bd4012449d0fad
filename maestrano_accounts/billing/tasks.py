"""Celery tasks of billing: thin wrappers around :mod:`maestrano_accounts.billing.services`.

Transient platform failures (network, 429, 5xx) are retried with exponential
backoff; refusals are not (they stay ``failed`` with the platform's message, for
the admin's "retry" action). In eager mode (no broker, the embedded demo) a task
does not retry inline, which would block the request that queued it: what
failed stays pending and :func:`retry_pending_billing_task` (schedule it with
celery beat, or use the admin action) picks it up.

The ``settle_*`` functions do the platform side of a change recorded by the
services, inline, and queue a retry of whatever failed. The tasks are
registered when ``AccountsConfig.ready()`` connects billing's receivers.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task
from django.db import transaction

from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription
from maestrano_integration.account import AccountApiError
from maestrano_integration.conf import ImproperlyConfiguredPreset
from maestrano_integration.http import backoff_delay

from . import services
from .conf import billing_settings

logger = logging.getLogger(__name__)


def _is_eager() -> bool:
    return bool(current_app.conf.task_always_eager)


def _countdown(retries: int) -> float:
    config = billing_settings()
    return backoff_delay(
        attempt=retries, base=config.task_retry_backoff, cap=config.task_retry_backoff_max
    )


def _retry_if_transient(task: Task, error: Exception, *, not_before: float = 0.0) -> None:
    """Re-queue ``task`` later when ``error`` is worth retrying; otherwise let it rest.

    Never sooner than ``not_before`` seconds: a create that got no answer is not sent
    again within the grace period (:func:`maestrano_accounts.billing.services.answer_grace`).
    """
    transient = bool(getattr(error, "is_transient", False))
    max_retries = billing_settings().task_max_retries
    if not transient or task.request.is_eager or task.request.retries >= max_retries:
        logger.warning(
            "Billing task gave up for now: %s",
            type(error).__name__,
            extra={"task": task.name, "task_args": task.request.args, "transient": transient},
        )
        return
    countdown = max(_countdown(task.request.retries), not_before)
    raise task.retry(exc=error, countdown=countdown)


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


def enqueue_retry(task: Task, *args: Any, not_before: float = 0.0) -> None:
    """Queue a later retry of ``task``, not sooner than ``not_before`` seconds (not in eager
    mode: the sweep does it)."""
    if _is_eager():
        return

    def send() -> None:
        try:
            task.apply_async(args, countdown=max(_countdown(0), not_before))
        except Exception:
            logger.exception("Could not queue billing retry", extra={"task": task.name})

    transaction.on_commit(send)


#: Failures recorded on the billing row by the services; anything else is a bug and raises.
PLATFORM_ERRORS = (AccountApiError, ImproperlyConfiguredPreset)


@shared_task(bind=True, acks_late=True)
def set_up_billing_task(self: Task, company_id: int) -> str | None:
    """Create the company's recurring bill on the platform (after ``company_created``)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return None
    try:
        subscription = services.set_up_billing(company=company)
    except PLATFORM_ERRORS as error:
        pending = services.open_subscription(company=company)
        wait = services.seconds_until_resend(record=pending) if pending is not None else 0.0
        _retry_if_transient(self, error, not_before=wait)
        return None
    return subscription.platform_id if subscription is not None else None


@shared_task(bind=True, acks_late=True)
def submit_subscription_task(self: Task, subscription_id: int) -> str | None:
    subscription = CompanySubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return None
    try:
        return services.submit_subscription(subscription=subscription).platform_id
    except PLATFORM_ERRORS as error:
        wait = services.seconds_until_resend(record=subscription)
        _retry_if_transient(self, error, not_before=wait)
        return None


@shared_task(bind=True, acks_late=True)
def cancel_subscription_task(self: Task, subscription_id: int) -> bool:
    """Cancel a cancelled subscription's recurring bill on the platform."""
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
    charge = AdHocCharge.objects.filter(pk=charge_id).first()
    if charge is None:
        return None
    try:
        return services.submit_charge(charge=charge).platform_bill_id
    except PLATFORM_ERRORS as error:
        _retry_if_transient(self, error, not_before=services.seconds_until_resend(record=charge))
        return None


@shared_task
def retry_pending_billing_task() -> dict[str, int]:
    """Sweep: queue every subscription, cancellation and charge not yet on the platform.

    Schedule it periodically (celery beat); it is also what recovers work
    after an outage in eager mode.
    """
    work = services.pending_billing_work()
    for subscription_id in work.subscriptions_to_submit:
        submit_subscription_task.delay(subscription_id)
    for subscription_id in work.subscriptions_to_cancel:
        cancel_subscription_task.delay(subscription_id)
    for charge_id in work.charges_to_submit:
        submit_charge_task.delay(charge_id)
    for company_id in work.cancelled_companies:
        cancel_company_billing_task.delay(company_id)
    return {
        "subscriptions_to_submit": len(work.subscriptions_to_submit),
        "subscriptions_to_cancel": len(work.subscriptions_to_cancel),
        "charges_to_submit": len(work.charges_to_submit),
        "cancelled_companies": len(work.cancelled_companies),
    }


@shared_task
def refresh_billing_status_task() -> dict[str, int]:
    """Read bill and recurring-bill statuses from the Account API (celery beat).

    Each company is refreshed on its own: a company whose calls fail is logged and
    tried again at the next run; the others are refreshed.
    """
    companies = Company.objects.filter(pk__in=services.companies_to_refresh())
    refreshed = changed = failed = 0
    for company in companies:
        try:
            changed += services.refresh_billing_status(company=company)
            refreshed += 1
        except PLATFORM_ERRORS as error:
            failed += 1
            logger.warning(
                "Billing status not refreshed: %s",
                type(error).__name__,
                extra={"preset": company.preset, "group": company.group_uid},
            )
    return {"companies": refreshed, "changed": changed, "failed": failed}


@shared_task(acks_late=True)
def update_headcount_task(company_id: int) -> str | None:
    """Re-price a per-user subscription after members came or went."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return None
    replacement = services.update_headcount(company=company)
    if replacement is None:
        return None
    settle_replacement(replacement)
    replacement.current.refresh_from_db()
    return replacement.current.platform_id


@shared_task(acks_late=True)
def cancel_company_billing_task(company_id: int) -> None:
    """Billing's part of a company's cancellation (after ``company_cancelled``, or the sweep)."""
    company = Company.objects.filter(pk=company_id, status=Company.Status.CANCELLED).first()
    if company is not None:
        settle_cancellation(company=company)


# --- the platform side of recorded changes ---------------------------------------------------


def settle_replacement(replacement: services.Replacement) -> None:
    """Cancel the replaced recurring bill and create the new one, now; a failure leaves
    the work recorded and queues a retry (the sweep also finds it)."""
    if replacement.replaced is not None:
        try:
            services.cancel_subscription_on_platform(subscription=replacement.replaced)
        except PLATFORM_ERRORS:
            enqueue_retry(cancel_subscription_task, replacement.replaced.pk)
    try:
        services.submit_subscription(subscription=replacement.current)
    except PLATFORM_ERRORS as error:
        if getattr(error, "is_transient", False):
            wait = services.seconds_until_resend(record=replacement.current)
            enqueue_retry(submit_subscription_task, replacement.current.pk, not_before=wait)


def settle_cancellation(*, company: Company) -> None:
    """Cancel the company's billing: its open subscriptions (here, then on the platform)
    and the adapter's final bill (recorded, then sent).

    Idempotent (the final bill's key is tied to the cancellation), so the sweep may
    run it again after a crash. Platform failures queue retries; nothing is lost.
    """
    with transaction.atomic():
        Company.objects.select_for_update().filter(pk=company.pk).first()
        subscriptions = services.cancel_company_billing(company=company)
        final_charge = _record_final_bill(company)
    for subscription in subscriptions:
        if not subscription.platform_cancel_pending:
            continue
        try:
            services.cancel_subscription_on_platform(subscription=subscription)
        except PLATFORM_ERRORS:
            enqueue_retry(cancel_subscription_task, subscription.pk)
    if final_charge is not None and not final_charge.is_on_platform:
        try:
            services.submit_charge(charge=final_charge)
        except PLATFORM_ERRORS as error:
            if getattr(error, "is_transient", False):
                wait = services.seconds_until_resend(record=final_charge)
                enqueue_retry(submit_charge_task, final_charge.pk, not_before=wait)


def _record_final_bill(company: Company) -> AdHocCharge | None:
    """The adapter's final bill, if any; a bad one is logged, never fails the cancellation."""
    try:
        with transaction.atomic():
            return services.record_final_bill(company=company)
    except services.InvalidBill as error:
        logger.error(
            "Final bill from the adapter refused: %s",
            error,
            extra={"preset": company.preset, "group": company.group_uid},
        )
        return None
