"""What the dashboard shows about the current company: members, billing, sync and import.

Read-only selectors (keyword-only, typed), each taking the company first so
nothing here can read another tenant's rows. The pages (``crm.views`` and the
``crm_dashboard`` template tags) only format what these return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count

from accounts.billing.models import AdHocCharge, CompanySubscription
from accounts.models import Company, Membership
from sync.models import IdMap, SyncRecordError, SyncRun
from sync.registry import registry

#: How many ad-hoc charges the dashboard lists (the billing page lists them all).
RECENT_CHARGES = 5


@dataclass(frozen=True)
class BillingSummary:
    subscription: CompanySubscription | None
    charges: list[AdHocCharge]
    charges_count: int


@dataclass(frozen=True)
class EntityProgress:
    entity: str
    total: int | None
    processed: int
    failed: int
    done: bool

    @property
    def percent(self) -> int:
        if self.done:
            return 100
        if not self.total:
            return 0
        return min(100, round(100 * self.processed / self.total))


@dataclass(frozen=True)
class ImportProgress:
    """The latest initial import of a company, as the progress bar shows it."""

    run: SyncRun | None
    entities: list[EntityProgress] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.run.status if self.run else "none"

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.status == SyncRun.Status.RUNNING

    @property
    def percent(self) -> int:
        totals = [entity for entity in self.entities if entity.total]
        if self.run is not None and self.run.is_finished:
            return 100
        if not totals:
            return 0
        total = sum(entity.total or 0 for entity in totals)
        processed = sum(min(entity.processed, entity.total or 0) for entity in totals)
        return min(100, round(100 * processed / total)) if total else 0

    def as_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "status": self.status,
            "running": self.running,
            "percent": self.percent,
            "started_at": run.started_at.isoformat() if run else None,
            "finished_at": run.finished_at.isoformat() if run and run.finished_at else None,
            "entities": [
                {
                    "entity": entity.entity,
                    "total": entity.total,
                    "processed": entity.processed,
                    "failed": entity.failed,
                    "done": entity.done,
                    "percent": entity.percent,
                }
                for entity in self.entities
            ],
        }


@dataclass(frozen=True)
class EntitySyncStatus:
    """One row of the dashboard's sync table."""

    entity: str
    label: str
    mapped: int
    last_import: dt.datetime | None = None
    last_push: dt.datetime | None = None
    last_notification: dt.datetime | None = None
    outbox: int | None = None
    inbox: int | None = None
    parked: int = 0


def members(*, company: Company) -> list[Membership]:
    """Everyone with access (or who had it) to the company, with their platform role."""
    return list(
        Membership.objects.filter(company=company)
        .select_related("user")
        .order_by("-is_active", "user__last_name", "user__first_name", "pk")
    )


def billing_summary(*, company: Company) -> BillingSummary:
    """The open (or latest) subscription and the latest ad-hoc charges."""
    subscriptions = CompanySubscription.objects.filter(company=company).select_related("plan")
    subscription = (
        subscriptions.exclude(status=CompanySubscription.Status.CANCELLED).first()
        or subscriptions.first()
    )
    charges = AdHocCharge.objects.filter(company=company)
    return BillingSummary(
        subscription=subscription,
        charges=list(charges[:RECENT_CHARGES]),
        charges_count=charges.count(),
    )


def import_progress(*, company: Company) -> ImportProgress:
    """Progress of the company's latest initial import, per entity in import order."""
    run = (
        SyncRun.objects.filter(company=company, kind=SyncRun.Kind.IMPORT)
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        return ImportProgress(run=None)
    entities = [
        EntityProgress(
            entity=row.entity,
            total=row.total,
            processed=row.processed,
            failed=row.failed,
            done=row.done,
        )
        for row in run.entities.order_by("position")
    ]
    return ImportProgress(run=run, entities=entities)


def _external_status(company: Company) -> dict[str, dict[str, Any]]:
    """Push/notification figures per entity from the sync app, when it provides them.

    ``sync.selectors.sync_status(company=...)`` belongs to the live-sync part of
    the sync app; it answers a mapping or a list of per-entity rows.
    """
    from sync import selectors

    provider = getattr(selectors, "sync_status", None)
    if provider is None:
        return {}
    status = provider(company=company)
    rows = status.get("entities", status) if isinstance(status, dict) else status
    if isinstance(rows, dict):
        return {str(entity): _as_dict(row) for entity, row in rows.items()}
    return {str(_as_dict(row).get("entity")): _as_dict(row) for row in rows or []}


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    return {name: getattr(row, name) for name in dir(row) if not name.startswith("_")}


def sync_status(*, company: Company) -> list[EntitySyncStatus]:
    """Per synced entity: records mapped, last import/push/notification, queues, parked errors."""
    mapped = dict(
        IdMap.objects.filter(company=company)
        .values_list("entity")
        .annotate(count=Count("pk"))
        .values_list("entity", "count")
    )
    parked = dict(
        SyncRecordError.objects.filter(company=company)
        .values_list("entity")
        .annotate(count=Count("pk"))
        .values_list("entity", "count")
    )
    last_run = (
        SyncRun.objects.filter(company=company, kind=SyncRun.Kind.IMPORT)
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .first()
    )
    external = _external_status(company)
    rows = []
    for entity in registry.dependency_order():
        extra = external.get(entity, {})
        mapper = registry.for_entity(entity)
        rows.append(
            EntitySyncStatus(
                entity=entity,
                label=str(mapper.model._meta.verbose_name_plural).capitalize(),
                mapped=mapped.get(entity, 0),
                last_import=extra.get("last_import")
                or (last_run.finished_at if last_run else None),
                last_push=extra.get("last_push"),
                last_notification=extra.get("last_notification"),
                outbox=extra.get("outbox"),
                inbox=extra.get("inbox"),
                parked=int(extra.get("parked") or 0) or parked.get(entity, 0),
            )
        )
    return rows
