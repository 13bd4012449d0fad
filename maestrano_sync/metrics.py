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
    for queued in outbox:
        key = (queued["company__preset"], queued["entity"])
        samples["maestrano_outbox_entries"].append(((*key, queued["status"]), queued["count"]))
        if queued["status"] == OutboxEntry.Status.PENDING:
            pending_oldest[key] = age_seconds(queued["oldest"], now=now)
        else:
            samples["maestrano_parked_records"].append(((*key, "push"), queued["count"]))

    lag = dict(pending_oldest)
    notified = (
        SyncState.objects.values("company__preset", "entity")
        .annotate(last=Max("last_notification_at"))
        .order_by()
    )
    for state in notified:
        key = (state["company__preset"], state["entity"])
        lag.setdefault(key, 0.0)
        if state["last"] is not None:
            samples["maestrano_sync_last_notification_age_seconds"].append(
                (key, age_seconds(state["last"], now=now))
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
    for entry in inbox:
        samples["maestrano_inbox_entries"].append(
            ((entry["preset"], entry["status"]), entry["count"])
        )
        if entry["status"] == InboxEntry.Status.FAILED:
            samples["maestrano_parked_records"].append(
                ((entry["preset"], "", "pull"), entry["count"])
            )
        elif entry["status"] != InboxEntry.Status.HELD:
            # Held rows wait for an Admin's setting (an import turned off), not for a worker:
            # counted above, never an inbox that is stuck.
            age = age_seconds(entry["oldest"], now=now)
            oldest_inbox[entry["preset"]] = max(age, oldest_inbox.get(entry["preset"], 0.0))
    samples["maestrano_inbox_oldest_age_seconds"] = [
        ((preset,), age) for preset, age in sorted(oldest_inbox.items())
    ]

    running = SyncRun.objects.filter(kind=SyncRun.Kind.IMPORT, status=SyncRun.Status.RUNNING)
    for run in running.values("company__preset").annotate(count=Count("pk")).order_by():
        samples["maestrano_import_runs_in_progress"].append(
            ((run["company__preset"],), run["count"])
        )
    progress = (
        SyncRunEntity.objects.filter(run__in=running)
        .values("run__company__preset", "entity")
        .annotate(
            processed_records=Sum(
                F("created") + F("updated") + F("skipped") + F("deleted") + F("failed")
            ),
            expected=Sum("total"),
        )
        .order_by()
    )
    for entity_run in progress:
        key = (entity_run["run__company__preset"], entity_run["entity"])
        samples["maestrano_import_records"].append(
            ((*key, "processed"), entity_run["processed_records"] or 0)
        )
        if entity_run["expected"] is not None:
            samples["maestrano_import_records"].append(((*key, "expected"), entity_run["expected"]))
    return samples
