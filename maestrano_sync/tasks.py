"""Celery tasks of the sync: import, drain the outbox, apply the inbox, reconcile. Thin.

Tasks call the services; services schedule tasks by name through
:mod:`maestrano_sync.scheduling`, never by importing this module. A task's function name
ends in ``_task`` where a service has the same name (``drain_outbox_task`` runs
:func:`maestrano_sync.push.drain_outbox`); the registered names (``maestrano_sync.drain_outbox``)
are what brokers hold and never change.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecError
from maestrano_integration.http import backoff_delay

from . import history, scheduling
from .company_settings import companies_with_pending_imports, is_sync_enabled
from .conf import sync_settings
from .importer import ImportFailed, mark_retrying, run_import
from .inbox import companies_with_releasable_held, has_pending_notifications, process_inbox
from .models import InboxEntry, OutboxEntry
from .push import drain_outbox, next_due_in
from .reconcile import catch_up as run_catch_up
from .reconcile import reconcile
from .retries import celery_max_retries, may_try_again
from .status import reapply_record

logger = logging.getLogger(__name__)


def _retry_countdown(retries: int) -> float:
    sync = sync_settings()
    return backoff_delay(
        attempt=retries,
        base=sync.task_retry_backoff,
        cap=sync.task_retry_backoff_max,
    )


@shared_task(bind=True, acks_late=True, name="maestrano_sync.import_company")
def import_company(
    self, company_id: int, entities: list[str] | None = None, restart: bool = False
) -> dict:
    """Import a company's Connec! data; on a transient failure retry later from the cursor.

    A 401 (bad credentials) fails the run for good: retrying cannot fix it.
    """
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        logger.warning("Import skipped: company %s no longer exists", company_id)
        return {"company": company_id, "status": "missing"}
    try:
        # A retry resumes the same run: only the first attempt may restart.
        run = run_import(
            company=company, entities=entities, restart=restart and not self.request.retries
        )
    except ImportFailed as error:
        if error.retryable and may_try_again(attempts=self.request.retries + 1):
            mark_retrying(run=error.run)
            raise self.retry(
                exc=error,
                countdown=_retry_countdown(self.request.retries),
                max_retries=celery_max_retries(),
            ) from error
        _follow_up(self, company)
        return {"company": company_id, "run": error.run.pk, "status": error.run.status}
    # The import's pages held the company's lock: the drains and inbox work that found it
    # taken meanwhile ended at once, and are scheduled again now, not at the next beat.
    _follow_up(self, company)
    return {"company": company_id, "run": run.pk, "status": run.status}


#: Eager mode (demo) only: how long a task waits for a company lock held by another thread.
EAGER_LOCK_WAIT = 5.0


def _run_locked(task: Any, work: Any) -> Any:
    """Run ``work()`` (which reports ``locked``); in eager mode wait a little for the lock.

    With a worker, a task that finds the company locked simply ends: the lock
    holder looks for new work when it releases the lock (:func:`_follow_up`).
    """
    outcome = work()
    if task.request.is_eager:
        deadline = time.monotonic() + EAGER_LOCK_WAIT
        while outcome.locked and time.monotonic() < deadline:
            time.sleep(0.1)
            outcome = work()
    return outcome


def _follow_up(task: Any, company: Company, *, inbox_deferred: bool = False) -> None:
    """After releasing the lock (a drain, the inbox, an import's last page): schedule the
    drain and the inbox work that is left.

    Covers changes committed while the lock was held (their own tasks found it
    taken) and rows backing off. Not in eager mode (no delayed runs there: the
    next change or the beat's ``drain_all`` picks them up).
    """
    if task.request.is_eager:
        return
    if not is_sync_enabled(company_id=company.pk):
        return  # everything waits until the sync is switched on again (which enqueues it)
    due_in = next_due_in(company=company)
    if due_in is not None:
        drain_outbox_task.apply_async((company.pk,), countdown=max(due_in, 0.05))
    if has_pending_notifications(company=company):
        countdown = sync_settings().push_retry_backoff if inbox_deferred else 0
        process_inbox_task.apply_async((company.pk,), countdown=max(countdown, 0.05))


@shared_task(bind=True, acks_late=True, name=scheduling.DRAIN_OUTBOX)
def drain_outbox_task(self: Any, company_id: int) -> dict:
    """Push a company's due outbox rows."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    result = _run_locked(self, lambda: drain_outbox(company=company))
    if not result.locked:
        _follow_up(self, company)
    return {"company": company_id, **result.as_dict()}


@shared_task(bind=True, acks_late=True, name=scheduling.PROCESS_INBOX)
def process_inbox_task(self: Any, company_id: int) -> dict:
    """Apply a company's stored notifications in arrival order."""
    # First: a notification stored from here on publishes a task of its own.
    scheduling.inbox_task_started(company_id=company_id)
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    started_at = timezone.now()
    run = _run_locked(self, lambda: process_inbox(company=company))
    if not run.locked:
        history.record_inbox_run(company=company, run=run, started_at=started_at)
        _follow_up(self, company, inbox_deferred=bool(run.deferred))
    return {
        "company": company_id,
        "locked": run.locked,
        "processed": run.processed,
        "failed": run.failed,
        "deferred": run.deferred,
        **run.result.as_dict(),
    }


@shared_task(name="maestrano_sync.reconcile_company")
def reconcile_company(company_id: int, entities: list[str] | None = None) -> dict:
    """Fetch what changed in Connec! since the watermark and apply it (lost notifications)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    return {"company": company_id, **reconcile(company=company, entities=entities)}


@shared_task(name="maestrano_sync.reconcile_all")
def reconcile_all() -> int:
    """Beat entry point: one reconciliation task per active company."""
    ids = list(Company.objects.filter(status=Company.Status.ACTIVE).values_list("pk", flat=True))
    for company_id in ids:
        reconcile_company.delay(company_id)
    return len(ids)


@shared_task(name="maestrano_sync.drain_all")
def drain_all() -> int:
    """Beat entry point: drain every company with due outbox rows or pending notifications
    (or held ones of an entity it imports again), and catch up the imports its sync
    settings switched on.

    A safety net: drains are normally enqueued on commit and after backoffs.
    """
    outbox = set(
        OutboxEntry.objects.filter(
            status=OutboxEntry.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("company_id", flat=True)
    )
    inbox = (
        set(
            InboxEntry.objects.filter(
                status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING]
            ).values_list("company_id", flat=True)
        )
        | companies_with_releasable_held()
    )
    imports = set(companies_with_pending_imports())
    for company_id in outbox:
        drain_outbox_task.delay(company_id)
    for company_id in inbox:
        process_inbox_task.delay(company_id)
    for company_id in imports:
        catch_up_task.delay(company_id)
    return len(outbox | inbox | imports)


@shared_task(bind=True, acks_late=True, name=scheduling.CATCH_UP)
def catch_up_task(self: Any, company_id: int) -> dict:
    """Import again the entities whose import was switched on (docs/sync.md)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    max_retries = celery_max_retries()
    # The lock is busy while changes keep coming: back off up to 30 s (the beat's drain_all
    # enqueues the catch-up again in any case while entities are pending).
    base = max(sync_settings().push_retry_backoff, 0.2)
    countdown = min(base * 2 ** min(self.request.retries, 8), 30.0)
    try:
        summary = _run_locked(self, lambda: _Locked(run_catch_up(company=company)))
    except ConnecError as error:
        if error.is_transient and may_try_again(attempts=self.request.retries + 1):
            raise self.retry(exc=error, countdown=countdown, max_retries=max_retries) from error
        raise
    if summary.locked and not self.request.is_eager:
        raise self.retry(countdown=countdown, max_retries=max_retries)
    return {"company": company_id, **summary.value}


class _Locked:
    """A summary dict with the ``locked`` flag :func:`_run_locked` looks at."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.locked = bool(value.get("locked"))


@shared_task(bind=True, acks_late=True, name=scheduling.REAPPLY_RECORD)
def reapply_record_task(self: Any, company_id: int, entity: str, connec_id: str) -> dict:
    """Fetch a Connec! record that was not applied and apply it again (problems panel)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {"company": company_id, "status": "missing"}
    try:
        outcome = reapply_record(company=company, entity=entity, connec_id=connec_id)
    except ConnecError as error:
        logger.warning(
            "Connec! %s record %s could not be fetched again: %s",
            entity,
            connec_id,
            error,
            extra={"preset": company.preset, "group": company.group_uid},
        )
        return {"company": company_id, "status": "failed", "error": str(error)[:300]}
    return {"company": company_id, "status": outcome}
