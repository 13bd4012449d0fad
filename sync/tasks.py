"""Celery tasks of the sync. Thin: they call :mod:`sync.importer`."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import Company
from maestrano_integration.conf import maestrano_settings

from .importer import ImportFailed, run_import

logger = logging.getLogger(__name__)


def _retry_countdown(retries: int) -> float:
    sync = maestrano_settings.SYNC
    return min(
        float(sync["TASK_RETRY_BACKOFF"]) * 2**retries, float(sync["TASK_RETRY_BACKOFF_MAX"])
    )


@shared_task(bind=True, acks_late=True, name="sync.import_company")
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
        max_retries = int(maestrano_settings.SYNC["MAX_ATTEMPTS"]) - 1
        if error.retryable and self.request.retries < max_retries:
            raise self.retry(
                exc=error, countdown=_retry_countdown(self.request.retries), max_retries=max_retries
            ) from error
        return {"company": company_id, "run": error.run.pk, "status": error.run.status}
    return {"company": company_id, "run": run.pk, "status": run.status}
