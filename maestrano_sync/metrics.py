"""The sync's state for ``/metrics``: outbox, inbox, parked records, imports, lag.

A handful of aggregate queries run at each scrape (see
:mod:`maestrano_integration.metrics`); labels are preset and entity only.
"""

from __future__ import annotations

import time

from django.db.models import Count, F, Max, Min, Sum

from maestrano_integration.metrics import Samples, age_seconds

from .models import InboxEntry, OutboxEntry, SyncRun, SyncRunEntity, SyncState


def sync_state() -> Samples:
    now = time.time()
    samples: Samples = {
        name: []
        for name in (
            "maestrano_outbox_entries",
            "maestrano_outbox_oldest_age_seconds",
            "maestrano_sync_lag_seconds",
            "maestrano_inbox_entries",
            "maestrano_inbox_oldest_age_seconds",
            "maestrano_parked_records",
            "maestrano_import_runs_in_progress",
            "maestrano_import_records",
            "maestrano_sync_last_notification_age_seconds",
        )
    }
    pending_oldest: dict[tuple[str, str], float] = {}
    outbox = (
        OutboxEntry.objects.exclude(status=OutboxEntry.Status.DONE)
        .values("company__preset", "entity", "status")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
        .order_by()
    )
    for row in outbox:
        key = (row["company__preset"], row["entity"])
        samples["maestrano_outbox_entries"].append(((*key, row["status"]), row["count"]))
        if row["status"] == OutboxEntry.Status.PENDING:
            pending_oldest[key] = age_seconds(row["oldest"], now=now)
        else:
            samples["maestrano_parked_records"].append(((*key, "push"), row["count"]))

    lag = dict(pending_oldest)
    notified = (
        SyncState.objects.values("company__preset", "entity")
        .annotate(last=Max("last_notification_at"))
        .order_by()
    )
    for row in notified:
        key = (row["company__preset"], row["entity"])
        lag.setdefault(key, 0.0)
        if row["last"] is not None:
            samples["maestrano_sync_last_notification_age_seconds"].append(
                (key, age_seconds(row["last"], now=now))
            )
    # Lag is 0 for every synced entity with nothing pending, so alerts see a series.
    samples["maestrano_sync_lag_seconds"] = sorted(lag.items())
    samples["maestrano_outbox_oldest_age_seconds"] = sorted(pending_oldest.items())

    inbox = (
        InboxEntry.objects.exclude(status=InboxEntry.Status.DONE)
        .values("preset", "status")
        .annotate(count=Count("pk"), oldest=Min("received_at"))
        .order_by()
    )
    oldest_inbox: dict[str, float] = {}
    for row in inbox:
        samples["maestrano_inbox_entries"].append(((row["preset"], row["status"]), row["count"]))
        if row["status"] == InboxEntry.Status.FAILED:
            samples["maestrano_parked_records"].append(((row["preset"], "", "pull"), row["count"]))
        elif row["status"] != InboxEntry.Status.HELD:
            # Held rows wait for an Admin's setting (an import turned off), not for a worker:
            # counted above, never an inbox that is stuck.
            age = age_seconds(row["oldest"], now=now)
            oldest_inbox[row["preset"]] = max(age, oldest_inbox.get(row["preset"], 0.0))
    samples["maestrano_inbox_oldest_age_seconds"] = [
        ((preset,), age) for preset, age in sorted(oldest_inbox.items())
    ]

    running = SyncRun.objects.filter(kind=SyncRun.Kind.IMPORT, status=SyncRun.Status.RUNNING)
    for row in running.values("company__preset").annotate(count=Count("pk")).order_by():
        samples["maestrano_import_runs_in_progress"].append(
            ((row["company__preset"],), row["count"])
        )
    progress = (
        SyncRunEntity.objects.filter(run__in=running)
        .values("run__company__preset", "entity")
        .annotate(
            processed=Sum(F("created") + F("updated") + F("skipped") + F("deleted") + F("failed")),
            expected=Sum("total"),
        )
        .order_by()
    )
    for row in progress:
        key = (row["run__company__preset"], row["entity"])
        samples["maestrano_import_records"].append(((*key, "processed"), row["processed"] or 0))
        if row["expected"] is not None:
            samples["maestrano_import_records"].append(((*key, "expected"), row["expected"]))
    return samples
