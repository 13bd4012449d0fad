"""Celery tasks of the live sync: drain the outbox, apply the inbox, reconcile. Thin."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

from accounts.models import Company
from maestrano_integration.conf import maestrano_settings

logger = logging.getLogger(__name__)

#: When another worker holds a company's lock, look again this much later.
BUSY_COUNTDOWN = 2.0


def enqueue_inbox(*, company_id: Any) -> None:
    """Apply the company's notifications once the current transaction commits."""
    transaction.on_commit(lambda: process_inbox.delay(company_id))


@shared_task(bind=True, acks_late=True, name="sync.drain_outbox")
def drain_outbox(self: Any, company_id: int) -> dict:
    """Push a company's due outbox rows; schedule itself again for rows backing off."""
    from .push import drain_outbox as drain

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    result = drain(company=company)
    if self.request.is_eager:
        pass  # eager (demo): no delayed runs; the next change or beat drains the rest
    elif result.locked:
        # Another worker is draining; it may have missed rows committed after its last read.
        drain_outbox.apply_async((company_id,), countdown=BUSY_COUNTDOWN)
    elif result.next_due_in is not None:
        drain_outbox.apply_async((company_id,), countdown=max(result.next_due_in, 0.05))
    return {"company": company_id, **result.as_dict()}


@shared_task(bind=True, acks_late=True, name="sync.process_inbox")
def process_inbox(self: Any, company_id: int) -> dict:
    """Apply a company's stored notifications in arrival order."""
    from .inbox import process_inbox as process

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    run = process(company=company)
    if self.request.is_eager:
        pass
    elif run.locked:
        process_inbox.apply_async((company_id,), countdown=BUSY_COUNTDOWN)
    elif run.deferred:
        backoff = float(maestrano_settings.SYNC["PUSH_RETRY_BACKOFF"])
        process_inbox.apply_async((company_id,), countdown=backoff)
    return {
        "company": company_id,
        "locked": run.locked,
        "processed": run.processed,
        "failed": run.failed,
        "deferred": run.deferred,
        **run.result.as_dict(),
    }


@shared_task(name="sync.reconcile_company")
def reconcile_company(company_id: int, entities: list[str] | None = None) -> dict:
    """Fetch what changed in Connec! since the watermark and apply it (lost notifications)."""
    from .reconcile import reconcile

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    return {"company": company_id, **reconcile(company=company, entities=entities)}


@shared_task(name="sync.reconcile_all")
def reconcile_all() -> int:
    """Beat entry point: one reconciliation task per active company."""
    ids = list(Company.objects.filter(status=Company.Status.ACTIVE).values_list("pk", flat=True))
    for company_id in ids:
        reconcile_company.delay(company_id)
    return len(ids)


@shared_task(name="sync.drain_all")
def drain_all() -> int:
    """Beat entry point: drain every company with due outbox rows or pending notifications.

    A safety net: drains are normally enqueued on commit and after backoffs.
    """
    from django.utils import timezone

    from .models import InboxEntry, OutboxEntry

    outbox = set(
        OutboxEntry.objects.filter(
            status=OutboxEntry.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("company_id", flat=True)
    )
    inbox = set(
        InboxEntry.objects.filter(
            status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING]
        ).values_list("company_id", flat=True)
    )
    for company_id in outbox:
        drain_outbox.delay(company_id)
    for company_id in inbox:
        process_inbox.delay(company_id)
    return len(outbox | inbox)
