"""Presets loaded from the sandbox's developer platform endpoint, and its cached copy."""

from __future__ import annotations

import base64
import json
import stat
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from django.core import checks

from maestrano_integration.conf import get_preset
from tests.conftest import preset_values
from tests.helpers.loopback import serving
from tests.helpers.sso_flow import login

CLOSED_PORT = "http://127.0.0.1:9"


def dev_platform(platform, *, host: str, cache_file, **extra) -> dict:
    return {
        "DEFAULT_PRESET": "maestrano",
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
        "DEV_PLATFORM": {
            "HOST": host,
            "KEY": platform.api_id,
            "SECRET": platform.api_key,
            "CACHE_FILE": str(cache_file),
            "TIMEOUT": 2.0,
            **extra,
        },
    }


def maestrano_messages() -> list[checks.CheckMessage]:
    return checks.run_checks(tags=["maestrano"])


def test_the_endpoint_needs_an_app_key(platform):
    url = f"{platform.sandbox_url}/api/config/v1/marketplaces"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=(platform.api_id, "wrong"), timeout=10).status_code == 401
    answer = requests.get(url, auth=platform.auth, timeout=10)
    assert answer.status_code == 200
    [marketplace] = answer.json()["marketplaces"]
    assert marketplace["marketplace"] == "maestrano"
    assert marketplace["api"] == {
        "id": platform.api_id,
        "key": platform.api_key,
        "host": platform.sandbox_url,
        "base": "/api/v1/",
    }
    assert marketplace["sso"]["x509_certificate"] == platform.keys.certificate_pem


def test_presets_loaded_from_the_developer_platform_log_in_through_sso(
    platform, settings, tmp_path
):
    cache = tmp_path / "presets.json"
    settings.MAESTRANO = dev_platform(platform, host=platform.sandbox_url, cache_file=cache)

    preset = get_preset()
    assert (preset.api_id, preset.api_host, preset.app_host) == (
        platform.api_id,
        platform.sandbox_url,
        platform.url,
    )
    errors = [m for m in maestrano_messages() if m.level >= checks.WARNING]
    assert errors == []
    # The last copy is kept, readable by its owner only (it holds the api key).
    assert json.loads(cache.read_text())["presets"]["maestrano"]["api"]["id"] == platform.api_id
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    answer = login(platform, platform.session(), user_uid="usr-dev", group_uid="cld-dev")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/dashboard/"


def test_an_app_signed_with_rsa_sha1_gets_a_preset_that_accepts_it(platform, settings, tmp_path):
    # The sandbox signs this app's logins with its historical rsa-sha1 pair: the preset it
    # announces trusts that pair and allows SHA-1 (explicitly: a project may refuse it).
    platform.app.signature_algorithm = "sha1"
    platform.app.save()
    settings.MAESTRANO = dev_platform(
        platform, host=platform.sandbox_url, cache_file=tmp_path / "p"
    )

    assert get_preset().allow_sha1 is True
    assert [m for m in maestrano_messages() if m.level >= checks.WARNING] == []
    answer = login(platform, platform.session(), user_uid="usr-sha1", group_uid="cld-sha1")
    assert answer.status_code == 302


def test_with_the_developer_platform_down_at_start_up_the_cached_presets_are_used(
    platform, settings, tmp_path
):
    cache = tmp_path / "presets.json"
    settings.MAESTRANO = dev_platform(platform, host=platform.sandbox_url, cache_file=cache)
    assert get_preset().api_id == platform.api_id  # fetched once, cached on disk

    # Start-up with the developer platform unreachable.
    settings.MAESTRANO = dev_platform(platform, host=CLOSED_PORT, cache_file=cache)

    assert get_preset().api_id == platform.api_id
    [warning] = [m for m in maestrano_messages() if m.id == "maestrano.W030"]
    assert str(cache) in warning.msg and CLOSED_PORT in warning.msg
    assert [m for m in maestrano_messages() if m.level >= checks.ERROR] == []

    answer = login(platform, platform.session(), user_uid="usr-cached", group_uid="cld-cached")
    assert answer.status_code == 302


def test_local_preset_values_override_the_loaded_ones(platform, settings, tmp_path):
    values = dev_platform(platform, host=platform.sandbox_url, cache_file=tmp_path / "p.json")
    values["PRESETS"] = {"maestrano": {"app": {"host": "https://app.example"}}}
    settings.MAESTRANO = values
    preset = get_preset()
    assert (preset.app_host, preset.api_id) == ("https://app.example", platform.api_id)


def test_no_platform_and_no_cache_is_an_error_naming_the_cache(platform, settings, tmp_path):
    cache = tmp_path / "never-written.json"
    settings.MAESTRANO = dev_platform(platform, host=CLOSED_PORT, cache_file=cache)
    [error] = [m for m in maestrano_messages() if m.id == "maestrano.E030"]
    assert str(cache) in error.msg


def test_wrong_credentials_are_reported(platform, settings, tmp_path):
    values = dev_platform(platform, host=platform.sandbox_url, cache_file=tmp_path / "c.json")
    values["DEV_PLATFORM"]["SECRET"] = "wrong"
    settings.MAESTRANO = values
    [error] = [m for m in maestrano_messages() if m.id == "maestrano.E030"]
    assert "HTTP 401: authentication: Invalid API token" in error.msg  # the sandbox's reason


def test_after_a_failed_load_the_platform_is_tried_again(platform, settings, tmp_path):
    cache = tmp_path / "presets.json"
    values = dev_platform(platform, host=platform.sandbox_url, cache_file=cache, RETRY_SECONDS=0.0)
    settings.MAESTRANO = values
    assert get_preset().api_id == platform.api_id
    key = platform.app.api_key

    # The developer platform refuses our key for a while (being rotated there)...
    platform.app.api_key = "rotating"
    platform.app.save()
    settings.MAESTRANO = {**values}  # a restart: presets loaded again
    assert get_preset().api_key == key  # the cached copy
    assert [m.id for m in maestrano_messages() if m.id == "maestrano.W030"] == ["maestrano.W030"]

    # ...then accepts it again: the next use loads from it, without a settings change.
    platform.app.api_key = key
    platform.app.save()
    assert get_preset().api_key == key
    assert [m for m in maestrano_messages() if m.id == "maestrano.W030"] == []


# --- the platform's reason for an error answer ---------------------------------------------

KEY, SECRET = "dev-key-1", "dev-key-1-s3cret"


def refusing(status: int, body: bytes, content_type: str) -> type[BaseHTTPRequestHandler]:
    """A developer platform answering every GET with ``status`` and ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


def refused_by(settings, tmp_path, status: int, body: bytes, content_type: str, *, cached: bool):
    """The maestrano checks' W030 (with a cached copy) or E030 (without) for that answer."""
    cache = tmp_path / "presets.json"
    if cached:
        presets = {"maestrano": preset_values(api_id="app-cached", api_key="key-cached")}
        cache.write_text(json.dumps({"presets": presets}))
    with serving(refusing(status, body, content_type)) as url:
        settings.MAESTRANO = {
            "DEV_PLATFORM": {"HOST": url, "KEY": KEY, "SECRET": SECRET, "CACHE_FILE": str(cache)}
        }
        [message] = [
            m for m in maestrano_messages() if m.id in {"maestrano.W030", "maestrano.E030"}
        ]
    assert message.id == ("maestrano.W030" if cached else "maestrano.E030")
    return message


JSON = "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (
            {"error": "Down for maintenance until 14:00 UTC"},
            JSON,
            "Down for maintenance until 14:00 UTC",
        ),
        (
            {"message": "Marketplace database is read-only"},
            JSON,
            "Marketplace database is read-only",
        ),
        ({"detail": "Service unavailable"}, JSON, "Service unavailable"),
        ({"error": {"code": 17, "message": "Upgrading"}}, JSON, "Upgrading"),
        ({"errors": {"setup": ["No IdP key pair yet"]}}, JSON, "setup: No IdP key pair yet"),
        ("maintenance window\n", "text/plain", "maintenance window"),
    ],
)
@pytest.mark.parametrize("cached", [True, False], ids=["W030", "E030"])
def test_the_platforms_reason_for_an_error_is_in_the_check(
    settings, tmp_path, body, content_type, said, cached
):
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    message = refused_by(settings, tmp_path, 503, raw, content_type, cached=cached)

    assert f"/api/config/v1/marketplaces answered HTTP 503: {said}" in message.msg


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", "text/html"),
        (b"", "text/plain"),
        (json.dumps({"status": 503}).encode(), JSON),
        (b"x" * (65 * 1024), "text/plain"),
    ],
    ids=["html", "empty", "no-reason", "huge"],
)
def test_an_answer_without_a_reason_says_only_the_status(settings, tmp_path, body, content_type):
    message = refused_by(settings, tmp_path, 503, body, content_type, cached=True)

    assert "answered HTTP 503);" in message.msg


def test_the_reason_is_one_bounded_line_without_control_characters_nor_credentials(
    settings, tmp_path
):
    token = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    reason = (
        f"Refused\r\nkey {KEY}\tsecret {SECRET} (Authorization: Basic {token})"
        "\x1b[31m\u202eretlif\x00 " + "y" * 300
    )

    message = refused_by(
        settings, tmp_path, 401, json.dumps({"error": reason}).encode(), JSON, cached=False
    )

    said = message.msg.split("answered HTTP 401: ")[1].split(") and there is no cached copy")[0]
    assert said.startswith("Refused key *** secret *** (Authorization: Basic ***) [31m retlif y")
    assert len(said) == 200 and said.endswith("y…")
    assert all(c.isprintable() for c in message.msg)
    for credential in (KEY, SECRET, token, "s3cret"):
        assert credential not in f"{message.msg} {message.hint}"
