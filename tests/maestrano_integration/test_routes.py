"""The paths a preset announces in its metadata are the paths served, for every preset."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from maestrano_accounts.models import Company
from tests.conftest import preset_values

pytestmark = pytest.mark.django_db

CUSTOM = {
    "sso": {"init_path": "/sso/start", "consume_path": "/sso/acs"},
    "webhook": {
        "account": {
            "groups_path": "/hooks/org/:id/cancel",
            "group_users_path": "/hooks/org/:group_id/people/:id",
        },
        "connec": {"notifications_path": "/hooks/connec"},
    },
}


def auth(api_id: str, api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{api_id}:{api_key}".encode()).decode()


@pytest.fixture
def custom_presets(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1", **CUSTOM),
            "acme": preset_values(api_id="acme-app", api_key="acme-key"),
        },
    }


def announced(client: Client, path: str, credentials: str) -> dict:
    answer = client.get(path, HTTP_AUTHORIZATION=credentials)
    assert answer.status_code == 200
    return answer.json()


def test_custom_paths_are_announced_and_served(client, custom_presets):
    metadata = announced(client, "/maestrano/metadata", auth("app-1", "key-1"))
    assert metadata["sso"]["init_path"] == "/sso/start"
    assert metadata["webhook"]["account"]["groups_path"] == "/hooks/org/:id/cancel"

    init = client.get("/sso/start")
    assert init.status_code == 302 and "SAMLRequest=" in init.headers["Location"]
    # The consume view answers (a refusal page for an empty POST), it is not a 404.
    assert client.post("/sso/acs").status_code == 400

    Company.objects.create(preset="maestrano", group_uid="cld-1", name="Co")
    cancel = client.delete("/hooks/org/cld-1/cancel", HTTP_AUTHORIZATION=auth("app-1", "key-1"))
    assert cancel.status_code == 200
    assert Company.objects.get().status == Company.Status.CANCELLED
    removal = client.delete(
        "/hooks/org/cld-1/people/usr-9", HTTP_AUTHORIZATION=auth("app-1", "key-1")
    )
    assert removal.status_code == 200 and removal.json() == {"success": True}
    notify = client.post(
        "/hooks/connec",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth("app-1", "key-1"),
    )
    assert notify.status_code != 404


def test_the_default_paths_of_a_preset_with_custom_paths_are_not_served(client, custom_presets):
    assert client.get("/maestrano/auth/saml/init").status_code == 404
    answer = client.delete(
        "/maestrano/account/groups/cld-1", HTTP_AUTHORIZATION=auth("app-1", "key-1")
    )
    assert answer.status_code == 404


def test_every_other_preset_keeps_its_derived_paths(client, custom_presets):
    metadata = announced(client, "/maestrano/acme/metadata", auth("acme-app", "acme-key"))
    assert metadata["sso"]["init_path"] == "/maestrano/acme/auth/saml/init"
    assert client.get(metadata["sso"]["init_path"]).status_code == 302
    Company.objects.create(preset="acme", group_uid="cld-2", name="Co")
    path = metadata["webhook"]["account"]["groups_path"].replace(":id", "cld-2")
    assert client.delete(path, HTTP_AUTHORIZATION=auth("acme-app", "acme-key")).status_code == 200
    # A preset's credentials do not open another preset's paths.
    other = client.delete(
        "/hooks/org/cld-1/cancel", HTTP_AUTHORIZATION=auth("acme-app", "acme-key")
    )
    assert other.status_code == 401


def test_the_login_link_follows_the_default_presets_init_path(client, custom_presets):
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/sso/start"' in page.text


def test_the_include_under_a_prefix_is_a_check_error_naming_every_announced_path(settings):
    """Mounted at ``platform/``, the include answers at ``/platform/maestrano/...``
    while the metadata announces ``/maestrano/...``: the platform would get 404s."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from maestrano_integration.checks import check_announced_paths_served

    assert check_announced_paths_served() == []

    settings.ROOT_URLCONF = "tests.maestrano_integration.urls_prefixed"

    messages = check_announced_paths_served()
    assert [message.id for message in messages] == ["maestrano.E026"]
    for announced in (
        "/maestrano/auth/saml/init",
        "/maestrano/auth/saml/consume",
        "/maestrano/account/groups/:id",
        "/maestrano/account/groups/:group_id/users/:id",
        "/maestrano/connec/notifications",
    ):
        assert f"'{announced}' (404)" in messages[0].msg
    assert 'path("", include("maestrano_integration.urls"))' in messages[0].hint
    assert Client().post("/maestrano/auth/saml/consume").status_code == 404
    with pytest.raises(SystemCheckError, match=r"maestrano\.E026"):
        call_command("check")


def test_a_project_view_answering_an_announced_path_first_is_a_check_error(settings):
    from maestrano_integration.checks import check_announced_paths_served

    settings.ROOT_URLCONF = "tests.maestrano_integration.urls_consume_shadowed"

    (message,) = check_announced_paths_served()
    assert message.id == "maestrano.E026"
    assert "'/maestrano/auth/saml/consume' (served by " in message.msg
    assert "urls_consume_shadowed.their_view" in message.msg
    assert "saml/init" not in message.msg


def test_announced_paths_moved_under_a_prefix_by_the_preset_keys_pass(settings, custom_presets):
    from maestrano_integration.checks import check_announced_paths_served

    assert check_announced_paths_served() == []
