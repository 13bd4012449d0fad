"""Registering apps with the platform: by hand, or by fetching the app's metadata
(docs/protocol.md, 'Metadata endpoint').

The real platform loaded an app's paths and subscriptions from its metadata
endpoint (``GET {app_host}/maestrano/metadata``, basic auth api id:key);
"refresh metadata" does the same here.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings

from maestrano_integration import strict_input
from maestrano_integration.http import build_retry, build_session

from .keys import SIGNATURE_ALGORITHMS
from .models import RegisteredApp

logger = logging.getLogger(__name__)


class MetadataError(Exception):
    """The app's metadata could not be fetched or read; the message says why."""


def api_id_problem(api_id: str) -> str | None:
    """Why ``api_id`` cannot name an app, or ``None``: the app's pages are at
    ``/sandbox/apps/<api id>``, so it is one URL segment (no ``/``, not ``.`` or ``..``)."""
    if "/" in api_id or api_id in (".", ".."):
        return "An api id is one segment of a URL: no '/', and not '.' or '..'."
    return None


_METADATA_PATH_LENGTH = RegisteredApp._meta.get_field("metadata_path").max_length or 255


def _is_host_path(path: str) -> bool:
    """A path of the app host: ``/...`` but not ``//...`` (another host), no spaces or
    control characters, within the column."""
    return (
        path.startswith("/")
        and not path.startswith("//")
        and len(path) <= _METADATA_PATH_LENGTH
        and path.isprintable()
        and not any(character.isspace() for character in path)
    )


def register_app(
    *,
    api_id: str,
    api_key: str | None = None,
    app_host: str | None = None,
    name: str | None = None,
    signature_algorithm: str | None = None,
    metadata_path: str | None = None,
) -> tuple[RegisteredApp, bool]:
    """Create or update the registration of ``api_id``; ``None`` keeps a field as it is.

    ``metadata_path``: where the app serves its metadata, for a preset other than its
    default one (``/maestrano/<preset>/metadata``); a path of the app host."""
    if metadata_path is not None and not _is_host_path(metadata_path):
        raise ValueError(
            "The metadata path is a path of the app host: it starts with one '/', "
            f"at most {_METADATA_PATH_LENGTH} characters (e.g. /maestrano/other/metadata)."
        )
    if signature_algorithm is not None and signature_algorithm not in SIGNATURE_ALGORITHMS:
        raise ValueError(f"signature_algorithm must be one of {', '.join(SIGNATURE_ALGORITHMS)}")
    problem = api_id_problem(api_id)
    if problem:
        raise ValueError(problem)
    app = RegisteredApp.objects.filter(api_id=api_id).first()
    created = app is None
    if app is None:
        if not api_key or not app_host:
            raise ValueError("A new app needs an api key and an app host.")
        app = RegisteredApp(api_id=api_id)
    values = {
        "api_key": api_key,
        "app_host": app_host.rstrip("/") if app_host else None,
        "name": name,
        "signature_algorithm": signature_algorithm,
        "metadata_path": metadata_path,
    }
    for field, value in values.items():
        if value is not None:
            setattr(app, field, value)
    app.save()
    logger.info("App registered", extra={"app": api_id, "new_registration": created})
    return app, created


def fetch_metadata(app: RegisteredApp) -> dict[str, Any]:
    """GET the app's metadata document with its credentials."""
    timeout = float(settings.MAESTRANO_SANDBOX.get("METADATA_TIMEOUT_SECONDS", 10))
    url = app.url(app.metadata_path)
    with build_session(auth=(app.api_id, app.api_key), retry=build_retry(total=1)) as http:
        try:
            response = http.get(url, timeout=timeout)
        except requests.RequestException as error:
            raise MetadataError(f"Could not reach {url}: {type(error).__name__}") from error
    if response.status_code == 401:
        raise MetadataError(f"{url} refused the app's credentials (401): check the api id and key.")
    if response.status_code != 200:
        raise MetadataError(f"{url} answered HTTP {response.status_code}.")
    try:
        document = strict_input.loads(response.content)
    except strict_input.InputRefused as error:
        raise MetadataError(f"{url} did not answer usable JSON: {error}.") from None
    if not isinstance(document, dict):
        raise MetadataError(f"{url} did not answer a JSON object.")
    return document


def apply_metadata(app: RegisteredApp, document: dict[str, Any]) -> RegisteredApp:
    """Take paths and subscriptions from a metadata document (missing keys keep values)."""
    sso = document.get("sso") or {}
    account = (document.get("webhook") or {}).get("account") or {}
    connec = (document.get("webhook") or {}).get("connec") or {}
    updates = {
        "init_path": sso.get("init_path"),
        "consume_path": sso.get("consume_path"),
        "groups_path": account.get("groups_path"),
        "group_users_path": account.get("group_users_path"),
        "notifications_path": connec.get("notifications_path"),
    }
    for field, value in updates.items():
        if isinstance(value, str) and value.startswith("/"):
            setattr(app, field, value)
    subscriptions = connec.get("subscriptions")
    if isinstance(subscriptions, dict):
        app.subscriptions = {str(k): bool(v) for k, v in subscriptions.items()}
    app.metadata = document
    app.save()
    logger.info("App metadata refreshed", extra={"app": app.api_id})
    return app


def refresh_metadata(app: RegisteredApp) -> RegisteredApp:
    return apply_metadata(app, fetch_metadata(app))
