"""Shared fixtures: configured presets."""

from __future__ import annotations

import pytest

from tests.helpers.certificates import make_key_pair


def preset_values(
    *, api_id: str, api_key: str, app_host: str = "http://testserver", **overrides
) -> dict:
    values = {
        "environment": "test",
        "app": {"host": app_host},
        "api": {"id": api_id, "key": api_key, "host": "http://platform.test", "base": "/api/v1/"},
        "sso": {"x509_certificate": make_key_pair().certificate_pem},
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


@pytest.fixture
def two_presets(settings):
    """A default preset and a second marketplace with different values."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1"),
            "acme-market": preset_values(
                api_id="acme-app",
                api_key="acme-key",
                app_host="https://acme.example",
                environment="production",
                sso={"creation_mode": "virtual", "slo_enabled": False},
                webhook={"connec": {"subscriptions": {"people": True}}},
            ),
        },
    }
    return settings.MAESTRANO
