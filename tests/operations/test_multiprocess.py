"""Several worker processes (gunicorn, Celery), one /metrics: prometheus-client multiprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.processes import run_python

from .conftest import scrape

WORKER = """
import django
django.setup()
from maestrano_integration import metrics
metrics.record_sso_login(preset="multi")
metrics.record_platform_api_call(api="connec", status=200, duration_seconds=0.1)
"""


def run_worker(directory: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    result = run_python(["-c", WORKER], env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(databases="__all__")
def test_metrics_of_every_worker_process_are_added_up(client, metrics_auth, tmp_path, monkeypatch):
    run_worker(tmp_path)
    run_worker(tmp_path)
    assert list(tmp_path.glob("*.db"))

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)

    assert samples.value("maestrano_sso_logins_total", preset="multi") == 2
    assert samples.value("maestrano_platform_api_calls_total", api="connec", status="200") == 2
    # The state gauges are read from the database by the scraped process, once.
    assert samples.value("maestrano_metrics_source_errors", source="sync") == 0
