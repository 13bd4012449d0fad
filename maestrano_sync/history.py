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

Read back (:func:`recent_history`), consecutive retries of the same thing (a record that
Connec! keeps failing: one retrying drain per attempt) are one entry, so they never
crowd out the other runs; counts are told in words (:func:`describe_counts`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import ngettext_lazy

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
    "held",
    "conflicts",
    "retried",
    "parked",
    "failed",
    "fetched",
    "requests",
    "notifications_failed",
    "notifications_deferred",
)


#: How each count is told (singular and plural, chosen by ``count``), for people.
COUNT_WORDS: dict[str, Any] = {
    "notifications": ngettext_lazy("%(count)d notification", "%(count)d notifications", "count"),
    "sent": ngettext_lazy("%(count)d record sent", "%(count)d records sent", "count"),
    "done": ngettext_lazy(
        "%(count)d accepted by Connec!", "%(count)d accepted by Connec!", "count"
    ),
    "created": ngettext_lazy("%(count)d created", "%(count)d created", "count"),
    "updated": ngettext_lazy("%(count)d updated", "%(count)d updated", "count"),
    "deleted": ngettext_lazy("%(count)d deleted", "%(count)d deleted", "count"),
    "skipped": ngettext_lazy("%(count)d skipped", "%(count)d skipped", "count"),
    "ignored": ngettext_lazy("%(count)d ignored", "%(count)d ignored", "count"),
    "held": ngettext_lazy(
        "%(count)d held while their import is off",
        "%(count)d held while their import is off",
        "count",
    ),
    "conflicts": ngettext_lazy("%(count)d conflict", "%(count)d conflicts", "count"),
    "retried": ngettext_lazy("%(count)d to try again", "%(count)d to try again", "count"),
    "parked": ngettext_lazy(
        "%(count)d refused or given up", "%(count)d refused or given up", "count"
    ),
    "failed": ngettext_lazy("%(count)d not applied", "%(count)d not applied", "count"),
    "fetched": ngettext_lazy(
        "%(count)d fetched from Connec!", "%(count)d fetched from Connec!", "count"
    ),
    "requests": ngettext_lazy("in %(count)d request", "in %(count)d requests", "count"),
    "notifications_failed": ngettext_lazy(
        "%(count)d notification not applied",
        "%(count)d notifications not applied",
        "count",
    ),
    "notifications_deferred": ngettext_lazy(
        "%(count)d notification left for a later try",
        "%(count)d notifications left for a later try",
        "count",
    ),
}


def describe_counts(run: SyncRun) -> str:
    """``"12 records sent, 11 accepted by Connec!, 1 refused or given up, in 1 request"``:
    a run's counts in words (singular and plural by ``ngettext_lazy``), for the dashboard and
    the command."""
    counts = run_counts(run)
    rank = {key: index for index, key in enumerate(COUNT_ORDER)}
    keys = sorted(counts, key=lambda key: (rank.get(key, len(rank)), key))
    return ", ".join(_count_in_words(key, counts[key]) for key in keys)


def _count_in_words(key: str, count: int) -> str:
    words = COUNT_WORDS.get(key)
    if words is None:
        return f"{count} {key.replace('_', ' ')}"
    return str(words % {"count": count})


#: How many runs :func:`recent_history` reads per entry it returns (retries repeat).
READ_AHEAD = 10


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the history: a run, or consecutive retries of the same thing."""

    #: The newest run of the entry.
    run: SyncRun
    #: How many consecutive runs it stands for (1: the run alone).
    repeats: int
    #: When the oldest of them started.
    first_started_at: datetime.datetime


def is_repeat(newer: SyncRun, older: SyncRun) -> bool:
    """Whether ``older`` is the same retry as ``newer``, one attempt earlier: the same kind,
    both left records for a later try (``retrying``), with the same counts and error."""
    return (
        newer.kind == older.kind
        and newer.status == older.status == SyncRun.Status.RETRYING
        and newer.counts == older.counts
        and newer.error == older.error
    )


def recent_history(*, company: Company, limit: int = 10) -> list[HistoryEntry]:
    """The company's latest ``limit`` history entries, newest first (two queries, as
    :func:`recent_runs`): consecutive repeats of one retry (:func:`is_repeat`) are one
    entry. Up to :data:`READ_AHEAD` runs are read per entry: an older part of a very long
    series of retries is left out of its count."""
    entries: list[HistoryEntry] = []
    for run in recent_runs(company=company, limit=limit * READ_AHEAD):
        last = entries[-1] if entries else None
        if last is not None and is_repeat(last.run, run):
            entries[-1] = HistoryEntry(
                run=last.run, repeats=last.repeats + 1, first_started_at=run.started_at
            )
            continue
        if len(entries) == limit:
            break
        entries.append(HistoryEntry(run=run, repeats=1, first_started_at=run.started_at))
    return entries


def _prune(*, now: datetime.datetime) -> None:
    days = sync_settings().history_days
    if days <= 0:
        return
    SyncRun.objects.filter(
        kind__in=LIVE_KINDS, started_at__lt=now - datetime.timedelta(days=days)
    ).delete()
