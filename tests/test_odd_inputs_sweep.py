"""Odd input the other bad-input tests do not send, each once answered with a 500 (most on
PostgreSQL only): numbers no column or JSON value compares with, a session cookie holding
NUL, a failed admin login of an over-long username or a header holding NUL, uids and
emails longer than their columns. Each now gets a 4xx with its reason, or is simply
unknown; nothing is stored from it."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote

import pytest
from axes.models import AccessAttempt
from django.test import Client

from maestrano_sandbox.models import Bill, Group, PlatformUser, RegisteredApp

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def debug_off(settings):
    settings.DEBUG = False


# --- Connec! API (sandbox): numbers in $filter --------------------------------------------


@pytest.mark.parametrize(
    ("number", "reason"),
    [("1" * 5000, "has too many digits"), ("1" * 400 + ".5", "is out of range")],
)
def test_a_filter_number_python_or_json_cannot_hold_is_a_400(hub, number, reason):
    response = hub.client.get(
        "/sandbox/connec/api/v2/cld-1/people?$filter=" + quote(f"code eq {number}"),
        headers=hub.headers(),
    )

    assert response.status_code == 400
    assert reason in response.json()["errors"][0]["detail"]


# --- Account API (sandbox): the units filter ------------------------------------------------


@pytest.fixture
def account_auth(hub_group):
    app = RegisteredApp.objects.get(api_id="app-a")
    Bill.objects.create(
        app=app, group=hub_group, price_cents=100, description="d", currency="AUD", units="1.50"
    )
    return "Basic " + base64.b64encode(f"{app.api_id}:{app.api_key}".encode()).decode()


@pytest.mark.parametrize("value", ["1e999999999999", "1e-20000", "123456789", "0.001"])
def test_a_units_filter_no_bill_can_hold_is_a_400(client, account_auth, value):
    response = client.get(
        f"/sandbox/api/v1/account/bills?units_lower_than={value}", HTTP_AUTHORIZATION=account_auth
    )

    assert response.status_code == 400
    assert "at most 8 digits before the point and 2 after it" in str(response.json())


@pytest.mark.parametrize(("value", "found"), [("1.5", 1), ("1.50", 1), ("0E-999999999", 0)])
def test_a_units_filter_a_bill_can_hold_filters(client, account_auth, value, found):
    response = client.get(
        f"/sandbox/api/v1/account/bills?units={value}", HTTP_AUTHORIZATION=account_auth
    )

    assert response.status_code == 200
    assert len(response.json()["data"]) == found


# --- session cookie --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/dashboard/", "/sandbox/", "/admin/login/"])
def test_a_session_cookie_holding_nul_names_no_session(two_presets, path):
    response = Client().get(path, HTTP_COOKIE="sessionid=abcdefgh\x00ijklmnop")

    assert response.status_code in (200, 302)


# --- admin login (django-axes records the failure) -------------------------------------------


@pytest.mark.parametrize(
    ("username", "user_agent"),
    [("a" * 1000, "browser"), ("admin", "browser\x00"), ("a" * 300, "x\x00" * 200)],
)
def test_a_failed_admin_login_of_odd_input_is_the_forms_error(username, user_agent):
    response = Client().post(
        "/admin/login/",
        {"username": username, "password": "wrong"},
        HTTP_USER_AGENT=user_agent,
        HTTP_ACCEPT="text/html\x00",
    )

    assert response.status_code == 200
    assert b"Please enter the correct username and password" in response.content
    attempt = AccessAttempt.objects.get()
    assert attempt.username == username[:255]
    assert attempt.user_agent == user_agent.replace("\x00", "\\x00")[:255]
    assert attempt.http_accept == "text/html\\x00"


# --- admin pages: Django's own 500s on odd query strings (config/admin.py) ---------------------


@pytest.fixture
def staff_client():
    from django.contrib.auth import get_user_model

    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("staff", password="pw"))
    return browser


@pytest.mark.parametrize("page", ["change", "delete"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_empty_to_field_on_an_admin_page_is_a_400(staff_client, page, method):
    from crm.models import Organization
    from maestrano_accounts.models import Company

    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="Acme")
    organization = Organization.objects.create(company=company, name="Kept")
    path = f"/admin/crm/organization/{organization.pk}/{page}/?_to_field="

    form = {"name": "Changed", "post": "yes"} if method == "post" else None

    response = getattr(staff_client, method)(path, form)

    assert response.status_code == 400
    assert b"An empty _to_field names no field." in response.content
    assert Organization.objects.get(pk=organization.pk).name == "Kept"


@pytest.mark.parametrize("changelist", ["crm/person", "auth/group", "axes/accessattempt"])
def test_an_admin_search_longer_than_any_name_is_a_400(staff_client, changelist):
    response = staff_client.get(f"/admin/{changelist}/", {"q": "a" * 60_000})

    assert response.status_code == 400
    assert b"A search is at most 1000 characters." in response.content
    assert staff_client.get(f"/admin/{changelist}/", {"q": "a" * 1000}).status_code == 200


@pytest.mark.parametrize("query", ["entity=%00", "q=a%00", "e=1&entity=b%00"])
def test_an_admin_filter_or_search_holding_nul_is_a_400(staff_client, query):
    response = staff_client.get(f"/admin/maestrano_sync/idmap/?{query}")

    assert response.status_code == 400
    assert b"The query parameter" in response.content


# --- sandbox forms: uids and emails longer than their columns --------------------------------

LONG_EMAIL = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com"


def _authn_request() -> str:
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_req1" Version="2.0" '
        'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>app-test</saml:Issuer>'
        "</samlp:AuthnRequest>"
    )
    return base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_uid", "usr-" + "1" * 1000),
        ("group_uid", "cld-" + "1" * 1000),
        ("user_email", LONG_EMAIL),
        ("group_email", LONG_EMAIL),
    ],
)
def test_the_idp_login_form_refuses_values_longer_than_their_columns(client, field, value):
    RegisteredApp.objects.create(api_id="app-test", api_key="key", app_host="http://testserver")
    form = {"SAMLRequest": _authn_request(), "role": "Admin", "create_missing": "on"}

    response = client.post("/sandbox/idp/login", {**form, field: value})

    assert response.status_code == 400
    assert b"Ensure this value has at most" in response.content
    assert not PlatformUser.objects.exists()
    assert not Group.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"), [("user_uid", "usr-" + "1" * 1000), ("email", LONG_EMAIL)]
)
def test_the_add_member_form_refuses_values_longer_than_their_columns(
    client, hub_group, field, value
):
    response = client.post("/sandbox/groups/cld-1/members", {"role": "Member", field: value})

    assert response.status_code == 400
    assert b"Ensure this value has at most" in response.content
    assert not PlatformUser.objects.exists()


# --- the Swagger UI page of the sandbox's schema (the app's, served with DEBUG on, is the same
# view: maestrano_integration.platform_api.SchemaUIView) ----------------------------------------


@pytest.mark.parametrize(("method", "status"), [("OPTIONS", 405), ("POST", 405), ("GET", 200)])
def test_a_schema_ui_page_answers_other_methods_than_get_with_a_405(client, method, status):
    response = client.generic(method, "/sandbox/api/schema/ui/")

    assert response.status_code == status
