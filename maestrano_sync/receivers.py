"""Signal receivers of the sync: the initial import on company creation (docs/protocol.md,
'Integration duties'), and the index of the records of an inbox row saved through the ORM."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from maestrano_accounts.signals import company_created

from .conf import sync_settings
from .models import InboxEntry
from .notifications import index_inbox_entry, known_companies
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


@receiver(post_save, sender=InboxEntry, dispatch_uid="maestrano_sync.index_inbox_entry")
def index_saved_inbox_entry(
    sender: Any, instance: InboxEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """An inbox row created through the ORM (``InboxEntry.objects.create``: a record fetched
    again, ``maestrano_sync.status.reapply_record``) gets its index of records, as the
    webhook's rows do (:func:`maestrano_sync.notifications.index_inbox_entry`), in the
    caller's transaction. A payload is never changed once stored."""
    if created and not raw:
        index_inbox_entry(
            entry_id=instance.pk, company_id=instance.company_id, payload=instance.payload
        )
