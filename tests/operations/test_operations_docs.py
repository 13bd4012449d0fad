"""docs/operations.md and the Grafana dashboard name only metrics that exist, and all of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from maestrano_integration import metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATIONS = (DOCS / "operations.md").read_text()
DASHBOARD = json.loads((DOCS / "grafana-dashboard.json").read_text())

EVENT_METRICS = {
    "maestrano_sso_logins_total": metrics.SSO_LOGINS,
    "maestrano_sso_refusals_total": metrics.SSO_REFUSALS,
    "maestrano_platform_requests_total": metrics.PLATFORM_REQUESTS,
    "maestrano_platform_request_duration_seconds": metrics.PLATFORM_REQUEST_SECONDS,
    "maestrano_platform_api_calls_total": metrics.PLATFORM_API_CALLS,
    "maestrano_platform_api_call_duration_seconds": metrics.PLATFORM_API_SECONDS,
}
ALL_METRICS = {*EVENT_METRICS, *metrics.STATE_GAUGES, "maestrano_metrics_source_errors"}


def base_name(name: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", name)


def test_every_metric_is_documented():
    for name in ALL_METRICS:
        assert f"| `{name}` |" in OPERATIONS, name


def test_the_dashboard_uses_only_existing_metrics_and_shows_the_alerting_ones():
    expressions = [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]
    used = {base_name(n) for e in expressions for n in re.findall(r"maestrano_[a-z_]+", e)}
    assert used <= ALL_METRICS, used - ALL_METRICS
    assert {
        "maestrano_sync_lag_seconds",
        "maestrano_parked_records",
        "maestrano_sso_refusals_total",
    } <= used


def test_documented_alerts_use_only_existing_metrics():
    used = {base_name(n) for n in re.findall(r"maestrano_[a-z_]+", OPERATIONS)}
    # Names of packages and URL namespaces, not of metrics.
    packages = {"maestrano_integration", "maestrano_accounts", "maestrano_sync"}
    packages.add("maestrano_account_webhooks")
    assert used <= ALL_METRICS | packages, used - ALL_METRICS
