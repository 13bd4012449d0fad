"""The DRF layer every platform-facing endpoint shares (maestrano_integration.platform_api):
one error body, one parser, one authentication, per-preset throttling, and none of it
changed by the project's own REST_FRAMEWORK settings. The committed OpenAPI schema
(docs/openapi/app.yaml) is the generated one."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import time_machine
import yaml
from django.core.cache import cache
from django.test import Client

from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry

ROOT = Path(__file__).resolve().parents[2]
NOTIFICATIONS = "/maestrano/connec/notifications"

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


AUTH = basic("app-1", "key-1")


@pytest.fixture(autouse=True)
def _presets(two_presets):
    cache.clear()  # throttle history
    yield two_presets
    cache.clear()


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def assert_error_body(response, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    return body["error"]


# --- one error body for every refusal --------------------------------------------------


def test_a_post_to_the_metadata_endpoint_is_a_json_405_not_a_csrf_page(csrf_client):
    response = csrf_client.post("/maestrano/metadata", HTTP_AUTHORIZATION=AUTH)

    assert "POST" in assert_error_body(response, 405)
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/maestrano/metadata"),
        ("options", "/maestrano/metadata"),
        ("get", "/maestrano/account/groups/cld-1"),
        ("post", "/maestrano/account/groups/cld-1/users/usr-1"),
        ("get", NOTIFICATIONS),
        ("delete", NOTIFICATIONS),
    ],
)
def test_every_other_method_is_a_json_405(csrf_client, method, path):
    response = getattr(csrf_client, method)(path, HTTP_AUTHORIZATION=AUTH)

    assert_error_body(response, 405)


def test_a_body_that_is_not_json_is_a_415_and_stores_nothing(client):
    response = client.post(NOTIFICATIONS, "a=1", content_type="text/plain", HTTP_AUTHORIZATION=AUTH)

    assert_error_body(response, 415)
    assert not InboxEntry.objects.exists()


def test_an_oversized_body_is_a_json_413(client, settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"NOTIFICATION_MAX_BODY_BYTES": 100}}
    body = json.dumps({"organizations": [{"id": "x" * 200, "group_id": "cld-1"}]})

    response = client.post(
        NOTIFICATIONS, body, content_type="application/json", HTTP_AUTHORIZATION=AUTH
    )

    assert "100 bytes" in assert_error_body(response, 413)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": [1], "b": {"c": 1, "c": 2}}', "the key 'c' is repeated"),
        ('{"a": 1}x', "Extra data"),
        ('{"a": "\\u0000"}', "$.a contains a NUL character"),
    ],
)
def test_non_standard_json_is_a_json_400_that_stores_nothing(client, body, why):
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    response = client.post(
        NOTIFICATIONS, body, content_type="application/json", HTTP_AUTHORIZATION=AUTH
    )

    error = assert_error_body(response, 400)
    assert error.startswith("The body is refused: ") and why in error
    assert not InboxEntry.objects.exists()


def test_wrong_credentials_are_a_json_401_with_the_basic_challenge(client):
    response = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=basic("app-1", "nope"))

    assert assert_error_body(response, 401) == "Invalid credentials"
    assert response["WWW-Authenticate"] == 'Basic realm="maestrano"'


def test_the_credentials_of_another_preset_are_refused(client):
    response = client.delete("/maestrano/acme-market/account/groups/cld-1", HTTP_AUTHORIZATION=AUTH)

    assert_error_body(response, 401)


def test_an_unknown_preset_is_a_json_404(client):
    response = client.get("/maestrano/metadata/nowhere", HTTP_AUTHORIZATION=AUTH)

    assert "nowhere" in assert_error_body(response, 404)


def test_the_answer_is_json_whatever_the_client_accepts(client):
    response = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=AUTH, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


# --- throttling ----------------------------------------------------------------------


def test_webhooks_are_throttled_per_preset_at_the_configured_rate(client, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "THROTTLE_RATES": {"maestrano_account_webhooks": "2/minute"},
    }
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    clock = time_machine.travel(1_800_000_000, tick=False)
    clock.start()
    answers = [
        client.delete("/maestrano/account/groups/cld-9", HTTP_AUTHORIZATION=AUTH).status_code
        for _ in range(3)
    ]

    assert answers == [200, 200, 429]
    refused = client.delete("/maestrano/account/groups/cld-1", HTTP_AUTHORIZATION=AUTH)
    assert_error_body(refused, 429)
    assert int(refused["Retry-After"]) > 0
    assert Company.objects.get(group_uid="cld-1").status == Company.objects.model().status
    # Another preset has its own bucket.
    other = client.delete(
        "/maestrano/acme-market/account/groups/cld-9",
        HTTP_AUTHORIZATION=basic("acme-app", "acme-key"),
    )
    clock.stop()
    assert other.status_code == 200


def test_drf_settings_give_a_rate_when_ours_do_not(client, settings):
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"maestrano_notifications": "1/hour"}}
    post = {
        "data": "{}",
        "content_type": "application/json",
        "HTTP_AUTHORIZATION": AUTH,
    }

    assert client.post(NOTIFICATIONS, **post).status_code == 202
    assert client.post(NOTIFICATIONS, **post).status_code == 429


def notify(client, group: str, *, url: str = NOTIFICATIONS, auth: str = AUTH):
    body = json.dumps({"people": [{"id": f"p-{group}", "group_id": group}]})
    return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=auth)


def test_notifications_over_the_rate_get_a_429_until_their_window_ends(client, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "THROTTLE_RATES": {"maestrano_notifications": "3/minute"},
    }
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        answers = [notify(client, "cld-1").status_code for _ in range(5)]
        refused = notify(client, "cld-1")
        assert_error_body(refused, 429)
        retry_after = int(refused["Retry-After"])

        assert answers == [202, 202, 202, 429, 429]
        assert 1 <= retry_after <= 60
        assert InboxEntry.objects.count() == 3  # a refused notification stores nothing
        clock.shift(retry_after - 1)
        assert notify(client, "cld-1").status_code == 429
        clock.shift(1)  # the next window: counted from zero
        assert [notify(client, "cld-1").status_code for _ in range(4)] == [202, 202, 202, 429]
    assert InboxEntry.objects.count() == 6


def test_each_preset_and_scope_is_counted_on_its_own(client, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "THROTTLE_RATES": {
            "maestrano_notifications": "1/hour",
            "maestrano_account_webhooks": "1/hour",
        },
    }
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    Company.objects.create(preset="acme-market", group_uid="cld-1", name="One at Acme")
    acme = basic("acme-app", "acme-key")
    acme_url = "/maestrano/acme-market/connec/notifications"
    with time_machine.travel(1_800_000_000, tick=False):
        assert notify(client, "cld-1").status_code == 202
        assert notify(client, "cld-1").status_code == 429
        # Another preset's notifications, and this preset's account webhooks, are not refused.
        assert notify(client, "cld-1", url=acme_url, auth=acme).status_code == 202
        account = client.delete("/maestrano/account/groups/cld-9", HTTP_AUTHORIZATION=AUTH)
        assert account.status_code == 200
        assert notify(client, "cld-1", url=acme_url, auth=acme).status_code == 429


def test_a_rate_of_none_turns_the_throttle_off(client, settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "THROTTLE_RATES": {"maestrano_notifications": None}}
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")

    assert {notify(client, "cld-1").status_code for _ in range(5)} == {202}


# --- the project's DRF settings change nothing of ours -----------------------------------


def test_the_projects_rest_framework_settings_do_not_change_the_platform_views(client, settings):
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.FormParser"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
        "EXCEPTION_HANDLER": "tests.maestrano_integration.test_platform_api.no_handler",
        "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"anon": "1/hour"},
        "COMPACT_JSON": False,
    }

    for _ in range(2):
        assert client.get("/maestrano/metadata", HTTP_AUTHORIZATION=AUTH).status_code == 200
    refused = client.post(NOTIFICATIONS, "{x", content_type="application/json")
    assert assert_error_body(refused, 401) == "Invalid credentials"
    bad = client.post(NOTIFICATIONS, "{x", content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    assert "not valid JSON" in assert_error_body(bad, 400)


def no_handler(exc, context):
    raise AssertionError("the project's exception handler must not be used")


# --- the OpenAPI schema --------------------------------------------------------------


def test_the_committed_schema_is_the_generated_one(settings):
    from maestrano_integration.schema import app_schema, render_yaml

    settings.MAESTRANO = {}  # the default preset at its default paths
    committed = (ROOT / "docs" / "openapi" / "app.yaml").read_text()

    assert render_yaml(app_schema()) == committed, (
        "docs/openapi/app.yaml is out of date: run `make openapi` and commit the file"
    )


def test_the_schema_is_served_at_the_presets_paths(client, settings):
    response = client.get("/maestrano/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert set(schema["paths"]) == {
        "/maestrano/metadata",
        "/maestrano/account/groups/{group_id}",
        "/maestrano/account/groups/{group_id}/users/{user_id}",
        NOTIFICATIONS,
    }
    assert schema["components"]["securitySchemes"]["appCredentials"]["scheme"] == "basic"
    yaml_answer = client.get("/maestrano/schema/")
    assert yaml.safe_load(yaml_answer.content)["paths"].keys() == schema["paths"].keys()
