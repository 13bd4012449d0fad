"""Prometheus metrics of the integration (docs/operations.md lists them all).

Two kinds:

* **Events** counted where they happen (SSO logins and refusals, platform-facing
  requests, calls to the platform). They are ``prometheus_client`` counters and
  histograms; with ``PROMETHEUS_MULTIPROC_DIR`` set, every gunicorn and Celery
  worker writes them to that directory and ``/metrics`` adds them up.
* **State** read from the database at scrape time (outbox and inbox depth, parked
  records, import runs, sync lag, pending bills) by :class:`DatabaseCollector`,
  from the sources the apps register (:func:`register_state_source`): this module
  imports no other app, so ``maestrano_sync`` and
  ``maestrano_accounts`` report their own tables.

Labels stay bounded: preset, entity, endpoint, api, status, reason — never a
company, group or user id.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

SSO_LOGINS = Counter(
    "maestrano_sso_logins_total",
    "Users logged in through Maestrano SSO.",
    ["preset"],
)
SSO_REFUSALS = Counter(
    "maestrano_sso_refusals_total",
    "SSO logins refused, by reason (invalid_signature, replayed_assertion, ...).",
    ["preset", "reason"],
)
PLATFORM_REQUESTS = Counter(
    "maestrano_platform_requests_total",
    "Requests to the platform-facing views (SSO, account webhooks, notifications, metadata).",
    ["preset", "endpoint", "status"],
)
PLATFORM_REQUEST_SECONDS = Histogram(
    "maestrano_platform_request_duration_seconds",
    "Time to answer a platform-facing request.",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PLATFORM_API_CALLS = Counter(
    "maestrano_platform_api_calls_total",
    "HTTP calls made to the platform's APIs, by API and status ('error' when no answer).",
    ["api", "status"],
)
PLATFORM_API_SECONDS = Histogram(
    "maestrano_platform_api_call_duration_seconds",
    "Duration of one HTTP call to a platform API (one attempt, retries counted apart).",
    ["api"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_sso_login(*, preset: str) -> None:
    SSO_LOGINS.labels(preset=preset).inc()


def record_sso_refusal(*, preset: str, reason: str) -> None:
    SSO_REFUSALS.labels(preset=preset or "unknown", reason=reason or "unknown").inc()


def record_platform_request(
    *, preset: str, endpoint: str, status: int, duration_seconds: float
) -> None:
    PLATFORM_REQUESTS.labels(preset=preset, endpoint=endpoint, status=str(status)).inc()
    PLATFORM_REQUEST_SECONDS.labels(endpoint=endpoint).observe(duration_seconds)


def record_platform_api_call(*, api: str, status: int | None, duration_seconds: float) -> None:
    PLATFORM_API_CALLS.labels(api=api, status=str(status) if status else "error").inc()
    PLATFORM_API_SECONDS.labels(api=api).observe(duration_seconds)


# --- state read at scrape time --------------------------------------------------


@dataclass(frozen=True)
class GaugeSpec:
    name: str
    documentation: str
    labels: tuple[str, ...]


#: Every gauge the state sources may fill; a source returns samples by name.
STATE_GAUGES: dict[str, GaugeSpec] = {
    spec.name: spec
    for spec in (
        GaugeSpec(
            "maestrano_outbox_entries",
            "Local changes in the outbox, by status (pending, parked).",
            ("preset", "entity", "status"),
        ),
        GaugeSpec(
            "maestrano_outbox_oldest_age_seconds",
            "Age of the oldest pending outbox entry: the push lag.",
            ("preset", "entity"),
        ),
        GaugeSpec(
            "maestrano_inbox_entries",
            "Received notifications not yet applied, by status (pending, processing, failed).",
            ("preset", "status"),
        ),
        GaugeSpec(
            "maestrano_inbox_oldest_age_seconds",
            "Age of the oldest notification waiting to be applied.",
            ("preset",),
        ),
        GaugeSpec(
            "maestrano_parked_records",
            "Records that need attention: parked outbox rows and failed notifications.",
            ("preset", "entity", "direction"),
        ),
        GaugeSpec(
            "maestrano_import_runs_in_progress",
            "Initial imports running.",
            ("preset",),
        ),
        GaugeSpec(
            "maestrano_import_records",
            "Records of the running imports: processed so far and expected (as Connec! reported).",
            ("preset", "entity", "kind"),
        ),
        GaugeSpec(
            "maestrano_sync_lag_seconds",
            "Age of the oldest local change not yet in Connec! (0 when none is pending).",
            ("preset", "entity"),
        ),
        GaugeSpec(
            "maestrano_sync_last_notification_age_seconds",
            "Time since the last Connec! notification was applied, by entity.",
            ("preset", "entity"),
        ),
        GaugeSpec(
            "maestrano_billing_pending",
            "Subscriptions and charges not yet accepted by the platform.",
            ("preset", "kind"),
        ),
    )
}

#: ``{gauge name: [(label values, value), ...]}``
Samples = dict[str, list[tuple[tuple[str, ...], float]]]
StateSource = Callable[[], Samples]


@dataclass
class _Sources:
    sources: dict[str, StateSource] = field(default_factory=dict)


_state = _Sources()


def register_state_source(name: str, source: StateSource) -> None:
    """Add ``source`` (a few aggregate queries) to what ``/metrics`` reads (idempotent)."""
    _state.sources[name] = source


class DatabaseCollector(Collector):
    """Gauges computed at scrape time from the registered state sources.

    A source that fails (database down) is skipped and counted in
    ``maestrano_metrics_source_errors``; the other gauges are still served.
    """

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, spec.documentation, labels=list(spec.labels))
            for name, spec in STATE_GAUGES.items()
        }
        errors = GaugeMetricFamily(
            "maestrano_metrics_source_errors",
            "1 when a state source failed during this scrape.",
            labels=["source"],
        )
        for source_name, source in sorted(_state.sources.items()):
            try:
                samples = source()
            except Exception:
                logger.exception("Metrics source %s failed", source_name)
                errors.add_metric([source_name], 1)
                continue
            errors.add_metric([source_name], 0)
            for name, rows in samples.items():
                family = families[name]
                for labels, value in rows:
                    family.add_metric(list(labels), float(value))
        yield from families.values()
        yield errors

    def describe(self) -> Iterable[Metric]:
        return []


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text of ``/metrics``: event metrics (all workers' in multiprocess mode) + state."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        events = CollectorRegistry()
        multiprocess.MultiProcessCollector(events, path=directory)
    else:
        events = REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(DatabaseCollector())
    return generate_latest(events) + generate_latest(state)


def age_seconds(moment: Any, *, now: float | None = None) -> float:
    """Seconds since an aware datetime (0 for ``None``)."""
    if moment is None:
        return 0.0
    return max(0.0, (now if now is not None else time.time()) - moment.timestamp())
