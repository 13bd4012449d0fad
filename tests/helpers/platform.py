"""The sandbox platform on a live server, and the app's preset wired to it.

Tests of the reusable apps talk to the sandbox only over HTTP, as they would
to the real platform; this module only sets both sides up.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox.keys import IdpKeyPair
from sandbox.models import RegisteredApp

DEFAULT_PRESET = "maestrano"


@dataclass
class Platform:
    """A running app + sandbox (one live server) and the sandbox's registration of the app."""

    url: str  # live server root: the app host
    app: RegisteredApp  # the sandbox's registration of our app (preset "maestrano")
    keys: IdpKeyPair  # the sandbox IdP's signing key pair
    settings: Any = field(repr=False)

    @property
    def sandbox_url(self) -> str:
        return f"{self.url}/sandbox"

    @property
    def connec_url(self) -> str:
        return f"{self.url}/sandbox/connec"

    @property
    def api_id(self) -> str:
        return self.app.api_id

    @property
    def api_key(self) -> str:
        return self.app.api_key

    @property
    def auth(self) -> tuple[str, str]:
        return (self.app.api_id, self.app.api_key)

    def preset_values(self, app: RegisteredApp | None = None, **overrides: Any) -> dict[str, Any]:
        """Preset settings for ``app`` (default: our app) pointing at this sandbox."""
        app = app or self.app
        values: dict[str, Any] = {
            "environment": "test",
            "app": {"host": self.url},
            "api": {
                "id": app.api_id,
                "key": app.api_key,
                "host": self.sandbox_url,
                "base": "/api/v1/",
            },
            "sso": {"x509_certificate": self.keys.certificate_pem},
            "connec": {"host": self.connec_url, "timeout": 10},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                values[key] = {**values.get(key, {}), **value}
            else:
                values[key] = value
        return values

    def register_app(self, *, api_id: str | None = None, **fields: Any) -> RegisteredApp:
        """Register another application with the sandbox (e.g. a second preset's app)."""
        return RegisteredApp.objects.create(
            api_id=api_id or f"app-{secrets.token_hex(3)}",
            api_key=secrets.token_urlsafe(16),
            app_host=fields.pop("app_host", self.url),
            **fields,
        )

    def configure(self, **presets: dict[str, Any]) -> None:
        """Replace the app's presets: ``configure(maestrano=..., other=...)``."""
        self.settings.MAESTRANO = {**self.settings.MAESTRANO, "PRESETS": presets}

    def session(self) -> requests.Session:
        """A fresh HTTP client (a browser without JavaScript), talking to 127.0.0.1 only."""
        return requests.Session()

    def add_member(
        self,
        *,
        group_uid: str,
        user_uid: str,
        role: str = "Member",
        app: RegisteredApp | None = None,
        group_name: str | None = None,
        name: str | None = None,
        surname: str | None = None,
        email: str | None = None,
        **group_fields: Any,
    ) -> Any:
        """Put a platform user in a group that uses ``app`` (default: our app), creating
        both as needed (``group_fields``: currency, free_trial_end_at, has_credit_card...).
        Returns the sandbox ``GroupMembership``."""
        from sandbox import directory

        group = directory.upsert_group(uid=group_uid, name=group_name, **group_fields)
        user = directory.upsert_user(uid=user_uid, name=name, surname=surname, email=email)
        directory.start_using_app(group=group, app=app or self.app)
        return directory.set_membership(group=group, user=user, role=role)
