"""The project served under a script prefix (``/app``): the WSGI server's ``SCRIPT_NAME``
behind a proxy that mounts the project there, or ``FORCE_SCRIPT_NAME``.

Django resolves the path after the prefix and ``reverse()`` puts the prefix back; the
platform calls the URLs the metadata announces, ``app.host`` + path, so ``app.host`` names
the project's root, prefix included (docs/install.md, "Served under a path"). The test
client sends ``SCRIPT_NAME`` as such a server does and requests the path after it.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.test.utils import override_script_prefix

from maestrano_integration.conf import get_preset
from tests.accounts.test_sso_queries import ATTRIBUTES, signed_response
from tests.conftest import preset_values

PREFIX = "/app"


def under_prefix(location: str) -> str:
    """The path a server mounted at ``PREFIX`` hands Django for a ``location`` we sent."""
    assert location.startswith(f"{PREFIX}/"), location
    return location.removeprefix(PREFIX)


@pytest.fixture
def prefix():
    """What a WSGI server does for each request it gets under ``SCRIPT_NAME``: Django's
    script prefix (``reverse()``); the test client itself leaves it ``/``."""
    with override_script_prefix(f"{PREFIX}/"):
        yield PREFIX


@pytest.fixture
def served_under_prefix(settings, prefix):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="app-p", api_key="key-p", app_host=f"http://testserver{PREFIX}"
            )
        },
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }
    return Client(SCRIPT_NAME=PREFIX)


@pytest.mark.django_db(transaction=True)
def test_an_sso_login_under_the_prefix_lands_on_the_dashboard_under_it(served_under_prefix):
    client = served_under_prefix
    preset = get_preset()
    assert preset.acs_url == f"http://testserver{PREFIX}/maestrano/auth/saml/consume"

    consumed = client.post(
        preset.consume_path, {"SAMLResponse": signed_response(preset, ATTRIBUTES)}
    )
    assert consumed.status_code == 303
    completed = client.get(under_prefix(consumed["Location"]))

    assert completed.status_code == 302
    assert completed["Location"] == f"{PREFIX}/dashboard/"
    dashboard = client.get(under_prefix(completed["Location"]))
    assert dashboard.status_code == 200
    assert f'action="{PREFIX}/maestrano/logout"' in dashboard.text


@pytest.mark.django_db
def test_the_login_links_under_the_prefix_start_the_login_under_it(served_under_prefix):
    page = served_under_prefix.get("/maestrano/signed-out")

    assert page.status_code == 200
    assert f'href="{PREFIX}/maestrano/auth/saml/init"' in page.text
    assert served_under_prefix.get("/maestrano/auth/saml/init").status_code == 302


def test_a_forced_script_name_outside_the_app_host_is_a_check_error(settings):
    """With ``FORCE_SCRIPT_NAME`` the project's root is known: ``app.host`` (and
    ``sso.idm``, when set) must name it, or the platform calls URLs outside the project."""
    from maestrano_integration.checks import check_served_root

    settings.FORCE_SCRIPT_NAME = PREFIX
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="a", api_key="k", app_host="https://crm.example"),
            "acme": preset_values(
                api_id="b",
                api_key="k",
                app_host=f"https://crm.example{PREFIX}",
                sso={"idm": "https://login.example"},
            ),
        },
    }

    messages = check_served_root()

    assert [m.id for m in messages] == ["maestrano.E034", "maestrano.E034"]
    assert "preset 'maestrano': app.host 'https://crm.example'" in messages[0].msg
    assert "https://crm.example/maestrano/auth/saml/consume" in messages[0].msg
    assert "its script prefix included: https://crm.example/app." in messages[0].hint
    assert "MAESTRANO_APP_HOST" in messages[0].hint
    assert "preset 'acme': sso.idm 'https://login.example'" in messages[1].msg

    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="a", api_key="k", app_host=f"https://crm.example{PREFIX}/"
            ),
            "acme": preset_values(
                api_id="b",
                api_key="k",
                app_host=f"https://crm.example{PREFIX}",
                sso={"idm": f"https://login.example{PREFIX}"},
            ),
        },
    }
    assert check_served_root() == []
    settings.FORCE_SCRIPT_NAME = None
    assert check_served_root() == []  # the root is the server's to say: nothing to check


@pytest.mark.django_db
def test_metadata_served_under_a_prefix_its_app_host_lacks_logs_the_fix(settings, caplog, prefix):
    """Without ``FORCE_SCRIPT_NAME``, the prefix is known per request: the metadata still
    answers (the platform reads it), and the error log says what to set."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {"maestrano": preset_values(api_id="app-m", api_key="key-m")},
    }
    client = Client(SCRIPT_NAME=PREFIX, HTTP_AUTHORIZATION=_basic("app-m", "key-m"))

    with caplog.at_level(logging.ERROR, logger="maestrano_integration.views"):
        answer = client.get("/maestrano/metadata")

    assert answer.status_code == 200
    assert answer.json()["sso"]["idm"] == "http://testserver"
    (record,) = caplog.records
    assert "outside the script prefix '/app/' this project is served under" in record.getMessage()
    assert "its script prefix included: http://testserver/app." in record.getMessage()

    caplog.clear()
    with override_script_prefix("/"), caplog.at_level(logging.ERROR):
        at_root = Client(HTTP_AUTHORIZATION=_basic("app-m", "key-m")).get("/maestrano/metadata")
    assert at_root.status_code == 200
    assert caplog.records == []


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_checks_run_under_a_forced_script_name(settings, prefix):
    """Every command runs the checks, ``FORCE_SCRIPT_NAME`` its script prefix: the URL
    checks resolve the paths ``reverse()`` gives, behind that prefix, as Django does."""
    from django.core.management import call_command

    from maestrano_accounts.checks import check_url_namespace

    settings.FORCE_SCRIPT_NAME = PREFIX
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="a", api_key="k", app_host=f"https://x.example{PREFIX}"
            )
        },
    }

    assert check_url_namespace() == []
    call_command("check")


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("home", True),  # read as a URL name (no "/" or "."), and none has it
        ("crm:nowhere", True),
        ("maestrano_accounts:dashboard", False),
        ("/welcome/", False),  # a path is used as it is, served or not
        ("https://crm.example/start", False),
        ("welcome.html", False),
    ],
)
def test_a_landing_page_setting_that_names_no_url_fails_the_check(settings, value, refused):
    """``SSO_LOGIN_REDIRECT_URL`` is read as ``LOGIN_REDIRECT_URL``: a name that reverses to
    nothing would fail every login after its assertion was accepted; ``check`` says so."""
    from django.core import checks

    settings.MAESTRANO = {**settings.MAESTRANO, "SSO_LOGIN_REDIRECT_URL": value}

    found = [m for m in checks.run_checks(tags=[checks.Tags.urls]) if m.id == "maestrano.E035"]

    assert bool(found) is refused
    if refused:
        assert repr(value) in found[0].msg
        assert "maestrano_accounts:dashboard" in found[0].hint
