"""A request Django refuses before any view runs (here a forged ``Host``, not in
``ALLOWED_HOSTS``) answers ``{"detail": ...}`` in JSON on the APIs' paths and Django's 400
page elsewhere: ``maestrano_integration.views.bad_request``, the ``handler400`` of the
example project's URLconfs (``config/urls``)."""

from __future__ import annotations

import base64
import json

import pytest

from accounts.models import Company
from sync.models import InboxEntry

FORGED = {"HTTP_HOST": "evil.example"}
REFUSED = {"detail": "The Host header names no host this site serves."}


@pytest.fixture(autouse=True)
def debug_off(settings):
    settings.DEBUG = False  # with DEBUG on, Django shows its technical page instead


def assert_json_refusal(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == REFUSED


def assert_django_page(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"<h1>Bad Request (400)</h1>" in response.content


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # The platform's endpoints (the Maestrano API paths the presets announce).
        ("post", "/maestrano/connec/notifications"),
        ("delete", "/maestrano/account/groups/cld-1"),
        ("get", "/maestrano/metadata"),
        ("get", "/maestrano/schema/"),
        # The sandbox's Connec! API and Account API.
        ("get", "/sandbox/connec/api/v2/cld-1/organizations"),
        ("post", "/sandbox/connec/batch"),
        ("get", "/sandbox/api/v1/account/groups"),
        ("get", "/sandbox/api/schema/"),
    ],
)
def test_an_api_path_answers_json(client, method, path):
    assert_json_refusal(getattr(client, method)(path, **FORGED))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/maestrano/auth/saml/init",  # an SSO page, under the platform's prefix
        "/sandbox/",
        "/sandbox/api/schema/ui/",  # a DRF view that renders HTML
        "/no/such/page",
    ],
)
def test_a_page_answers_djangos_400_page(client, path):
    assert_django_page(client.get(path, **FORGED))


@pytest.mark.django_db
def test_a_refused_notification_stores_nothing(client):
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    body = {"organizations": [{"id": "7fef3180-6bf8", "group_id": "cld-1", "name": "Org"}]}
    credentials = base64.b64encode(b"app-1:key-1").decode()

    response = client.post(
        "/maestrano/connec/notifications",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
        **FORGED,
    )

    assert_json_refusal(response)
    assert not InboxEntry.objects.exists()


@pytest.mark.urls("config.urls.sandbox")
def test_the_sandbox_only_server_answers_json_on_its_apis(client):
    assert_json_refusal(client.get("/sandbox/connec/api/v2/cld-1/organizations", **FORGED))
    assert_django_page(client.get("/sandbox/", **FORGED))
