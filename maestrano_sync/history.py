"""Sync history: one :class:`~maestrano_sync.models.SyncRun` row per push drain, batch of
notifications applied and reconciliation, beside the import runs.

Cheap on purpose: one row per run, never per record, and only for runs that did
something (a drain with nothing due, an empty inbox, a reconciliation that found
nothing new write no row). What a run did is in ``counts``; the records it
parked are where they always are (parked outbox rows, ``SyncRecordError``).
Every run's status, the imports' included, comes from its counts by one rule
(:func:`run_status`).
Rows older than ``SYNC["HISTORY_DAYS"]`` (default 30) are pruned as new ones
are written (every ``PRUNE_EVERY`` rows, one ``DELETE``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from maestrano_accounts.models import Company

from .conf import sync_settings
from .models import SyncRun

#: ``SyncRun.kind`` values written here (imports write their own rows).
LIVE_KINDS = (SyncRun.Kind.PUSH, SyncRun.Kind.NOTIFICATIONS, SyncRun.Kind.RECONCILE)
DEFAULT_HISTORY_DAYS = 30
PRUNE_EVERY = 50


#: Counts of records a run took care of: applied, or nothing to do (see :func:`run_status`).
DONE_COUNTS = frozenset(
    {"done", "created", "updated", "deleted", "skipped", "ignored", "conflicts"}
)
#: Counts of records (or notifications) left for a later automatic try.
WAITING_COUNTS = frozenset({"retried", "notifications_deferred"})
#: Counts of records (or notifications) parked or not applied: they need a person.
FAILED_COUNTS = frozenset({"parked", "failed", "notifications_failed"})


def run_status(*, counts: Mapping[str, Any], error: str = "") -> str:
    """The status of a finished run, from its counts: the one rule for every kind of run.

    * ``error`` (the run stopped): ``failed``;
    * something parked or not applied (:data:`FAILED_COUNTS`): ``partial`` when the run
      also did something (:data:`DONE_COUNTS`), ``failed`` when it did nothing;
    * else something left for a later try (:data:`WAITING_COUNTS`: retried, deferred):
      ``retrying``, whatever else was done;
    * else ``succeeded`` (a run with nothing to do included).

    The other counts (``sent``, ``requests``, ``fetched``, ``notifications``) say how
    much was exchanged, not how it went.
    """

    def total(keys: frozenset[str]) -> int:
        return sum(int(value or 0) for key, value in counts.items() if key in keys)

    if error:
        return SyncRun.Status.FAILED
    if total(FAILED_COUNTS):
        return SyncRun.Status.PARTIAL if total(DONE_COUNTS) else SyncRun.Status.FAILED
    if total(WAITING_COUNTS):
        return SyncRun.Status.RETRYING
    return SyncRun.Status.SUCCEEDED


def record_run(
    *,
    company: Company,
    kind: str,
    counts: Mapping[str, Any],
    error: str = "",
    started_at: datetime.datetime | None = None,
) -> SyncRun | None:
    """Write one finished run of ``kind``; nothing when every count is zero.

    Its status is :func:`run_status` of ``counts`` and ``error`` (a run that stopped).
    """
    counts = {key: value for key, value in counts.items() if value}
    if not counts and not error:
        return None
    now = timezone.now()
    run = SyncRun.objects.create(
        company=company,
        kind=kind,
        status=run_status(counts=counts, error=error),
        attempts=1,
        counts=dict(counts),
        error=error[:4000],
        finished_at=now,
    )
    if started_at is not None:
        # auto_now_add ignores a value given to create(): set the start afterwards.
        SyncRun.objects.filter(pk=run.pk).update(started_at=started_at)
        run.started_at = started_at
    if run.pk % PRUNE_EVERY == 0:
        _prune(now=now)
    return run


def record_inbox_run(*, company: Company, run: Any, started_at: datetime.datetime) -> None:
    """One row for the notifications a ``maestrano_sync.inbox.process_inbox`` call applied, deferred
    (left pending for a later try) or could not apply."""
    record_run(
        company=company,
        kind=SyncRun.Kind.NOTIFICATIONS,
        counts={
            "notifications": run.processed,
            **run.result.as_dict(),
            "notifications_failed": run.failed,
            "notifications_deferred": run.deferred,
        },
        started_at=started_at,
    )


def recent_runs(*, company: Company, limit: int = 10) -> list[SyncRun]:
    """The company's latest runs of every kind, newest first (two queries: runs, and the
    entities of the imports among them)."""
    return list(
        SyncRun.objects.filter(company=company)
        .order_by("-started_at", "-pk")
        .prefetch_related("entities")[:limit]
    )


def run_counts(run: SyncRun) -> dict[str, int]:
    """What a run did: its ``counts``, or for an import the sum of its entities' counts."""
    if run.kind != SyncRun.Kind.IMPORT:
        return dict(run.counts or {})
    totals = {"created": 0, "updated": 0, "skipped": 0, "deleted": 0, "failed": 0}
    for entity in run.entities.all():
        for key in totals:
            totals[key] += getattr(entity, key)
    return {key: value for key, value in totals.items() if value}


#: The order counts are told in (PostgreSQL's ``jsonb`` keeps no key order); others follow.
COUNT_ORDER = (
    "notifications",
    "sent",
    "done",
    "created",
    "updated",
    "deleted",
    "skipped",
    "ignored",
    "conflicts",
    "retried",
    "parked",
    "failed",
    "fetched",
    "requests",
    "notifications_failed",
    "notifications_deferred",
)


def describe_counts(run: SyncRun) -> str:
    """``"12 done, 1 parked"``: a run's counts in words, for the dashboard and the command."""
    counts = run_counts(run)
    rank = {key: index for index, key in enumerate(COUNT_ORDER)}
    keys = sorted(counts, key=lambda key: (rank.get(key, len(rank)), key))
    return ", ".join(f"{counts[key]} {key.replace('_', ' ')}" for key in keys)


def _prune(*, now: datetime.datetime) -> None:
    days = sync_settings().history_days
    if days <= 0:
        return
    SyncRun.objects.filter(
        kind__in=LIVE_KINDS, started_at__lt=now - datetime.timedelta(days=days)
    ).delete()
