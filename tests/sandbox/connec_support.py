"""Fixtures and a tiny client for the sandbox Connec! tests (Django test client, basic auth)."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from maestrano_sandbox.models import Group, RegisteredApp

CONNEC = "/sandbox/connec"


def basic_auth(api_id: str, api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{api_id}:{api_key}".encode()).decode()


def register_app(api_id: str, **fields: Any) -> RegisteredApp:
    return RegisteredApp.objects.create(
        api_id=api_id,
        api_key=fields.pop("api_key", secrets.token_urlsafe(12)),
        app_host=fields.pop("app_host", "http://127.0.0.1:9"),
        **fields,
    )


@dataclass
class Hub:
    """Calls the hub as one app: ``hub.get("/cld-1/people", {"$top": 5})``."""

    client: Client
    app: RegisteredApp | None
    external_ids: bool = False

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.api+json"}
        if self.app is not None:
            headers["Authorization"] = basic_auth(self.app.api_id, self.app.api_key)
        if self.external_ids:
            headers["CONNEC-EXTERNAL-IDS"] = "true"
        return {**headers, **(extra or {})}

    def get(self, path: str, params: dict | None = None, **headers: str):
        return self.client.get(
            f"{CONNEC}/api/v2{path}", params or {}, headers=self.headers(headers)
        )

    def post(self, path: str, body: Any, **headers: str):
        return self.client.post(
            f"{CONNEC}/api/v2{path}",
            json.dumps(body) if not isinstance(body, str | bytes) else body,
            content_type="application/vnd.api+json",
            headers=self.headers(headers),
        )

    def put(self, path: str, body: Any, **headers: str):
        return self.client.put(
            f"{CONNEC}/api/v2{path}",
            json.dumps(body),
            content_type="application/json",
            headers=self.headers(headers),
        )

    def batch(self, ops: list[dict], **headers: str):
        return self.client.post(
            f"{CONNEC}/batch",
            json.dumps({"sequential": True, "ops": ops}),
            content_type="application/json",
            headers=self.headers(headers),
        )

    def as_external(self) -> Hub:
        return Hub(client=self.client, app=self.app, external_ids=True)


@pytest.fixture
def hub_app(db):
    """The app whose calls the tests make."""
    return register_app("app-a")


@pytest.fixture
def peer_app(db):
    """Another app of the same group (receives hub_app's changes)."""
    return register_app("app-b")


@pytest.fixture
def hub_group(hub_app, peer_app):
    """``cld-1``, used by both apps."""
    group = Group.objects.create(uid="cld-1", name="Acme")
    group.apps.add(hub_app, peer_app)
    return group


@pytest.fixture
def hub(client, hub_app, hub_group) -> Hub:
    """The hub as seen by ``hub_app``."""
    return Hub(client=client, app=hub_app)
