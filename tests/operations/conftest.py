"""Fixtures and helpers of the operations tests: scrape /metrics like Prometheus would."""

from __future__ import annotations

import base64

import pytest
from prometheus_client.parser import text_string_to_metric_families

# The sync tests' sandbox group and company, for the story test.
from tests.sync.conftest import company, fast_sync, sandbox_group  # noqa: F401

SCRAPER = ("prometheus", "scrape-secret")


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def metrics_auth(settings):
    """Scrapes authenticate with basic auth (tests run with DEBUG off, like production)."""

    def configure():
        settings.MAESTRANO = {
            **settings.MAESTRANO,
            "METRICS": {"BASIC_AUTH": SCRAPER},
        }

    configure()
    return configure


class Scrape(dict):
    """``{(name, frozenset(labels)): value}`` of one /metrics answer."""

    def value(self, name: str, **labels: str) -> float:
        return self.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over the series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.items()
            if sample == name and wanted <= sample_labels
        )

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (sample, labels) in self if sample == name]


def scrape(client) -> Scrape:
    response = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(*SCRAPER))
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples = Scrape()
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples
