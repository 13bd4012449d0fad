"""A request Django refuses (a forged ``Host``, not in ``ALLOWED_HOSTS``, before any view
runs; too many fields or a malformed multipart body, once the path resolved) answers
``{"detail": ...}`` in JSON on the JSON endpoints' paths (DRF APIs, views marked with
``maestrano_integration.views.json_errors``) or when ``Accept`` prefers JSON, and Django's
400 page elsewhere: ``maestrano_integration.views.bad_request``, the ``handler400`` of the
example project's URLconfs (``config/urls``)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from django.urls import path, register_converter

from crm.views import OrganizationStatus
from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry

FORGED = {"HTTP_HOST": "evil.example"}
REFUSED = {"detail": "The Host header names no host this site serves."}
BAD = {"detail": "Bad request."}


@pytest.fixture(autouse=True)
def debug_off(settings):
    settings.DEBUG = False  # with DEBUG on, Django shows its technical page instead


def assert_json_refusal(response, body=REFUSED) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == body


def assert_django_page(response) -> None:
    """The project's 400 page (templates/400.html) with the reason, in the site's layout."""
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<title>Request not understood · Acme CRM</title>" in page
    assert '<p id="bad-request-reason">' in page


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
def test_a_page_answers_the_projects_400_page(client, path):
    assert_django_page(client.get(path, **FORGED))


def test_the_400_page_says_why_in_the_sites_layout(client):
    response = client.get("/organizations/", **FORGED)

    assert_django_page(response)
    page = response.content.decode()
    assert "The Host header names no host this site serves." in page
    assert 'class="topbar"' in page
    assert "Log in with Maestrano" in page  # rendered without the refused request's user


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


# --- plain Django views marked with json_errors --------------------------------------

MARKED = [
    "/health/live",
    "/health/ready",
    "/metrics",
    "/organizations/1/sync.json",  # a class-based view (the mark is on its view_class)
    "/invoices/7/sync.json",
    "/sync/import-progress.json",
]


@pytest.mark.parametrize("path", MARKED)
@pytest.mark.parametrize("accept", [None, "text/html", "text/html,application/xhtml+xml,*/*;q=0.8"])
def test_a_marked_view_answers_json_whatever_the_client_accepts(client, path, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    response = client.get(path, **FORGED, **headers)

    assert_json_refusal(response)
    assert not response.has_header("Vary")  # the path decided, not Accept


@pytest.fixture
def csrf_client():
    """A client that checks CSRF like a browser's request is checked: the middleware
    reads the POST body (after the URL resolved) before the view runs."""
    checked = Client(enforce_csrf_checks=True)
    checked.cookies["csrftoken"] = "a" * 32
    return checked


@pytest.mark.parametrize("path", ["/health/live", "/sync/import-progress.json", "/"])
def test_too_many_fields_on_a_marked_view_answer_json(csrf_client, settings, path):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    fields = {f"field{number}": "x" for number in range(10)}

    response = csrf_client.post(path, fields)

    if path == "/":  # the landing page is not marked: Django's page
        assert_django_page(response)
    else:
        assert_json_refusal(response, BAD)


def test_a_malformed_multipart_body_on_a_marked_view_answers_json(csrf_client):
    response = csrf_client.post(
        "/organizations/1/sync.json", b"--", content_type="multipart/form-data; boundary="
    )

    assert_json_refusal(response, BAD)


# --- the Accept header, on paths no JSON endpoint serves ----------------------------


@pytest.mark.parametrize(
    ("accept", "answers_json"),
    [
        ("application/json", True),
        ("application/json, text/html;q=0.9", True),
        ("text/html;q=0.5, application/json;q=0.8", True),
        ("application/json;q=0.5, */*;q=0.1", True),
        ("text/html", False),
        ("text/html;q=0.9, application/json;q=0.8", False),
        ("application/json, text/html", False),  # a tie: HTML
        ("text/html, application/json", False),
        ("*/*, application/json", False),  # JSON named, HTML through */*: still a tie
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("image/png", False),  # neither: Django's page
        ("application/json;q=0", False),
        # Malformed: no error, and no preference Django could read beyond the header.
        ("application/json;q=abc", True),  # an unreadable q is 1
        ("application/json;q=nan, text/html", False),
        (";;;, ,,", False),
        ("=;=/;q=", False),
        ("application/", False),
        ('application/json;q="', True),
        ("\x00garbage\u00e9/\u00fc", False),
    ],
)
@pytest.mark.parametrize("path", ["/", "/no/such/page", "/maestrano/auth/saml/init"])
def test_the_accept_header_decides_on_other_paths(client, path, accept, answers_json):
    response = client.get(path, HTTP_ACCEPT=accept, **FORGED)

    if answers_json:
        assert_json_refusal(response)
    else:
        assert_django_page(response)
    assert response["Vary"] == "Accept"


@pytest.mark.parametrize("path", ["/", "/no/such/page"])
def test_without_accept_a_page_answers_html_that_varies_on_accept(client, path):
    response = client.get(path, **FORGED)

    assert_django_page(response)
    assert response["Vary"] == "Accept"


def test_a_drf_api_answers_json_even_to_a_browser(client):
    response = client.get("/maestrano/metadata", HTTP_ACCEPT="text/html", **FORGED)

    assert_json_refusal(response)
    assert not response.has_header("Vary")


def test_a_drf_view_that_renders_html_follows_accept(client):
    html = client.get("/sandbox/api/schema/ui/", HTTP_ACCEPT="text/html", **FORGED)
    json_ = client.get("/sandbox/api/schema/ui/", HTTP_ACCEPT="application/json", **FORGED)

    assert_django_page(html)
    assert_json_refusal(json_)
    assert html["Vary"] == json_["Vary"] == "Accept"


@pytest.mark.parametrize(
    "path", ["/%00", "/a%ff%fe/b", "/" + "x" * 5000, "//evil.example/..%2f", "/\u00e9t\u00e9"]
)
def test_an_odd_path_answers_400(client, path):
    assert_django_page(client.get(path, **FORGED))


# --- a project's own URLconf: how the mark is read -----------------------------------


class FragileConverter:
    """A project's converter that fails on odd input with something other than
    ``ValueError`` (which Django would read as 'no match')."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        if value == "odd":
            raise LookupError(value)
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FragileConverter, "err400_fragile")

urlpatterns = [
    path("fragile/<err400_fragile:key>.json", OrganizationStatus.as_view()),
    # as_view() may take the mark back: the class's answer is only the default.
    path("unmarked.json", OrganizationStatus.as_view(answers_json_errors=False)),
]
handler400 = "maestrano_integration.views.bad_request"


@pytest.mark.urls(__name__)
def test_a_path_that_fails_to_resolve_answers_400(client):
    assert_json_refusal(client.get("/fragile/fine.json", **FORGED))
    assert_django_page(client.get("/fragile/odd.json", **FORGED))
    assert_json_refusal(client.get("/fragile/odd.json", HTTP_ACCEPT="application/json", **FORGED))


@pytest.mark.urls(__name__)
def test_as_view_initkwargs_override_the_classs_mark(client):
    assert_django_page(client.get("/unmarked.json", **FORGED))
