"""Presets loaded from the developer platform instead of written in settings.

The developer platform answers ``GET {HOST}{PATH}`` (HTTP basic auth with the
environment's key and secret; the sandbox accepts an app's api id and key) with
the app's marketplaces::

    {"marketplaces": [{"marketplace": "maestrano", "environment": "test",
                       "app": {...}, "api": {"id", "key", "host", "base"},
                       "sso": {...}, "connec": {...}, "webhooks": {...}}]}

Each marketplace becomes a preset (``webhooks`` is the preset's ``webhook``).
Every successful fetch is written to ``CACHE_FILE``; when the platform cannot be
reached (or answers an error) the last copy is used and the system checks say so
(``maestrano.W030``), naming the file, and the platform is tried again after
``RETRY_SECONDS``. Nothing here runs at import time: the presets are loaded on
first use (the system checks at start-up, or the first request), so
``settings.py`` only sets ``MAESTRANO["DEV_PLATFORM"]``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .http import answer_reason, sent_credentials

logger = logging.getLogger(__name__)

#: Keys of a marketplace entry that map to a preset key of another name.
_RENAMED = {"webhooks": "webhook"}
_SKIPPED = {"marketplace"}


@dataclass(frozen=True)
class LoadReport:
    """How the presets of the last load were obtained (read by the system checks)."""

    host: str
    source: str  # "platform", "cache" or "none"
    error: str = ""
    cache_file: str = ""
    names: tuple[str, ...] = ()


#: The report of the last load, ``None`` when no developer platform is configured.
last_report: LoadReport | None = None


class DevPlatformError(Exception):
    pass


def presets_from_marketplaces(document: Any) -> dict[str, dict[str, Any]]:
    """``{"marketplaces": [...]}`` → ``{name: preset dict}`` (raises on a malformed document)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("marketplaces"), list):
        raise DevPlatformError("the answer has no 'marketplaces' list")
    presets: dict[str, dict[str, Any]] = {}
    for entry in document["marketplaces"]:
        name = entry.get("marketplace") if isinstance(entry, Mapping) else None
        if not isinstance(name, str):
            raise DevPlatformError("a marketplace entry has no 'marketplace' name")
        presets[name] = {
            _RENAMED.get(key, key): value for key, value in entry.items() if key not in _SKIPPED
        }
    return presets


def fetch_marketplaces(
    *, host: str, path: str, key: str, secret: str, timeout: float
) -> dict[str, dict[str, Any]]:
    """The presets the developer platform holds for this environment."""
    url = host.rstrip("/") + "/" + path.lstrip("/")
    try:
        response = requests.get(
            url, auth=(key, secret), timeout=timeout, headers={"Accept": "application/json"}
        )
    except requests.RequestException as error:
        raise DevPlatformError(f"{url} could not be reached ({type(error).__name__})") from error
    if response.status_code != 200:
        # The platform's reason (never the credentials, were they echoed back).
        reason = answer_reason(
            response, hide=(key, *sent_credentials(username=key, password=secret))
        )
        raise DevPlatformError(
            f"{url} answered HTTP {response.status_code}" + (f": {reason}" if reason else "")
        )
    try:
        document = response.json()
    except ValueError as error:
        raise DevPlatformError(f"{url} did not answer JSON") from error
    return presets_from_marketplaces(document)


def _write_cache(path: Path, presets: dict[str, dict[str, Any]]) -> None:
    """Atomically, readable by the owner only (the file holds api keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".devplatform-")
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"presets": presets}, handle)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _read_cache(path: Path) -> dict[str, dict[str, Any]] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    presets = document.get("presets") if isinstance(document, dict) else None
    return presets if isinstance(presets, dict) else None


def read_cached_presets(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The last copy on disk (``{}`` when none): what to serve while a load is under way."""
    cache_file = str(options.get("CACHE_FILE") or "")
    if not options.get("HOST") or not cache_file:
        return {}
    return _read_cache(Path(cache_file).expanduser()) or {}


def load_configured_presets(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Presets from the developer platform, or its cached copy; ``{}`` when not configured."""
    global last_report
    host = str(options.get("HOST") or "")
    if not host:
        last_report = None
        return {}
    cache_file = str(options.get("CACHE_FILE") or "")
    cache = Path(cache_file).expanduser() if cache_file else None
    try:
        presets = fetch_marketplaces(
            host=host,
            path=str(options.get("PATH") or "/"),
            key=str(options.get("KEY") or ""),
            secret=str(options.get("SECRET") or ""),
            timeout=float(options.get("TIMEOUT") or 5.0),
        )
    except DevPlatformError as error:
        cached = _read_cache(cache) if cache else None
        source = "cache" if cached is not None else "none"
        last_report = LoadReport(
            host=host,
            source=source,
            error=str(error),
            cache_file=cache_file,
            names=tuple(cached or ()),
        )
        logger.warning(
            "Presets could not be loaded from the developer platform: %s; using %s",
            error,
            f"the cached copy {cache_file}" if cached is not None else "no preset",
        )
        return cached or {}
    if cache is not None:
        try:
            _write_cache(cache, presets)
        except OSError as error:
            logger.warning("Could not write the presets cache %s: %s", cache_file, error)
    last_report = LoadReport(
        host=host, source="platform", cache_file=cache_file, names=tuple(presets)
    )
    return presets
