"""Request ids, JSON logs without secrets, and who may read /metrics."""

from __future__ import annotations

import io
import json
import logging

import pytest

from maestrano_integration.logs import json_formatter

from .conftest import SCRAPER, basic_auth


@pytest.fixture
def json_lines():
    """Everything logged during the test, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_request_id_is_propagated_or_made(client):
    given = client.get("/health/live", HTTP_X_REQUEST_ID="lb-1234.abc")
    assert given["X-Request-ID"] == "lb-1234.abc"
    made = client.get("/health/live")
    assert len(made["X-Request-ID"]) == 32
    hostile = client.get("/health/live", HTTP_X_REQUEST_ID="<script>" + "x" * 300)
    assert hostile["X-Request-ID"] != "<script>" + "x" * 300
    assert len(hostile["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_json_logs_carry_the_request_id_and_context_but_never_credentials(
    client, two_presets, json_lines
):
    response = client.post(
        "/maestrano/connec/notifications",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth("app-1", "a-wrong-secret"),
        HTTP_X_REQUEST_ID="req-42",
    )
    assert response.status_code == 401
    [line] = [entry for entry in json_lines() if entry["event"].startswith("Refused platform")]
    assert line["request_id"] == "req-42"
    assert line["preset"] == "maestrano"
    assert line["level"] == "warning" and line["logger"] == "maestrano_integration.auth"
    assert "a-wrong-secret" not in json.dumps(json_lines())


def test_only_allowed_extra_keys_are_written(json_lines):
    logging.getLogger("tests.ops").warning(
        "Something about a record",
        extra={
            "preset": "maestrano",
            "group": "cld-1",
            "entity": "people",
            "connec_id": "c-1",
            "saml_response": "PHNhbWxwOlJlc3BvbnNl...",
            "api_key": "secret",
        },
    )
    [line] = json_lines()
    assert {"preset", "group", "entity", "connec_id", "time"} <= set(line)
    assert "saml_response" not in line and "api_key" not in line


@pytest.mark.django_db
def test_metrics_are_refused_to_strangers_when_not_in_debug(client, settings):
    settings.DEBUG = False
    settings.MAESTRANO = {"METRICS": {}}
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_with_basic_auth(client, settings):
    settings.MAESTRANO = {"METRICS": {"BASIC_AUTH": SCRAPER}}
    refused = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(SCRAPER[0], "wrong"))
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Basic")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(*SCRAPER))
    assert allowed.status_code == 200
    assert b"maestrano_sso_logins_total" in allowed.content


@pytest.mark.django_db
def test_metrics_from_allowed_addresses_and_loopback_in_debug(client, settings):
    settings.MAESTRANO = {"METRICS": {"ALLOWED_ADDRESSES": ["10.1.0.0/16"]}}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    settings.DEBUG = True
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    settings.MAESTRANO = {"METRICS": {"ALLOW_LOOPBACK_IN_DEBUG": False}}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
