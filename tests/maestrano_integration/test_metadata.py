"""The metadata endpoint (docs/protocol.md, 'Metadata endpoint') through the Django test client."""

from __future__ import annotations

import base64

import pytest

from tests.helpers.certificates import make_key_pair


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


DEFAULT_AUTH = basic("app-1", "key-1")
ACME_AUTH = basic("acme-app", "acme-key")


@pytest.fixture(autouse=True)
def _presets(two_presets):
    return two_presets


@pytest.mark.parametrize("path", ["/maestrano/metadata", "/maestrano/metadata.json"])
def test_default_preset_metadata_has_every_key_with_its_default(client, path):
    response = client.get(path, HTTP_AUTHORIZATION=DEFAULT_AUTH)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"environment", "app", "api", "sso", "webhook"}
    assert body["environment"] == "test"
    assert body["app"] == {"host": "http://testserver"}
    assert set(body["api"]) == {"id", "version", "lang", "lang_version", "host", "base"}
    assert body["api"]["id"] == "app-1"
    assert body["api"]["lang"] == "python"
    assert body["api"]["host"] == "http://127.0.0.1:9"
    assert body["api"]["base"] == "/api/v1/"
    assert body["sso"] == {
        "enabled": True,
        "slo_enabled": True,
        "init_path": "/maestrano/auth/saml/init",
        "consume_path": "/maestrano/auth/saml/consume",
        "creation_mode": "real",
        "idm": "http://testserver",
        "idp": "http://127.0.0.1:9",
        "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "x509_fingerprint": body["sso"]["x509_fingerprint"],
        "x509_certificate": make_key_pair().certificate_pem.strip(),
    }
    assert len(body["sso"]["x509_fingerprint"].split(":")) == 20
    assert body["webhook"] == {
        "account": {
            "groups_path": "/maestrano/account/groups/:id",
            "group_users_path": "/maestrano/account/groups/:group_id/users/:id",
        },
        "connec": {
            "notifications_path": "/maestrano/connec/notifications",
            "subscriptions": {
                "organizations": True,
                "people": True,
                "items": True,
                "invoices": True,
                "company": False,
            },
        },
    }


def test_second_preset_serves_its_own_values(client):
    response = client.get("/maestrano/metadata/acme-market", HTTP_AUTHORIZATION=ACME_AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["environment"] == "production"
    assert body["app"]["host"] == "https://acme.example"
    assert body["api"]["id"] == "acme-app"
    assert body["sso"]["creation_mode"] == "virtual"
    assert body["sso"]["slo_enabled"] is False
    assert body["sso"]["idm"] == "https://acme.example"
    assert body["sso"]["init_path"] == "/maestrano/acme-market/auth/saml/init"
    assert body["sso"]["consume_path"] == "/maestrano/acme-market/auth/saml/consume"
    assert body["webhook"]["account"]["groups_path"] == "/maestrano/acme-market/account/groups/:id"
    assert body["webhook"]["connec"]["notifications_path"] == (
        "/maestrano/acme-market/connec/notifications"
    )
    assert body["webhook"]["connec"]["subscriptions"] == {"people": True}


def test_default_preset_is_also_reachable_by_name(client):
    response = client.get("/maestrano/metadata/maestrano", HTTP_AUTHORIZATION=DEFAULT_AUTH)
    assert response.status_code == 200
    assert response.json()["api"]["id"] == "app-1"


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/maestrano/metadata", DEFAULT_AUTH),
        ("/maestrano/metadata.json", DEFAULT_AUTH),
        ("/maestrano/metadata/maestrano", DEFAULT_AUTH),
        ("/maestrano/metadata/acme-market", ACME_AUTH),
    ],
)
def test_api_key_is_never_in_the_metadata(client, path, auth):
    response = client.get(path, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    assert "key" not in response.json()["api"]
    assert b"key-1" not in response.content
    assert b"acme-key" not in response.content


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/maestrano/metadata", None),
        ("/maestrano/metadata", basic("app-1", "wrong")),
        ("/maestrano/metadata", basic("wrong", "key-1")),
        ("/maestrano/metadata", ACME_AUTH),  # another preset's credentials
        ("/maestrano/metadata/acme-market", DEFAULT_AUTH),
        ("/maestrano/metadata/acme-market", None),
    ],
)
def test_missing_wrong_or_foreign_credentials_get_401_json(client, path, auth):
    extra = {"HTTP_AUTHORIZATION": auth} if auth else {}
    response = client.get(path, **extra)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer " + base64.b64encode(b"app-1:key-1").decode(),
        "Basic " + "A" * 100_000,
        "Basic " + base64.b64encode(b"app-1:key-1" + b"x" * 10_000).decode(),
        "basic\t" + base64.b64encode(b":").decode(),
    ],
)
def test_malformed_authorization_headers_get_401_not_500(client, header):
    response = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}


def test_unknown_preset_is_404(client):
    response = client.get("/maestrano/metadata/nope", HTTP_AUTHORIZATION=DEFAULT_AUTH)
    assert response.status_code == 404


def test_only_get_is_allowed(client):
    response = client.post("/maestrano/metadata", HTTP_AUTHORIZATION=DEFAULT_AUTH)
    assert response.status_code == 405
