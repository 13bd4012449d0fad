"""A request's text: a Content-Type charset no text can be read in is a 400 with its reason
(it was a 500 from every server: Django fails building the request), and a form whose
bytes are not UTF-8 is refused by the endpoints that keep what they receive (Django would
hand them U+FFFD in place of the bytes). Nothing is stored from either."""

from __future__ import annotations

import base64
import http.client
import json
import logging
from urllib.parse import urlencode, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core import checks
from django.test import AsyncClient, Client

from maestrano_accounts.models import Company, SsoLoginTicket, UsedAssertion
from maestrano_sandbox.models import Bill, RegisteredApp
from tests.helpers.saml import obtain_saml_response

pytestmark = pytest.mark.django_db(databases="__all__")

MIDDLEWARE = "maestrano_integration.request_text.UnusableCharsetMiddleware"

CONSUME = "/maestrano/auth/saml/consume"
#: (method, path): the SSO form, the account webhooks, the Connec! notifications, the
#: metadata endpoint, the sandbox's Account and Connec! APIs, a sandbox page, the admin.
ENDPOINTS = [
    ("POST", CONSUME),
    ("DELETE", "/maestrano/account/groups/cld-1"),
    ("DELETE", "/maestrano/account/groups/cld-1/users/usr-1"),
    ("POST", "/maestrano/connec/notifications"),
    ("GET", "/maestrano/metadata"),
    ("POST", "/sandbox/api/v1/account/bills"),
    ("POST", "/sandbox/connec/api/v2/cld-1/people"),
    ("POST", "/sandbox/apps/register"),
    ("POST", "/admin/login/"),
]
#: Those that answer JSON (the others: an HTML page).
JSON_ENDPOINTS = [path for _, path in ENDPOINTS[1:-2]]
#: (Content-Type, what the refusal says). NUL and the RFC 2231 parameter made Django's
#: request raise ValueError (a 500 from every server), rot13 a LookupError where the form
#: or query string was read (a 500), an unknown name was silently ignored.
UNUSABLE = [
    ("application/x-www-form-urlencoded; charset=\x00", "charset '\\x00' names no character"),
    ("application/json; charset=utf-8\x00", "charset 'utf-8\\x00' names no character encoding"),
    ("application/json; charset*=bogus''x", "parameters cannot be read: Invalid encoding 'bogus'"),
    ("application/x-www-form-urlencoded; charset=rot13", "charset 'rot13' is not a text encoding"),
    ("application/json; charset=no-such-charset", "'no-such-charset' names no character encoding"),
]


@pytest.fixture(autouse=True)
def _setup(two_presets, settings):
    settings.DEBUG = False


def _body(content_type: str) -> bytes:
    return b"SAMLResponse=abc" if "form" in content_type else b"{}"


@pytest.mark.parametrize(("content_type", "reason"), UNUSABLE)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_unusable_charset_is_a_400_with_its_reason(method, path, content_type, reason):
    # generic(): post() would itself encode the data in the charset.
    response = Client(raise_request_exception=False).generic(
        method, path, _body(content_type), content_type=content_type
    )

    assert response.status_code == 400
    if path in JSON_ENDPOINTS:
        assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    ("charset", "reason"),
    [
        ("base64", "'base64' is not a text encoding"),
        ("idna", "'idna' is an encoding that fails on bytes it cannot read"),
        ("undefined", "'undefined' is an encoding that fails on bytes it cannot read"),
    ],
)
def test_a_get_whose_charset_cannot_read_its_query_string_is_a_400(client, charset, reason):
    """Django read the query string in that charset and failed (a 500)."""
    response = Client(raise_request_exception=False).get(
        "/maestrano/metadata?xn--=%FF",
        CONTENT_TYPE=f"text/plain; charset={charset}",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400
    assert reason in response.json()["detail"]


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "latin-1", "utf-16"])
def test_a_usable_charset_is_not_refused_here(client, charset):
    response = client.generic(
        "POST",
        "/maestrano/connec/notifications",
        b"{}",
        content_type=f"application/json; charset={charset}",
    )

    assert response.status_code == 401  # the credentials are checked: nothing refused before


def test_a_refused_charset_is_logged_once_with_its_reason_and_no_traceback(client, caplog):
    caplog.set_level(logging.WARNING)
    response = client.generic(
        "POST",
        "/maestrano/connec/notifications",
        b"{}",
        content_type="application/json; charset=rot13",
    )

    assert response.status_code == 400
    refusals = [record for record in caplog.records if record.name == "django.request"]
    assert len(refusals) == 1
    assert "'rot13' is not a text encoding" in refusals[0].getMessage()
    assert refusals[0].exc_info is None


def test_over_asgi_the_same_400(two_presets):
    async def post():
        return await AsyncClient(raise_request_exception=False).generic(
            "POST",
            "/maestrano/connec/notifications",
            b"{}",
            content_type="application/json; charset=\x00",
        )

    response = async_to_sync(post)()

    assert response.status_code == 400
    assert "names no character encoding" in json.loads(response.content)["detail"]


def _raw_post(url: str, path: str, *, content_type: str, body: bytes) -> tuple[int, bytes]:
    """POST with the header as given (NUL included), as any HTTP client may send it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Accept", "application/json")
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize(("content_type", "reason"), UNUSABLE)
@pytest.mark.parametrize(
    "path", [CONSUME, "/maestrano/connec/notifications", "/sandbox/api/v1/account/bills", "/"]
)
def test_over_http_an_unusable_charset_is_a_400(live_server, path, content_type, reason):
    status, body = _raw_post(
        live_server.url, path, content_type=content_type, body=_body(content_type)
    )

    assert status == 400, body[:300]
    if path != CONSUME:  # the ACS's path is an HTML page's (Accept aside)
        assert reason in json.loads(body)["detail"]


def test_without_the_middleware_the_charset_is_ignored_not_a_500(client, settings):
    settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != MIDDLEWARE]

    response = client.generic(
        "POST",
        CONSUME,
        b"SAMLResponse=abc",
        content_type="application/x-www-form-urlencoded; charset=\x00",
    )

    assert response.status_code == 400  # the SSO's refusal of that SAMLResponse
    assert b"We could not log you in" in response.content


def test_the_check_warns_when_the_middleware_is_missing(settings):
    assert "maestrano.W015" not in [message.id for message in checks.run_checks()]
    settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != MIDDLEWARE]

    assert "maestrano.W015" in [message.id for message in checks.run_checks()]


# --- forms that are not UTF-8 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"SAMLResponse=abc&RelayState=%FF", "form field 'RelayState' is not valid UTF-8"),
        (b"SAMLResponse=abc&%C3=1", "a form field name is not valid UTF-8"),
        (b"SAMLResponse=ab\xffc", "the form is not valid UTF-8"),
    ],
)
def test_a_consumed_form_that_is_not_utf8_is_refused(client, caplog, body, reason):
    response = client.generic(
        "POST", CONSUME, body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    refusals = [r for r in caplog.records if getattr(r, "reason", None) == "unreadable_form"]
    assert len(refusals) == 1 and reason in refusals[0].getMessage()


def test_a_multipart_form_with_bytes_that_are_not_utf8_is_refused(client, caplog):
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="SAMLResponse"\r\n\r\nab'.encode()
        + b"\xff\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    response = client.generic(
        "POST", CONSUME, body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert response.status_code == 400
    assert any(getattr(r, "reason", None) == "unreadable_form" for r in caplog.records)


def test_a_login_whose_form_is_not_utf8_stores_nothing_over_http(platform):
    """A genuine Response, posted with one more field whose byte is not UTF-8: refused
    before it is read, so its assertion is not spent and no login ticket exists."""
    http = platform.session()
    post = obtain_saml_response(platform, http, user_uid="usr-1", group_uid="cld-1")
    body = urlencode(post.form_data).encode() + b"&RelayState=%FF"

    answer = http.post(
        post.acs_url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )

    assert answer.status_code == 400
    assert not (UsedAssertion.objects.exists() or SsoLoginTicket.objects.exists())
    assert not (Company.objects.exists() or get_user_model().objects.exists())
    # The same Response, posted as the IdP's form does, is accepted.
    assert http.post(post.acs_url, data=post.form_data, allow_redirects=False).status_code == 303


def test_a_completion_form_that_is_not_utf8_is_refused(client, caplog):
    response = client.generic(
        "POST",
        "/maestrano/auth/saml/complete",
        b"ticket=abc%FF",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert any(getattr(r, "reason", None) == "unreadable_form" for r in caplog.records)


@pytest.fixture
def account_api():
    app = RegisteredApp.objects.create(api_id="app-t", api_key="key-t", app_host="http://x.test")
    token = base64.b64encode(b"app-t:key-t").decode()
    from maestrano_sandbox.models import Group

    group = Group.objects.create(uid="cld-1", name="Acme")
    group.apps.add(app)
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def test_an_account_api_form_that_is_not_utf8_is_refused_and_no_bill_stored(client, account_api):
    response = client.generic(
        "POST",
        "/sandbox/api/v1/account/bills",
        b"group_id=cld-1&price_cents=100&description=SMS%FF",
        content_type="application/x-www-form-urlencoded",
        **account_api,
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "body": [
            "The request body is refused: form field 'description' is not valid UTF-8 once "
            "percent-decoded (invalid start byte at byte 3)."
        ]
    }
    assert not Bill.objects.exists()


def test_an_account_api_form_in_utf8_is_stored_as_sent(client, account_api):
    response = client.generic(
        "POST",
        "/sandbox/api/v1/account/bills",
        "group_id=cld-1&price_cents=100&description=Caf%C3%A9+\ufffd".encode(),
        content_type="application/x-www-form-urlencoded",
        **account_api,
    )

    assert response.status_code == 201, response.content
    assert Bill.objects.get().description == "Café \ufffd"  # a U+FFFD the client did send


@pytest.mark.parametrize(
    "body",
    [
        b'{"organizations": [{"id": "o-1", "group_id": "cld-1", "name": "Caf\xe9"}]}',
        b'{"people": []}\xff',
    ],
)
def test_a_notification_that_is_not_utf8_is_refused_whole(client, body):
    """(Already so: the body is JSON, read as UTF-8 strictly.)"""
    from maestrano_sync.models import InboxEntry

    token = base64.b64encode(b"app-1:key-1").decode()
    response = client.generic(
        "POST",
        "/maestrano/connec/notifications",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )

    assert response.status_code == 400
    assert "not UTF-8" in response.json()["error"]
    assert not InboxEntry.objects.exists()


def test_a_sandbox_page_form_that_is_not_utf8_is_refused_and_nothing_stored(client):
    response = client.generic(
        "POST",
        "/sandbox/apps/register",
        b"api_id=app-z&api_key=k&name=Demo%FF&app_host=http%3A%2F%2Fapp.test"
        b"&signature_algorithm=sha256",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert b"form field 'name' is not valid UTF-8" in response.content
    assert not RegisteredApp.objects.filter(api_id="app-z").exists()
