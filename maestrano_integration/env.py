"""Build a preset from environment variables (twelve-factor deploys).

Imported from ``settings.py``, so it must not import Django models or settings.
Every key of a preset maps to ``MAESTRANO_`` + its dotted path in capitals with
dots as underscores: ``api.id`` -> ``MAESTRANO_API_ID``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# (dotted key, type) for every preset key that can come from the environment.
ENVIRONMENT_KEYS: tuple[tuple[str, type], ...] = (
    ("environment", str),
    ("app.host", str),
    ("api.id", str),
    ("api.key", str),
    ("api.host", str),
    ("api.base", str),
    ("sso.enabled", bool),
    ("sso.slo_enabled", bool),
    ("sso.idm", str),
    ("sso.idp", str),
    ("sso.init_path", str),
    ("sso.consume_path", str),
    ("sso.creation_mode", str),
    ("sso.name_id_format", str),
    ("sso.x509_certificate", str),
    ("sso.x509_fingerprint", str),
    ("webhook.account.groups_path", str),
    ("webhook.account.group_users_path", str),
    ("webhook.connec.notifications_path", str),
    ("webhook.connec.subscriptions", dict),
    ("connec.host", str),
    ("connec.base_path", str),
    ("connec.timeout", float),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def environment_variable_name(dotted_key: str, *, prefix: str = "MAESTRANO_") -> str:
    """``sso.x509_certificate`` -> ``MAESTRANO_SSO_X509_CERTIFICATE``."""
    return prefix + dotted_key.replace(".", "_").upper()


def _parse(raw: str, kind: type, name: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name} must be true or false, not {raw!r}")
    if kind is float:
        try:
            return float(raw)
        except ValueError as error:
            raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from error
    if kind is dict:
        # Either JSON ({"people": true}) or a comma-separated list of subscribed entities.
        text = raw.strip()
        if text.startswith("{"):
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object or a comma-separated list")
            return {str(key): bool(flag) for key, flag in value.items()}
        return {entity.strip(): True for entity in text.split(",") if entity.strip()}
    return raw


def read_certificate(value: str) -> str:
    """Accept PEM text or the path of a PEM file; return the PEM text."""
    if "-----BEGIN" in value or not value.strip():
        return value
    path = Path(value).expanduser()
    if path.is_file():
        return path.read_text()
    return value


def preset_from_environment(
    *, prefix: str = "MAESTRANO_", environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return a nested preset dict holding only the keys set in the environment.

    Unset keys are left out so that the defaults of
    :mod:`maestrano_integration.conf` apply.
    """
    source = os.environ if environ is None else environ
    preset: dict[str, Any] = {}
    for dotted_key, kind in ENVIRONMENT_KEYS:
        name = environment_variable_name(dotted_key, prefix=prefix)
        if name not in source:
            continue
        value = _parse(source[name], kind, name)
        if dotted_key == "sso.x509_certificate":
            value = read_certificate(value)
        node = preset
        *parents, leaf = dotted_key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return preset
