"""The sandbox's HTML pages render and their forms work (Django test client)."""

from __future__ import annotations

import pytest
from django.test import Client

from maestrano_accounts.models import Company
from maestrano_sandbox import directory
from maestrano_sandbox.models import PlatformUser, RegisteredApp
from tests.helpers.users import log_in_to_company

from .connec_support import basic_auth

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def demo():
    app = RegisteredApp.objects.create(
        api_id="app-1", api_key="key", name="Demo", app_host="http://127.0.0.1:9"
    )
    group = directory.upsert_group(uid="cld-1", name="Acme")
    user = directory.upsert_user(uid="usr-1", name="Ada", email="ada@example.com")
    directory.set_membership(group=group, user=user, role="Admin")
    directory.start_using_app(group=group, app=app)
    return app


def test_home_lists_apps_groups_and_users(client, demo):
    response = client.get("/sandbox/")
    assert response.status_code == 200
    for text in ("app-1", "cld-1", "usr-1", "Register an app"):
        assert text in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/sandbox/apps/app-1", "/sandbox/groups/cld-1", "/sandbox/users/usr-1"]
)
def test_detail_pages_render(client, demo, path):
    response = client.get(path)
    assert response.status_code == 200
    assert 'class="sandbox"' in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/sandbox/apps/app-x", "/sandbox/groups/cld-x", "/sandbox/users/usr-x"]
)
def test_unknown_pages_are_404(client, demo, path):
    assert client.get(path).status_code == 404


def is_sandbox_404(response) -> bool:
    page = response.content.decode()
    return (
        response.status_code == 404
        and 'class="sandbox"' in page
        and "The sandbox has no such page" in page
        and "Acme CRM" not in page
    )


def is_app_404(response) -> bool:
    page = response.content.decode()
    return (
        response.status_code == 404
        and "This page does not exist" in page
        and "Acme CRM" in page
        and 'class="sandbox"' not in page
    )


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/no-such-page",  # no URL pattern
        "/sandbox/groups/cld-x",  # the view's Http404
        "/sandbox/connec/no-such-page",
    ],
)
def test_a_404_under_the_sandbox_is_the_sandboxs_page(client, demo, path):
    response = client.get(path)

    assert is_sandbox_404(response), response.content.decode()[:500]
    assert f'<code id="missing-path">{path}</code>' in response.content.decode()


ACCOUNT_API_PATHS = [
    "/sandbox/api/v1/account/groups/cld-1/extra",
    "/sandbox/api/v1/no-such-resource",
    "/sandbox/api/v1/auth/saml/usr-1/extra",
    "/sandbox/api/config/v1/no-such-thing",
]
CONNEC_API_PATHS = [
    "/sandbox/connec/api/v2/cld-1/people/p-1/extra",
    "/sandbox/connec/api/v3/cld-1/people",
    "/sandbox/connec/batch/extra",
    "/sandbox/api/v2/cld-1/people/p-1/extra",
    "/sandbox/api/v2/",
]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ACCOUNT_API_PATHS)
def test_an_unknown_path_of_the_account_api_answers_its_json_404(
    demo, settings, debug, method, path
):
    settings.DEBUG = debug  # Django's debug 404 page would ignore handler404
    client = Client(enforce_csrf_checks=True)  # apps post without a CSRF token

    response = getattr(client, method)(path, HTTP_AUTHORIZATION=basic_auth("app-1", "key"))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "success": False,
        "errors": {"request": [f"No endpoint at {path}: check the path against docs/protocol.md."]},
        "data": None,
    }


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", CONNEC_API_PATHS)
def test_an_unknown_path_of_the_connec_api_answers_its_json_404(
    demo, settings, debug, method, path
):
    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=True)

    response = getattr(client, method)(path, HTTP_AUTHORIZATION=basic_auth("app-1", "key"))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert set(error) == {"id", "href", "status", "code", "title", "detail"}
    assert (error["href"], error["status"]) == (path, "404")
    assert error["detail"] == f"No endpoint at {path}: check the path against docs/protocol.md."


def test_the_apis_json_404_holds_for_a_sandbox_only_server_and_any_path(client, demo, settings):
    settings.ROOT_URLCONF = "config.urls.sandbox"
    hostile = "/sandbox/api/v1/account/groups/%00%0a%ED%A0%80/x"

    response = client.get(hostile)

    assert response.status_code == 404
    assert response.json()["success"] is False
    assert client.get("/sandbox/connec/api/v2/a/b/c/d").json()["errors"][0]["status"] == "404"
    # The pages and the schema keep theirs.
    assert is_sandbox_404(client.get("/sandbox/api/no-such-api"))
    assert client.get("/sandbox/api/schema").status_code in {301, 302}


@pytest.mark.parametrize("path", ["/no-such-page", "/sandboxed", "/people/999999/"])
def test_a_404_of_the_app_keeps_the_apps_page(client, demo, path):
    if path.startswith("/people/"):  # a record the app's view does not find
        log_in_to_company(client, Company.objects.create(preset="maestrano", group_uid="cld-1"))
    assert is_app_404(client.get(path))


def test_a_sandbox_only_server_answers_its_own_404(client, demo, settings):
    settings.ROOT_URLCONF = "config.urls.sandbox"

    assert is_sandbox_404(client.get("/sandbox/no-such-page"))
    # Outside /sandbox/ there is nothing of the sandbox's, and no app either: Django's page.
    assert client.get("/no-such-page").status_code == 404


REGISTRATION = {
    "api_key": "k2",
    "name": "Second",
    "app_host": "http://127.0.0.1:9/",
    "init_path": "/maestrano/auth/saml/init",
    "consume_path": "/maestrano/auth/saml/consume",
    "groups_path": "/maestrano/account/groups/:id",
    "group_users_path": "/maestrano/account/groups/:group_id/users/:id",
    "notifications_path": "/maestrano/connec/notifications",
    "metadata_path": "/maestrano/metadata",
    "signature_algorithm": "sha256",
}


def test_register_form_creates_an_app_and_reports_metadata_failures(client):
    response = client.post(
        "/sandbox/apps/register",
        {"api_id": "app-2", **REGISTRATION, "fetch_metadata": "1"},
        follow=True,
    )
    assert response.status_code == 200
    assert RegisteredApp.objects.get(api_id="app-2").app_host == "http://127.0.0.1:9"
    assert "Metadata not loaded: Could not reach" in response.content.decode()


def test_register_form_with_errors_answers_400(client):
    response = client.post("/sandbox/apps/register", {"api_id": "", "app_host": "not a url"})
    assert response.status_code == 400
    assert not RegisteredApp.objects.exists()


@pytest.mark.parametrize("api_id", ["../..", "//evil.example/x", "a/b", ".", ".."])
@pytest.mark.parametrize("page", ["register", "edit"])
def test_an_api_id_that_is_no_url_segment_is_a_form_error(client, page, api_id, settings):
    # It was stored (register) or re-rendered (edit), then its page's URL could not be
    # built: a 500, and once stored, the sandbox's home page a 500 for good.
    settings.DEBUG = False
    browser = Client(raise_request_exception=False)
    app = RegisteredApp.objects.create(api_id="app-1", api_key="k1", app_host="http://127.0.0.1:9")
    path = "/sandbox/apps/register" if page == "register" else "/sandbox/apps/app-1"

    response = browser.post(path, {**REGISTRATION, "api_id": api_id})

    assert response.status_code == 400
    assert "one segment of a URL" in response.content.decode()
    assert list(RegisteredApp.objects.values_list("api_id", flat=True)) == ["app-1"]
    assert RegisteredApp.objects.get(pk=app.pk).api_key == "k1"
    assert browser.get("/sandbox/").status_code == 200


@pytest.mark.parametrize("field", ["name", "surname"])
def test_a_member_name_no_saml_assertion_can_hold_is_a_form_error(client, demo, field):
    # Stored, it made every later sign-in of that user a 500 (lxml refuses it).
    response = client.post(
        "/sandbox/groups/cld-1/members", {"user_uid": "", field: "A\x01B", "role": "Member"}
    )

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert list(PlatformUser.objects.values_list("uid", flat=True)) == ["usr-1"]


def test_group_page_adds_a_member(client, demo):
    response = client.post(
        "/sandbox/groups/cld-1/members",
        {"user_uid": "usr-2", "name": "Bob", "email": "bob@example.com", "role": "Member"},
        follow=True,
    )
    assert response.status_code == 200
    assert "usr-2 is now Member of Acme" in response.content.decode()
