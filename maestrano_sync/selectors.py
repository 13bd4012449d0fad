"""Reads of the sync's state for adopters and dashboards: the local object of a Connec!
record and back, runs, status. IdMap reads live in :mod:`maestrano_sync.idmap` (re-exported here:
``bulk_lookup``, ``local_pks_for``, ``connec_ids_for_pks``).

Every function takes the company (tenant) first: an IdMap row of another
company is never visible, even when Connec! ids collide.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from django.db.models import Count, Max, Q

from maestrano_accounts.models import Company

from . import idmap
from .idmap import bulk_lookup, connec_ids_for_pks, local_pks_for
from .keys import local_key
from .models import InboxEntry, InboxSummary, OutboxEntry, SyncRun, SyncRunEntity, SyncState
from .registry import registry

# Reads of the IdMap live in maestrano_sync.idmap; these are the names adopters import from here.
__all__ = [
    "bulk_lookup",
    "connec_id_for",
    "connec_ids_for_pks",
    "find_local_object",
    "latest_run",
    "local_pks_for",
    "outbox_depth",
    "resumable_run",
    "sync_status",
]


def find_local_object(*, company: Company, entity: str, connec_id: str) -> models.Model | None:
    """The local object mapped to a Connec! record of this company, or ``None``."""
    id_map = idmap.find_id_map(company=company, entity=entity, connec_id=connec_id)
    if id_map is None:
        return None
    mapper = registry.for_entity(entity)
    key = local_key(mapper.model, id_map.object_id)
    if key is None:
        return None  # a stored id no row of the model can have names no record
    return mapper.for_company(company).filter(pk=key).first()


def connec_id_for(*, company: Company, obj: models.Model) -> str | None:
    """The Connec! id of a local object, or ``None`` when it was never synced."""
    id_map = idmap.id_map_for_object(company=company, obj=obj)
    return id_map.connec_id if id_map is not None else None


def latest_run(*, company: Company, kind: str = SyncRun.Kind.IMPORT) -> SyncRun | None:
    return SyncRun.objects.filter(company=company, kind=kind).order_by("-started_at", "-pk").first()


def resumable_run(
    *, company: Company, entities: list[str] | None = None, kind: str = SyncRun.Kind.IMPORT
) -> SyncRun | None:
    """The latest unfinished run (running, or failed or retrying with an entity left) to
    continue, if its entities match."""
    run = (
        SyncRun.objects.filter(
            company=company,
            kind=kind,
            status__in=[SyncRun.Status.RUNNING, SyncRun.Status.FAILED, SyncRun.Status.RETRYING],
        )
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        return None
    newer_finished = SyncRun.objects.filter(company=company, kind=kind, pk__gt=run.pk).exists()
    if newer_finished:
        return None
    if run.status != SyncRun.Status.RUNNING and not run.entities.filter(done=False).exists():
        return None  # went to the end, every record parked: nothing to continue
    if entities is not None:
        run_entities = set(run.entities.values_list("entity", flat=True))
        if run_entities != set(entities):
            return None
    return run


# --- live sync status (dashboard, ``manage.py maestrano_sync_status``) ---------------------


def sync_status(*, company: Company) -> dict[str, dict[str, Any]]:
    """Per entity: records mapped (those of the company linked to Connec!, deleted ones not
    counted: :func:`maestrano_sync.idmap.mapped_counts`), last import/push/notification/reconcile
    times, outbox depth,
    parked rows and their last error, and the company's pending inbox (``"*"`` key).

    A handful of grouped queries, whatever the number of rows.
    """

    def empty() -> dict[str, Any]:
        return {
            "mapped": 0,
            "last_import_at": None,
            "last_push_at": None,
            "last_notification_at": None,
            "last_reconcile_at": None,
            "outbox_pending": 0,
            "outbox_parked": 0,
            "last_error": "",
        }

    status: dict[str, dict[str, Any]] = {e: empty() for e in registry.dependency_order()}

    def row(entity: str) -> dict[str, Any]:
        return status.setdefault(entity, empty())

    # The mappers' entities only (the IdMap also links sub-records, ``invoices/lines``), and
    # only records that still exist here (rows stay after a delete on either side).
    for entity, count in idmap.mapped_counts(company=company, entities=status).items():
        row(entity)["mapped"] = count
    imports = (
        SyncRunEntity.objects.filter(run__company=company, run__kind=SyncRun.Kind.IMPORT, done=True)
        .values("entity")
        .annotate(at=Max("updated_at"))
    )
    for item in imports:
        row(item["entity"])["last_import_at"] = item["at"]
    for state in SyncState.objects.filter(company=company):
        entry = row(state.entity)
        entry["last_push_at"] = state.last_push_at
        entry["last_notification_at"] = state.last_notification_at
        entry["last_reconcile_at"] = state.last_reconcile_at
    depth = (
        OutboxEntry.objects.filter(
            company=company,
            status__in=[OutboxEntry.Status.PENDING, OutboxEntry.Status.PARKED],
        )
        .values("entity", "status")
        .annotate(n=Count("pk"))
    )
    for queued in depth:
        key = (
            "outbox_pending" if queued["status"] == OutboxEntry.Status.PENDING else "outbox_parked"
        )
        row(queued["entity"])[key] = queued["n"]
    for entity, values in status.items():
        if values["outbox_parked"]:
            values["last_error"] = (
                OutboxEntry.objects.filter(
                    company=company, entity=entity, status=OutboxEntry.Status.PARKED
                )
                .order_by("-updated_at", "-pk")
                .values_list("last_error", flat=True)
                .first()
                or ""
            )
    inbox = InboxEntry.objects.filter(company=company).aggregate(
        pending=Count(
            "pk", filter=Q(status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING])
        ),
        failed=Count("pk", filter=Q(status=InboxEntry.Status.FAILED)),
        held=Count("pk", filter=Q(status=InboxEntry.Status.HELD)),
        received=Max("received_at"),
    )
    status["*"] = {
        "inbox_pending": inbox["pending"],
        "inbox_failed": inbox["failed"],
        "inbox_held": inbox["held"],
        # The newest of the rows kept and of those pruned (``SYNC["HISTORY_DAYS"]``).
        "last_notification_received_at": _newest(
            inbox["received"],
            InboxSummary.objects.filter(company=company)
            .values_list("pruned_received_at", flat=True)
            .first(),
        ),
    }
    return status


def _newest(*times: datetime.datetime | None) -> datetime.datetime | None:
    known = [at for at in times if at is not None]
    return max(known) if known else None


def outbox_depth(*, company: Company | None = None) -> int:
    """Pending outbox rows (of one company, or all)."""
    rows = OutboxEntry.objects.filter(status=OutboxEntry.Status.PENDING)
    return (rows.filter(company=company) if company is not None else rows).count()
