"""What the dashboard shows about the current company: members, billing, sync and import.

Read-only selectors (keyword-only, typed), each taking the company first so
nothing here can read another tenant's rows. The pages (``crm.views`` and the
``crm_tags`` template tags) only format what these return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count
from django.urls import reverse

from maestrano_accounts.billing.models import AdHocCharge, CompanySubscription
from maestrano_accounts.models import Company, Membership
from maestrano_sync import history as sync_history_module
from maestrano_sync import selectors as sync_selectors
from maestrano_sync import status as record_status
from maestrano_sync.company_settings import policy_for
from maestrano_sync.keys import local_keys
from maestrano_sync.models import SyncRecordError, SyncRun
from maestrano_sync.registry import NotRegistered, registry

from .credits import sms_bought

#: How many ad-hoc charges the dashboard lists (the billing page lists them all).
RECENT_CHARGES = 5
#: How many sync runs the dashboard's history lists.
RECENT_RUNS = 8


@dataclass(frozen=True)
class BillingSummary:
    subscription: CompanySubscription | None
    charges: list[AdHocCharge]
    charges_count: int
    #: SMS bought (billed purchases of the "Buy 100 SMS" button).
    sms_bought: int = 0


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


#: What a person is told of an import's error, by the run's status (the technical text is
#: kept for the collapsed details, the admin and the logs).
IMPORT_ADVICE: dict[str, str] = {
    SyncRun.Status.RETRYING: (
        "Connec! did not answer for a moment: the import goes on by itself from where it "
        "stopped. Nothing to do."
    ),
    SyncRun.Status.FAILED: (
        "The import stopped before the end. What it imported is kept; ask the application's "
        "support to resume it: it goes on from where it stopped, without duplicates."
    ),
}


@dataclass(frozen=True)
class ImportProgress:
    """The latest initial import of a company, as the progress bar shows it."""

    run: SyncRun | None
    entities: list[EntityProgress] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.run.status if self.run else "none"

    @property
    def label(self) -> str:
        """The run's status in words; a transient failure the worker retries says so."""
        if self.run is None:
            return "Not started"
        if self.run.status == SyncRun.Status.RETRYING:
            return "Interrupted, retrying"
        return self.run.get_status_display()

    @property
    def advice(self) -> str:
        """What a person is told of the run's error, in plain words (``run.error`` is the
        technical text, under the card's collapsed details); ``""`` without an error."""
        if self.run is None or not self.run.error:
            return ""
        return IMPORT_ADVICE.get(self.run.status, IMPORT_ADVICE[SyncRun.Status.FAILED])

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
            "label": self.label,
            "running": self.running,
            "percent": self.percent,
            "started_at": run.started_at.isoformat() if run else None,
            "finished_at": run.finished_at.isoformat() if run and run.finished_at else None,
            "error": (run.error[:500] if run else "") or "",
            "advice": self.advice,
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
    outbox: int = 0
    parked: int = 0
    last_error: str = ""
    import_errors: int = 0
    queued: int = 0
    #: Changes waiting in the outbox while the company's sync, or this export, is off.
    held: int = 0
    retrying: int = 0
    not_applied: int = 0
    #: Of ``parked``: changes Connec! refused, and changes given up after failures.
    refused: int = 0
    given_up: int = 0

    @property
    def needs_attention(self) -> int:
        """What a person must act on: changes refused or given up, Connec!'s not applied."""
        return self.refused + self.given_up + self.not_applied


@dataclass(frozen=True)
class HistoryRow:
    """One line of the sync history: a run and what it did, in words."""

    kind: str
    label: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    summary: str
    error: str
    status_label: str
    #: Consecutive retries of the same thing it stands for (1: one run), since when.
    repeats: int = 1
    first_started_at: dt.datetime | None = None

    @property
    def explanation(self) -> str:
        """What this kind of run does, in a few words."""
        return RUN_KIND_EXPLANATIONS.get(self.kind, "")

    @property
    def advice(self) -> str:
        """What a person is told of the run's error, in plain words (``error`` is the
        technical text, under the row's collapsed details); ``""`` without an error."""
        if not self.error:
            return ""
        if self.kind == SyncRun.Kind.IMPORT:
            return IMPORT_ADVICE.get(self.status, IMPORT_ADVICE[SyncRun.Status.FAILED])
        return RUN_ERROR_ADVICE


#: What each kind of sync run does (the history's first column).
RUN_KIND_EXPLANATIONS: dict[str, str] = {
    SyncRun.Kind.IMPORT: "the first copy of the company's data from Connec!",
    SyncRun.Kind.PUSH: "changes made here, sent to Connec!",
    SyncRun.Kind.NOTIFICATIONS: "changes made in Connec!, applied here",
    SyncRun.Kind.RECONCILE: "a regular check that nothing was missed either way",
}
#: What a person is told of a live run (push, notifications, check) that stopped on an error.
RUN_ERROR_ADVICE = (
    "It stopped before the end (Connec! did not answer, or refused): nothing is lost, the "
    "next run tries again by itself."
)


@dataclass(frozen=True)
class SyncOverview:
    """The sync table plus the company-wide notification inbox."""

    entities: list[EntitySyncStatus]
    #: The company's sync is switched off (its sync settings): nothing goes either way.
    paused: bool = False
    inbox_pending: int = 0
    inbox_failed: int = 0
    #: Records kept in the inbox while the import of their entity is off.
    inbox_held: int = 0
    last_notification_received: dt.datetime | None = None
    #: The latest runs of every kind (imports, pushes, notifications, reconciliations).
    history: list[HistoryRow] = field(default_factory=list)

    @property
    def import_errors(self) -> int:
        return sum(row.import_errors for row in self.entities)


#: The record pages of each synced entity (their URL names' prefix, ``crm.urls``).
RECORD_PAGES = {
    "organizations": "organization",
    "people": "person",
    "items": "item",
    "invoices": "invoice",
}


@dataclass(frozen=True)
class ProblemRow:
    """A sync problem and the record it is about, as the problems panel names it."""

    problem: record_status.SyncProblem
    entity_label: str
    #: The local record's name and page, when it exists here.
    record_name: str = ""
    record_url: str = ""


def _entity_label(entity: str) -> str:
    try:
        return str(registry.for_entity(entity).model._meta.verbose_name_plural).capitalize()
    except NotRegistered:
        return entity


def sync_problems(*, company: Company) -> list[ProblemRow]:
    """The problems panel: parked pushes, records not applied, failed notifications, each
    with the name and page of the local record it is about (one query per entity)."""
    problems = record_status.problems(company=company)
    wanted: dict[str, set[str]] = {}
    for problem in problems:
        if problem.object_id and problem.entity in RECORD_PAGES:
            wanted.setdefault(problem.entity, set()).add(problem.object_id)
    names: dict[tuple[str, str], str] = {}
    for entity, object_ids in wanted.items():
        mapper = registry.for_entity(entity)
        # An id that is no key of the model names no record ("deleted here since").
        pks = local_keys(mapper.model, object_ids)
        for record in mapper.for_company(company).filter(pk__in=pks):
            names[(entity, str(record.pk))] = str(record) or f"{entity} {record.pk}"
    rows = []
    for problem in problems:
        name = names.get((problem.entity, problem.object_id), "")
        url = (
            reverse(f"crm:{RECORD_PAGES[problem.entity]}-edit", args=[problem.object_id])
            if name
            else ""
        )
        rows.append(
            ProblemRow(
                problem=problem,
                entity_label=_entity_label(problem.entity),
                record_name=name,
                record_url=url,
            )
        )
    return rows


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
        sms_bought=sms_bought(company=company),
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


def sync_status(*, company: Company) -> SyncOverview:
    """Per synced entity: records mapped, last import/push/notification, outbox, parked rows.

    Figures come from :func:`maestrano_sync.selectors.sync_status`; this adds the labels of
    the models and the records the import could not apply.
    """
    status = sync_selectors.sync_status(company=company)
    states = record_status.state_counts(company=company)
    company_wide = status.pop("*", {})
    import_errors = dict(
        SyncRecordError.objects.filter(company=company)
        .values_list("entity")
        .annotate(count=Count("pk"))
        .values_list("entity", "count")
    )
    rows = []
    for entity, figures in status.items():
        try:
            label = str(registry.for_entity(entity).model._meta.verbose_name_plural)
        except NotRegistered:
            label = entity
        rows.append(
            EntitySyncStatus(
                entity=entity,
                label=label.capitalize(),
                mapped=figures.get("mapped", 0),
                last_import=figures.get("last_import_at"),
                last_push=figures.get("last_push_at"),
                last_notification=figures.get("last_notification_at"),
                outbox=figures.get("outbox_pending", 0),
                parked=figures.get("outbox_parked", 0),
                last_error=figures.get("last_error", ""),
                import_errors=import_errors.get(entity, 0),
                queued=states.get(entity, {}).get(record_status.QUEUED, 0),
                held=states.get(entity, {}).get(record_status.HELD, 0),
                retrying=states.get(entity, {}).get(record_status.RETRYING, 0),
                not_applied=states.get(entity, {}).get(record_status.NOT_APPLIED, 0),
                refused=states.get(entity, {}).get(record_status.PARKED, 0),
                given_up=states.get(entity, {}).get(record_status.NOT_SENT, 0),
            )
        )
    return SyncOverview(
        entities=rows,
        paused=not policy_for(company_id=company.pk).enabled,
        inbox_pending=company_wide.get("inbox_pending", 0),
        inbox_failed=company_wide.get("inbox_failed", 0),
        inbox_held=company_wide.get("inbox_held", 0),
        last_notification_received=company_wide.get("last_notification_received_at"),
        history=sync_history(company=company),
    )


def sync_history(*, company: Company, limit: int = RECENT_RUNS) -> list[HistoryRow]:
    """The company's latest sync runs, newest first, repeated retries as one row (two
    queries: :func:`maestrano_sync.history.recent_history`)."""
    return [
        HistoryRow(
            kind=entry.run.kind,
            label=entry.run.get_kind_display(),
            status=entry.run.status,
            started_at=entry.run.started_at,
            finished_at=entry.run.finished_at,
            summary=sync_history_module.describe_counts(entry.run),
            error=entry.run.error,
            status_label=entry.run.get_status_display(),
            repeats=entry.repeats,
            first_started_at=entry.first_started_at,
        )
        for entry in sync_history_module.recent_history(company=company, limit=limit)
    ]
