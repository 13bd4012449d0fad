"""A sandbox whose IdP key pair was never made (its set-up command not run) says so.

Every endpoint that needs the pair answers 503 naming the command that makes it, never
a 500, and writes nothing on the way: the developer platform's marketplaces (JSON), the
SSO page, its login form and the app launch (the IdP's HTML error page).
"""

from __future__ import annotations

import base64
import zlib
from io import StringIO

import pytest
from django.core.management import call_command

from maestrano_sandbox import directory
from maestrano_sandbox.keys import ensure_idp_key_pair
from maestrano_sandbox.models import Group, PlatformSession, PlatformUser, RegisteredApp

from .connec_support import basic_auth

pytestmark = pytest.mark.django_db(databases="__all__")

MARKETPLACES = "/sandbox/api/config/v1/marketplaces"
SET_UP_COMMAND = "manage.py demo_setup"


@pytest.fixture
def not_set_up(settings, tmp_path):
    """The sandbox's data folder holds no key pair (a fresh sandbox)."""
    folder = tmp_path / "not-set-up"
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "DATA_DIR": folder}
    return folder


@pytest.fixture
def app():
    return RegisteredApp.objects.create(
        api_id="app-fresh", api_key="key-fresh", app_host="http://testserver"
    )


def pem_files(folder) -> list:
    return list(folder.rglob("*.pem")) if folder.exists() else []


def authn_request(issuer: str) -> str:
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_fresh1" Version="2.0" '
        f'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>{issuer}</saml:Issuer>'
        "</samlp:AuthnRequest>"
    )
    return base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()


def assert_names_the_set_up_command(response) -> None:
    assert response.status_code == 503
    assert SET_UP_COMMAND in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_the_marketplaces_answer_a_json_503_naming_the_set_up_command(client, app, not_set_up):
    response = client.get(MARKETPLACES, HTTP_AUTHORIZATION=basic_auth("app-fresh", "key-fresh"))

    assert_names_the_set_up_command(response)
    assert response["Content-Type"] == "application/json"
    [message] = response.json()["errors"]["setup"]
    assert SET_UP_COMMAND in message
    assert pem_files(not_set_up) == []
    # The command the message names is the cure: the same request now answers the presets.
    call_command("sandbox_export_idp_cert", stdout=StringIO())
    response = client.get(MARKETPLACES, HTTP_AUTHORIZATION=basic_auth("app-fresh", "key-fresh"))
    assert response.status_code == 200
    [marketplace] = response.json()["marketplaces"]
    assert marketplace["sso"]["x509_certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_the_marketplaces_still_refuse_a_stranger_with_401(client, app, not_set_up):
    response = client.get(MARKETPLACES, HTTP_AUTHORIZATION=basic_auth("app-fresh", "wrong"))
    assert response.status_code == 401


def test_an_sha1_app_without_the_historical_pair_is_told_which_one_is_missing(
    client, app, not_set_up
):
    ensure_idp_key_pair(directory=not_set_up)  # only the sha256 pair
    app.signature_algorithm = "sha1"
    app.save()

    response = client.get(MARKETPLACES, HTTP_AUTHORIZATION=basic_auth("app-fresh", "key-fresh"))

    assert_names_the_set_up_command(response)
    assert "--algorithm sha1" in response.json()["errors"]["setup"][0]


def test_the_sso_page_answers_503_before_offering_a_form(client, app, not_set_up):
    response = client.get("/sandbox/api/v1/auth/saml", {"SAMLRequest": authn_request("app-fresh")})

    assert_names_the_set_up_command(response)
    assert 'id="idp-login"' not in response.content.decode()


def test_the_sso_page_still_refuses_a_bad_request_with_400(client, app, not_set_up):
    response = client.get("/sandbox/api/v1/auth/saml", {"SAMLRequest": "not base64!"})
    assert response.status_code == 400


def test_the_login_form_answers_503_and_opens_no_session(client, app, not_set_up):
    form = {
        "SAMLRequest": authn_request("app-fresh"),
        "user_uid": "usr-fresh",
        "group_uid": "cld-fresh",
        "role": "Admin",
        "create_missing": "on",
    }

    response = client.post("/sandbox/idp/login", form)

    assert_names_the_set_up_command(response)
    assert not PlatformSession.objects.exists()
    assert not PlatformUser.objects.filter(uid="usr-fresh").exists()
    assert not Group.objects.filter(uid="cld-fresh").exists()
    assert pem_files(not_set_up) == []


def test_the_launch_answers_503_and_opens_no_session(client, app, not_set_up):
    group = directory.upsert_group(uid="cld-fresh", name="Fresh")
    user = directory.upsert_user(uid="usr-fresh", name="Ada", email="ada@example.com")
    directory.set_membership(group=group, user=user, role="Admin")

    response = client.get(
        "/sandbox/apps/app-fresh/launch", {"user": "usr-fresh", "group": "cld-fresh"}
    )

    assert_names_the_set_up_command(response)
    assert not PlatformSession.objects.exists()
    assert pem_files(not_set_up) == []
