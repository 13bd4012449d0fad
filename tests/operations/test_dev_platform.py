"""Presets loaded from the sandbox's developer platform endpoint, and its cached copy."""

from __future__ import annotations

import json
import stat

import requests
from django.core import checks

from maestrano_integration.conf import get_preset
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
    assert "HTTP 401" in error.msg


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
