"""Signal receivers of the sync: the initial import on company creation (docs/protocol.md,
'Integration duties')."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from accounts.signals import company_created

from .conf import sync_settings
from .tasks import import_company

logger = logging.getLogger(__name__)


@receiver(company_created, dispatch_uid="sync.import_on_company_created")
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
