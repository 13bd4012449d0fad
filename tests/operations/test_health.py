"""Health endpoints: liveness, and readiness failing with a reason, then recovering."""

from __future__ import annotations

import pytest

from maestrano_integration import health

CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _fresh_platform_cache():
    health._platform_cache.clear()
    yield
    health._platform_cache.clear()


def set_health(settings, **values):
    settings.MAESTRANO = {**settings.MAESTRANO, "HEALTH": values}


def test_liveness_answers_without_touching_dependencies(client, settings):
    set_health(settings, CHECK_PLATFORM=True, DATABASES=["default"])
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_fails_with_a_reason_while_the_platform_is_down_then_recovers(
    platform, client, settings
):
    set_health(settings, PLATFORM_CACHE_SECONDS=0)
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"] == {
        "database:default": "ok",
        "database:sandbox": "ok",
        "platform": "ok",
    }

    # The platform goes away (the preset points at a closed port).
    up = platform.preset_values()
    platform.configure(maestrano=platform.preset_values(api={**up["api"], "host": CLOSED_PORT}))
    set_health(settings, PLATFORM_CACHE_SECONDS=0)
    down = client.get("/health/ready")
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "fail"
    assert body["checks"]["database:default"] == "ok"
    assert body["reason"].startswith("platform: Account API unreachable")
    assert platform.api_key not in down.content.decode()

    platform.configure(maestrano=up)
    set_health(settings, PLATFORM_CACHE_SECONDS=0)
    assert client.get("/health/ready").status_code == 200


def test_the_platform_check_is_cached_for_a_while(platform, client, settings):
    set_health(settings, PLATFORM_CACHE_SECONDS=30)
    assert client.get("/health/ready").status_code == 200

    # The platform now refuses our credentials: probes within the cache time do not see it...
    platform.app.api_key = "rotated-on-the-platform"
    platform.app.save()
    assert client.get("/health/ready").status_code == 200

    # ...the next check after it does.
    set_health(settings, PLATFORM_CACHE_SECONDS=0)
    refused = client.get("/health/ready")
    assert refused.status_code == 503
    assert "refused the credentials (HTTP 401)" in refused.json()["reason"]


@pytest.mark.django_db(databases="__all__")
def test_readiness_checks_the_broker_when_one_is_configured(client, settings):
    set_health(
        settings, CHECK_PLATFORM=False, BROKER_URL="redis://127.0.0.1:9/0", BROKER_TIMEOUT=0.5
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] != "ok"
    assert response.json()["reason"].startswith("broker: ")


@pytest.mark.django_db(databases="__all__")
def test_readiness_without_platform_check_and_broker_is_the_databases(client, settings):
    set_health(settings, CHECK_PLATFORM=False)
    settings.CELERY_BROKER_URL = None
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database:default", "database:sandbox"}


@pytest.mark.django_db(databases="__all__")
def test_a_reachable_broker_is_ready(client, settings):
    set_health(settings, CHECK_PLATFORM=False, BROKER_URL="redis://127.0.0.1:6379/15")
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


@pytest.mark.django_db(databases="__all__")
def test_an_unreachable_database_is_named_without_the_drivers_message(
    client, settings, monkeypatch, caplog
):
    from django.db import OperationalError, connections

    message = 'connection to server at "10.0.0.7", port 5432 failed: database "crm_prod"'

    def refuse(*args, **kwargs):
        raise OperationalError(message)

    set_health(settings, CHECK_PLATFORM=False, DATABASES=["default"])
    settings.CELERY_BROKER_URL = None
    monkeypatch.setattr(connections["default"], "cursor", refuse)

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database:default": "OperationalError"}
    assert "10.0.0.7" not in response.content.decode()
    assert "crm_prod" not in response.content.decode()
    assert any("10.0.0.7" in record.getMessage() for record in caplog.records)
