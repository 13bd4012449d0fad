"""Signal receivers of the sync: the initial import on company creation (docs/protocol.md,
'Integration duties')."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from maestrano_accounts.signals import company_created

from .conf import sync_settings
from .notifications import known_companies
from .tasks import import_company

logger = logging.getLogger(__name__)


@receiver(company_created, dispatch_uid="maestrano_sync.import_on_company_created")
def enqueue_initial_import(sender: Any, company: Any, **kwargs: Any) -> None:
    """Enqueue the import once the company is committed; never call Connec! inline."""
    sync = sync_settings()
    if not sync.enabled or not sync.import_on_company_created:
        return
    company_id = company.pk
    logger.info(
        "Initial Connec! import enqueued for %s",
        company,
        extra={"preset": company.preset, "group": company.group_uid},
    )
    transaction.on_commit(lambda: import_company.delay(company_id))


@receiver(
    post_delete, sender="maestrano_accounts.Company", dispatch_uid="maestrano_sync.forget_company"
)
def forget_deleted_company(sender: Any, instance: Any, **kwargs: Any) -> None:
    """The webhook's known companies (:data:`maestrano_sync.notifications.known_companies`) lose a
    deleted company in this process at once (other processes: on the foreign key)."""
    known_companies.forget(instance.preset)
