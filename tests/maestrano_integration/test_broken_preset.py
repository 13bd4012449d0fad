"""A preset with a section that is not a dict (maestrano.E039) is the only thing it breaks:
its own endpoints answer 503 ("misconfigured"), the reason is logged once per process,
and the project's pages, the operations endpoints and the other presets keep working."""

from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from maestrano_accounts.sessions import SESSION_KEY
from maestrano_integration.conf import get_preset
from tests.conftest import preset_values
from tests.helpers.loopback import serving

BROKEN = 'MAESTRANO["PRESETS"]["broken-market"]["sso"]'


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _maestrano(**broken_overrides) -> dict:
    return {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1"),
            "broken-market": preset_values(
                api_id="broken-app", api_key="broken-key", **broken_overrides
            ),
        },
    }


@pytest.fixture
def broken_preset():
    with override_settings(MAESTRANO=_maestrano(sso="off")):
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("broken_preset")
def test_the_rest_of_the_site_keeps_working(client):
    assert client.get("/").status_code == 200
    assert client.get("/health/live").status_code == 200
    metadata = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=_basic("app-1", "key-1"))
    assert metadata.status_code == 200
    assert metadata.json()["sso"]["init_path"] == "/maestrano/auth/saml/init"
    assert client.get("/maestrano/auth/saml/init").status_code == 302


@pytest.mark.django_db
@pytest.mark.usefixtures("broken_preset")
def test_the_broken_presets_endpoints_answer_503_misconfigured(client):
    init = client.get("/maestrano/broken-market/auth/saml/init")
    assert init.status_code == 503
    assert init["Content-Type"].startswith("text/html")
    assert "sso_error" in [t.name.rsplit("/", 1)[-1].removesuffix(".html") for t in init.templates]

    metadata = client.get(
        "/maestrano/broken-market/metadata", HTTP_AUTHORIZATION=_basic("broken-app", "broken-key")
    )
    assert metadata.status_code == 503
    assert metadata.json() == {"error": "The application is misconfigured"}

    groups = client.delete(
        "/maestrano/broken-market/account/groups/cld-1",
        HTTP_AUTHORIZATION=_basic("broken-app", "broken-key"),
    )
    assert groups.status_code == 503
    assert groups.json() == {"error": "The application is misconfigured"}


@pytest.mark.django_db
def test_the_reason_is_logged_once_not_per_request(client, caplog):
    caplog.set_level(logging.ERROR)
    with override_settings(MAESTRANO=_maestrano(sso="off")):
        for _ in range(3):
            client.get("/")
            client.get("/maestrano/broken-market/auth/saml/init")
            client.get(
                "/maestrano/broken-market/metadata",
                HTTP_AUTHORIZATION=_basic("broken-app", "broken-key"),
            )

    reasons = [r for r in caplog.records if BROKEN in r.getMessage()]
    assert len(reasons) == 1, [r.getMessage() for r in reasons]


@pytest.mark.django_db
def test_a_broken_default_preset_leaves_the_project_pages_and_the_other_presets(client):
    values = _maestrano()
    values["PRESETS"]["maestrano"]["webhook"] = "off"
    with override_settings(MAESTRANO=values):
        assert client.get("/").status_code == 200
        assert client.get("/health/live").status_code == 200
        other = client.get(
            "/maestrano/broken-market/metadata",
            HTTP_AUTHORIZATION=_basic("broken-app", "broken-key"),
        )
        assert other.status_code == 200
        assert client.get("/maestrano/auth/saml/init").status_code == 503
        default = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=_basic("app-1", "key-1"))
        assert default.status_code == 503
        assert default.json() == {"error": "The application is misconfigured"}


@pytest.mark.django_db
def test_a_preset_that_is_not_a_dict_answers_503_at_its_derived_paths(client):
    values = _maestrano()
    values["PRESETS"]["broken-market"] = "off"
    with override_settings(MAESTRANO=values):
        assert client.get("/").status_code == 200
        assert client.get("/maestrano/broken-market/auth/saml/init").status_code == 503
        assert (
            client.get(
                "/maestrano/metadata", HTTP_AUTHORIZATION=_basic("app-1", "key-1")
            ).status_code
            == 200
        )


@pytest.mark.django_db
def test_a_session_of_the_broken_preset_gets_the_misconfigured_page(client):
    client.force_login(get_user_model().objects.create_user("ada"))
    session = client.session
    session[SESSION_KEY] = {"preset": "broken-market", "uid": "usr-1"}
    session.save()
    with override_settings(MAESTRANO=_maestrano(sso="off")):
        page = client.get("/organizations/")

    assert page.status_code == 503
    assert "maestrano_accounts/sso_error.html" in [t.name for t in page.templates]


def _blocking_dev_platform(arrived: threading.Event, release: threading.Event):
    """A developer platform that answers (one marketplace, the default preset) only once
    ``release`` is set, having set ``arrived``: a load under way in another thread."""
    body = json.dumps(
        {
            "marketplaces": [
                {"marketplace": "maestrano", **preset_values(api_id="app-1", api_key="key-1")}
            ]
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.set()
            release.wait(timeout=30)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.mark.django_db
@pytest.mark.parametrize("default_local", [True, False], ids=["default-local", "default-loaded"])
def test_the_broken_presets_endpoints_answer_503_while_another_thread_loads_the_presets(
    client, tmp_path, default_local
):
    arrived, release = threading.Event(), threading.Event()
    loaded: list[str] = []
    with serving(_blocking_dev_platform(arrived, release)) as url:
        values = _maestrano(sso="off")
        if not default_local:  # known only once loaded (no cached copy either)
            del values["PRESETS"]["maestrano"]
        values["DEV_PLATFORM"] = {
            "HOST": url,
            "KEY": "dev",
            "SECRET": "dev",
            "CACHE_FILE": str(tmp_path / "presets.json"),
        }
        with override_settings(MAESTRANO=values):
            loader = threading.Thread(target=lambda: loaded.append(get_preset().api_id))
            loader.start()
            try:
                assert arrived.wait(timeout=10)
                # The load is under way in the other thread: the broken preset's endpoints
                # still answer "misconfigured" (never a 404), and the pages are served.
                init = client.get("/maestrano/broken-market/auth/saml/init")
                metadata = client.get(
                    "/maestrano/broken-market/metadata",
                    HTTP_AUTHORIZATION=_basic("broken-app", "broken-key"),
                )
                landing = client.get("/")
            finally:
                release.set()
                loader.join(timeout=10)
            assert (init.status_code, metadata.status_code) == (503, 503)
            assert landing.status_code == 200
            assert b'href="/maestrano/auth/saml/init"' in landing.content
            assert metadata.json() == {"error": "The application is misconfigured"}
            assert loaded == ["app-1"]
            # Once loaded, the same.
            assert client.get("/maestrano/broken-market/auth/saml/init").status_code == 503
            assert client.get("/maestrano/auth/saml/init").status_code == 302
