"""System checks fire on each misconfiguration with a message that says how to fix it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from maestrano_integration.checks import check_presets, check_presets_for_deployment
from tests.conftest import preset_values
from tests.helpers.adoption import ROOT, clean_environment
from tests.helpers.certificates import make_key_pair


def ids(messages) -> set[str]:
    return {message.id for message in messages}


def configure(settings, **preset) -> None:
    settings.MAESTRANO = {"PRESETS": {"maestrano": preset}}


def deployed(**values) -> dict:
    """``preset_values`` with the hosts of a deployment (not this machine)."""
    preset = preset_values(app_host="https://crm.example.com", **values)
    preset["api"] = {**preset["api"], "host": "https://api.marketplace.example"}
    return preset


def test_a_complete_preset_passes(settings):
    configure(settings, **preset_values(api_id="a", api_key="k"))
    assert check_presets() == []


def test_missing_api_id_and_key_warn_with_the_env_var_and_the_sandbox_command(settings):
    configure(settings, **preset_values(api_id="", api_key=""))
    messages = check_presets()
    assert ids(messages) == {"maestrano.W001", "maestrano.W002"}
    assert all(not message.is_serious() for message in messages)
    hints = " ".join(message.hint for message in messages)
    assert "MAESTRANO_API_ID" in hints
    assert "MAESTRANO_API_KEY" in hints
    assert "sandbox_register_app" in hints


def test_the_sandbox_commands_of_the_hint_give_the_credentials_in_a_checkout(settings, tmp_path):
    """The hint's commands, run as written in this checkout (the checkout's DEBUG is off
    unless told, and a fresh sandbox database has no tables): the app is registered and
    the certificate printed."""
    configure(settings, **preset_values(api_id="", api_key=""))
    (message,) = [m for m in check_presets() if m.id == "maestrano.W001"]
    commands = [c for c in re.findall(r"`([^`]+)`", message.hint) if "manage.py" in c]
    assert [c.rsplit("manage.py ", 1)[1].split()[0] for c in commands] == [
        "migrate",
        "sandbox_register_app",
        "sandbox_export_idp_cert",
    ]
    base = {
        name: value
        for name, value in clean_environment().items()
        if name not in {"DEBUG", "SECRET_KEY"} and not name.startswith("SANDBOX_")
    }
    outputs = []
    for command in commands:
        words = shlex.split(command.replace("ID", "app-hint").replace("KEY", "hint-key"))
        words = [word.replace("URL", "http://127.0.0.1:8000") for word in words]
        assignments = dict(word.split("=", 1) for word in words if re.match(r"^\w+=", word))
        argv = [word for word in words if not re.match(r"^\w+=", word)]
        assert argv[0] == ".venv/bin/python"  # the checkout's interpreter: this one here
        result = subprocess.run(
            [sys.executable, *argv[1:]],
            cwd=ROOT,
            env={**base, **assignments, "VAR_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        outputs.append(result.stdout)
    assert "Registered app-hint (http://127.0.0.1:8000)." in outputs[1]
    assert outputs[2].startswith("-----BEGIN CERTIFICATE-----")
    assert os.path.exists(tmp_path / "sandbox")


def test_missing_credentials_are_errors_for_a_deployment(settings):
    configure(settings, **deployed(api_id="", api_key="", sso={"x509_certificate": ""}))
    messages = check_presets_for_deployment()
    assert ids(messages) == {"maestrano.E001", "maestrano.E002", "maestrano.E004"}
    assert all(message.is_serious() for message in messages)


def test_complete_credentials_pass_the_deployment_check(settings):
    configure(settings, **deployed(api_id="a", api_key="k"))
    assert check_presets_for_deployment() == []


def test_unknown_settings_and_preset_keys_are_reported_with_a_suggestion(settings):
    settings.MAESTRANO = {
        "PRESETS": {"maestrano": {**preset_values(api_id="a", api_key="k"), "ssso": {}}},
        "SYNCC": {},
    }
    messages = check_presets()
    assert ids(messages) == {"maestrano.W010", "maestrano.W011"}
    text = " ".join(f"{message.msg} {message.hint}" for message in messages)
    assert "'SYNC'" in text and "'ssso'" in text


def maestrano_checks() -> list:
    """Every check of the ``maestrano`` tag, as ``manage.py check`` runs them."""
    from django.core import checks

    return checks.run_checks(tags=["maestrano"])


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [
        ("BILLING", "TASK_MAX_RETRYS", "TASK_MAX_RETRIES"),
        ("SYNC", "BATCH_SIZ", "BATCH_SIZE"),
        ("SYNC", "batch_size", "BATCH_SIZE"),
        ("CONNEC", "PAGESIZE", "PAGE_SIZE"),
        ("DEV_PLATFORM", "CACHE_FIEL", "CACHE_FILE"),
        ("METRICS", "ENABLE", "ENABLED"),
        ("HEALTH", "LIVEPATH", "LIVE_PATH"),
        ("THROTTLE_RATES", "maestrano_notification", "maestrano_notifications"),
    ],
)
def test_an_unknown_key_of_a_section_is_reported_with_the_closest_known_one(
    settings, section, typo, meant
):
    settings.MAESTRANO = {
        "PRESETS": {"maestrano": preset_values(api_id="a", api_key="k")},
        section: {typo: 1},
    }

    [warning] = [m for m in maestrano_checks() if m.id == "maestrano.W010"]

    assert warning.msg == (
        f"MAESTRANO[{section!r}][{typo!r}] is not a Maestrano setting and is ignored."
    )
    assert warning.hint == f"Did you mean {meant!r}?"


def test_a_section_key_like_no_known_one_points_at_the_sections_documentation(settings):
    settings.MAESTRANO = {
        "PRESETS": {"maestrano": preset_values(api_id="a", api_key="k")},
        "HEALTH": {"PROMETHEUS": True, 7: "x"},
    }

    warnings = [m for m in maestrano_checks() if m.id == "maestrano.W010"]

    assert [m.msg.split(" is ")[0] for m in warnings] == [
        "MAESTRANO['HEALTH'][7]",
        "MAESTRANO['HEALTH']['PROMETHEUS']",
    ]
    assert {m.hint for m in warnings} == {"See docs/settings.md, HEALTH."}


def test_every_known_key_of_every_section_passes(settings):
    """No false positive: each section set with all its keys; a plan's keys are a value of
    BILLING (E033 checks them), the presets a mapping of names, a moved key W013's."""
    from maestrano_accounts.billing.conf import BILLING_DEFAULTS
    from maestrano_integration.conf import DEFAULTS
    from maestrano_sync.conf import SYNC_DEFAULTS

    sections = {
        name: dict(default)
        for name, default in DEFAULTS.items()
        if isinstance(default, dict) and name != "PRESETS"
    }
    settings.MAESTRANO = {
        **sections,
        "PRESETS": {"acme-market": preset_values(api_id="a", api_key="k")},
        "DEFAULT_PRESET": "acme-market",
        "BILLING": {**BILLING_DEFAULTS, "DEFAULT_PLAN": {"name": "Pro", "free_trail_days": 3}},
        "SYNC": {**SYNC_DEFAULTS, "PAGE_SIZE": 50},
    }

    messages = maestrano_checks()

    assert {"METRICS", "HEALTH", "DEV_PLATFORM", "CONNEC", "THROTTLE_RATES"} <= set(sections)
    assert [m for m in messages if m.id == "maestrano.W010"] == []
    assert {m.id for m in messages} >= {"maestrano.E033", "maestrano.W013"}


def test_the_example_projects_settings_have_no_unknown_key():
    """tests/settings.py is config/settings.py with the sandbox mounted."""
    assert [m for m in maestrano_checks() if m.id == "maestrano.W010"] == []


def test_nested_unknown_preset_key_is_reported_by_its_path(settings):
    values = preset_values(api_id="a", api_key="k")
    values["sso"] = {**values.get("sso", {}), "init_pth": "/x"}
    configure(settings, **values)
    messages = check_presets()
    assert ids(messages) == {"maestrano.W011"}
    assert "'sso.init_pth'" in messages[0].msg


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"environment": "prod"}, "maestrano.W012"),
        ({"api": {"host": "sandbox.local"}}, "maestrano.E008"),
        ({"sso": {"init_path": "auth/init"}}, "maestrano.E009"),
    ],
)
def test_bad_values_are_reported(settings, values, expected):
    preset = preset_values(api_id="a", api_key="k")
    for key, value in values.items():
        preset[key] = {**preset[key], **value} if isinstance(value, dict) else value
    configure(settings, **preset)
    assert ids(check_presets()) == {expected}


def test_a_1024_bit_idp_certificate_warns_where_sha1_signatures_are_refused(settings):
    """The historical platform's key (1024-bit RSA, rsa-sha1 signatures) on a preset that
    refuses SHA-1: its logins would be refused; the check says so at start-up, naming the
    setting (and its variable, for the default preset). Accepted by default: no warning."""
    historical = make_key_pair(bits=1024).certificate_pem
    configure(
        settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": historical})
    )
    assert check_presets() == []

    configure(
        settings,
        **preset_values(
            api_id="a", api_key="k", sso={"x509_certificate": historical, "allow_sha1": False}
        ),
    )
    messages = check_presets()
    assert ids(messages) == {"maestrano.W014"}
    assert "sha1_refused" in messages[0].hint
    assert "MAESTRANO_SSO_ALLOW_SHA1" in messages[0].hint


def test_unknown_creation_mode_is_reported(settings):
    configure(settings, **preset_values(api_id="a", api_key="k", sso={"creation_mode": "magic"}))
    messages = check_presets()
    assert ids(messages) == {"maestrano.E003"}
    assert "'real' or 'virtual'" in messages[0].hint


def test_missing_certificate_is_reported_when_sso_is_enabled(settings):
    configure(settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": ""}))
    messages = check_presets()
    assert ids(messages) == {"maestrano.W004"}
    assert "MAESTRANO_SSO_X509_CERTIFICATE" in messages[0].hint


def test_missing_certificate_is_fine_when_sso_is_disabled(settings):
    configure(
        settings,
        **preset_values(api_id="a", api_key="k", sso={"x509_certificate": "", "enabled": False}),
    )
    assert check_presets() == []


@pytest.mark.parametrize(
    "certificate",
    [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ],
)
def test_unparsable_certificate_is_reported(settings, certificate):
    configure(
        settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": certificate})
    )
    messages = check_presets()
    assert ids(messages) == {"maestrano.E005"}
    assert "PEM" in messages[0].hint


def test_a_certificate_path_that_names_no_file_is_reported_as_such(settings, tmp_path):
    missing = tmp_path / "idp-certificate.pem"
    configure(
        settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": str(missing)})
    )

    messages = check_presets()

    assert ids(messages) == {"maestrano.E005"}
    assert f"no file at '{missing}'" in messages[0].msg
    assert "working directory" in messages[0].msg


def test_second_preset_hint_names_the_setting_not_the_env_var(settings):
    settings.MAESTRANO = {
        "PRESETS": {
            "maestrano": preset_values(api_id="a", api_key="k"),
            "other": preset_values(api_id="", api_key="k"),
        }
    }
    messages = check_presets()
    assert ids(messages) == {"maestrano.W001"}
    assert "MAESTRANO['PRESETS']['other']['api']['id']" in messages[0].hint


def test_default_preset_name_must_exist(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "missing",
        "PRESETS": {"maestrano": preset_values(api_id="a", api_key="k")},
    }
    assert "maestrano.E006" in ids(check_presets())


@pytest.mark.parametrize("name", ["acme market", "acme.market", "acmé", "a/b", "acme\n"])
def test_a_preset_name_that_is_no_slug_is_an_error(settings, name):
    """Its URLs could not be built (/maestrano/<name>/logout, its metadata) and its default
    SSO paths, with a space, made every SSO login through it a 503."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="a", api_key="k"),
            name: preset_values(api_id="b", api_key="k2"),
        },
    }
    (message,) = [m for m in check_presets() if m.id == "maestrano.E038"]
    assert repr(name) in message.msg
    assert "letters, digits, '-' and '_'" in message.hint


def test_preset_names_with_hyphens_and_underscores_pass(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="a", api_key="k"),
            "acme-market_2": preset_values(api_id="b", api_key="k2"),
        },
    }
    assert "maestrano.E038" not in ids(check_presets())


# Django 6 runs the model checks against every database (JSONField support).
@pytest.mark.django_db(databases="__all__")
def test_missing_credentials_do_not_block_manage_py_but_fail_check_deploy(settings, capsys):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    configure(settings, **preset_values(api_id="", api_key="k"))
    call_command("check")
    assert "maestrano.W001" in capsys.readouterr().err
    with pytest.raises(SystemCheckError, match=r"maestrano\.E001"):
        call_command("check", deploy=True, tags=["maestrano"])


def test_a_deployment_whose_hosts_are_this_machine_is_warned(settings):
    from maestrano_integration.checks import check_presets_for_deployment

    configure(settings, **preset_values(api_id="a", api_key="k", app_host="http://localhost:8000"))

    warned = [m for m in check_presets_for_deployment() if m.id == "maestrano.W031"]

    # Connec! follows the api host when it has none of its own.
    assert [m.msg.split(",")[0].split(": ")[1] for m in warned] == [
        "app.host is 'http://localhost:8000'",
        "api.host is 'http://127.0.0.1:9'",
        "connec.host is 'http://127.0.0.1:9'",
    ]
    assert "MAESTRANO_APP_HOST" in warned[0].hint


def test_silencing_the_cached_presets_warning_keeps_the_loopback_one(settings, capsys):
    """Two problems, two ids: ``SILENCED_SYSTEM_CHECKS`` of the developer platform's
    warning (W030) must not hide a deployment on this machine's hosts."""
    from django.core.management import call_command

    configure(settings, **preset_values(api_id="a", api_key="k", app_host="http://localhost:8000"))
    settings.SILENCED_SYSTEM_CHECKS = ["maestrano.W030"]

    call_command("check", deploy=True, tags=["maestrano"])

    assert "maestrano.W031" in capsys.readouterr().err


def test_a_deployment_on_real_hosts_is_not_warned(settings):
    from maestrano_integration.checks import check_presets_for_deployment

    configure(settings, **deployed(api_id="a", api_key="k"))

    assert [m for m in check_presets_for_deployment() if m.id == "maestrano.W031"] == []


@pytest.mark.django_db(databases="__all__")
def test_check_deploy_reports_each_missing_credential_once_as_an_error(settings, capsys, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    configure(settings, **deployed(api_id="", api_key="", sso={"x509_certificate": ""}))
    # A cache shared by the processes, as deployed (a local-memory one is warned of: W041).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }

    with pytest.raises(SystemCheckError) as raised:
        call_command("check", deploy=True, tags=["maestrano"])

    report = str(raised.value)
    for number, what in [("001", "no api id"), ("002", "no api key"), ("004", "no IdP")]:
        assert report.count(what) == 1, report
        assert f"maestrano.E{number}" in report
        assert f"maestrano.W{number}" not in report
    assert "WARNINGS" not in report
    # A normal run afterwards warns again.
    call_command("check", tags=["maestrano"])
    err = capsys.readouterr().err
    assert all(f"maestrano.W{number}" in err for number in ("001", "002", "004"))


def test_a_check_run_in_another_thread_keeps_its_own_warnings(settings):
    """A deployment check silences the warnings of its own run only: another thread's plain
    ``check`` run meanwhile still shows its warnings."""
    import threading

    from maestrano_integration.checks import check_presets, check_presets_for_deployment

    configure(settings, **deployed(api_id="", api_key="", sso={"x509_certificate": ""}))

    def in_thread(function):
        result = []
        thread = threading.Thread(target=lambda: result.extend(function()))
        thread.start()
        thread.join()
        return result

    deploy_run_warnings = check_presets()
    plain_run_warnings = in_thread(check_presets)  # another run, meanwhile
    deploy_run_errors = check_presets_for_deployment()

    shown = [m.id for m in deploy_run_warnings + deploy_run_errors if not m.is_silenced()]
    assert {"maestrano.E001", "maestrano.E002"} <= set(shown)
    assert not {"maestrano.W001", "maestrano.W002"} & set(shown)
    assert {"maestrano.W001", "maestrano.W002"} <= {
        m.id for m in plain_run_warnings if not m.is_silenced()
    }


def test_a_project_without_time_zone_support_is_a_check_error(settings):
    """USE_TZ = False: aware datetimes cannot be stored (SQLite refuses them), the ACS
    answered 500; now ``check`` says so before the first login."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from maestrano_integration.checks import check_time_zone_support

    assert check_time_zone_support() == []

    settings.USE_TZ = False

    (message,) = check_time_zone_support()
    assert message.id == "maestrano.E027"
    assert "USE_TZ = True" in message.hint
    with pytest.raises(SystemCheckError, match=r"maestrano\.E027"):
        call_command("check")
