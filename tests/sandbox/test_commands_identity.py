"""Scriptable set-up of the sandbox: register apps, add users, export the IdP certificate, demo."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from maestrano_sandbox.keys import ensure_idp_key_pair, ensure_sha1_key_pair
from maestrano_sandbox.models import Group, GroupMembership, PlatformUser, RegisteredApp


def _run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db(databases="__all__")
def test_register_app_creates_then_updates():
    output = _run(
        "sandbox_register_app",
        "--api-id=app-new",
        "--api-key=secret-1",
        "--app-host=http://127.0.0.1:9000/",
        "--name=New app",
        "--signature-algorithm=sha1",
    )
    assert "Registered app-new" in output
    app = RegisteredApp.objects.get(api_id="app-new")
    assert (app.api_key, app.app_host, app.name, app.signature_algorithm) == (
        "secret-1",
        "http://127.0.0.1:9000",
        "New app",
        "sha1",
    )
    assert "Updated app-new" in _run(
        "sandbox_register_app", "--api-id=app-new", "--api-key=secret-2"
    )
    app.refresh_from_db()
    assert (app.api_key, app.name) == ("secret-2", "New app")


@pytest.mark.django_db(databases="__all__")
def test_register_new_app_without_key_or_host_is_refused():
    with pytest.raises(CommandError, match="api key and an app host"):
        _run("sandbox_register_app", "--api-id=app-new")
    assert not RegisteredApp.objects.exists()


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("api_id", ["a/b", ".."])
def test_register_app_refuses_an_api_id_that_is_no_url_segment(client, api_id):
    # Its page's URL could not be built: the sandbox's home page, which links every app,
    # was a 500 from then on.
    with pytest.raises(CommandError, match="one segment of a URL"):
        _run("sandbox_register_app", f"--api-id={api_id}", "--api-key=k", "--app-host=http://h")
    assert not RegisteredApp.objects.exists()
    assert client.get("/sandbox/").status_code == 200


def test_register_app_from_metadata_takes_paths_and_subscriptions(platform):
    platform.configure(
        maestrano=platform.preset_values(
            webhook={
                "account": {"groups_path": "/custom/groups/:id"},
                "connec": {"subscriptions": {"people": True, "items": False}},
            }
        )
    )
    _run(
        "sandbox_register_app",
        f"--api-id={platform.api_id}",
        f"--api-key={platform.api_key}",
        f"--app-host={platform.url}",
        "--from-metadata",
    )
    app = RegisteredApp.objects.get(api_id=platform.api_id)
    assert app.groups_path == "/custom/groups/:id"
    assert app.subscriptions == {"people": True, "items": False}
    assert app.consume_path == "/maestrano/auth/saml/consume"
    assert app.metadata["api"]["id"] == platform.api_id
    assert "key" not in app.metadata["api"]


def test_register_app_from_metadata_of_a_second_preset(platform):
    """A second marketplace's app reads its own preset's metadata (its credentials, its
    paths), not the default preset's, which would refuse its key."""
    other = platform.register_app(api_id="app-other")
    platform.configure(
        maestrano=platform.preset_values(),
        other=platform.preset_values(
            other,
            sso={"init_path": "/other/sso/init"},
            webhook={"connec": {"subscriptions": {"items": True}}},
        ),
    )
    _run(
        "sandbox_register_app",
        f"--api-id={other.api_id}",
        "--metadata-path=/maestrano/other/metadata",
        "--from-metadata",
    )
    other.refresh_from_db()
    assert other.metadata_path == "/maestrano/other/metadata"
    assert other.metadata["api"]["id"] == "app-other"
    assert other.init_path == "/other/sso/init"
    assert other.subscriptions["items"] is True


@pytest.mark.parametrize(
    "path", ["maestrano/metadata", "//elsewhere.example/m", "/with space", "/" + "m" * 300]
)
@pytest.mark.django_db(databases="__all__")
def test_register_app_refuses_a_metadata_path_not_of_the_app_host(path):
    with pytest.raises(CommandError, match="path of the app host"):
        _run(
            "sandbox_register_app",
            "--api-id=app-p",
            "--api-key=k",
            "--app-host=http://127.0.0.1:9",
            f"--metadata-path={path}",
        )
    assert not RegisteredApp.objects.exists()


def test_register_app_from_metadata_with_wrong_key_explains_the_401(platform):
    with pytest.raises(CommandError, match="refused the app's credentials"):
        _run(
            "sandbox_register_app",
            f"--api-id={platform.api_id}",
            "--api-key=wrong",
            "--from-metadata",
        )


@pytest.mark.django_db(databases="__all__")
def test_add_user_creates_group_user_and_membership():
    RegisteredApp.objects.create(api_id="app-1", api_key="k", app_host="http://127.0.0.1:9")
    output = _run(
        "sandbox_add_user",
        "--group=cld-9",
        "--user=usr-9",
        "--email=nine@example.com",
        "--role=Power User",
        "--name=Nina",
        "--surname=Nine",
        "--group-name=Nine Ltd",
        "--app=app-1",
    )
    assert "usr-9 is Power User of cld-9" in output
    membership = GroupMembership.objects.select_related("user", "group").get()
    assert (membership.user.email, membership.user.name, membership.group.name) == (
        "nine@example.com",
        "Nina",
        "Nine Ltd",
    )
    assert list(membership.group.apps.values_list("api_id", flat=True)) == ["app-1"]
    _run("sandbox_add_user", "--group=cld-9", "--user=usr-9", "--role=Admin")
    membership.refresh_from_db()
    assert membership.role == "Admin"
    assert PlatformUser.objects.get().email == "nine@example.com"


@pytest.mark.django_db(databases="__all__")
def test_add_user_refuses_bad_ids():
    with pytest.raises(CommandError, match="start with cld-"):
        _run("sandbox_add_user", "--group=9", "--user=usr-9")
    with pytest.raises(CommandError, match="Unknown app"):
        _run("sandbox_add_user", "--group=cld-9", "--user=usr-9", "--app=app-nope")
    with pytest.raises(CommandError, match="--user: A user uid looks like"):
        _run("sandbox_add_user", "--group=cld-9", "--user=usr-9/../x")
    with pytest.raises(CommandError, match="--group-name: Text without control characters"):
        _run("sandbox_add_user", "--group=cld-9", "--user=usr-9", "--group-name=Nine\x1bLtd")
    with pytest.raises(CommandError, match="--surname: Text without control characters"):
        _run("sandbox_add_user", "--group=cld-9", "--user=usr-9", "--surname=N\x01")
    assert not (Group.objects.exists() or PlatformUser.objects.exists())


def test_export_idp_cert_prints_the_signing_certificate(settings, tmp_path):
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "DATA_DIR": tmp_path}
    output = _run("sandbox_export_idp_cert")
    assert output.startswith("-----BEGIN CERTIFICATE-----")
    assert output == ensure_idp_key_pair().certificate_pem
    sha1 = _run("sandbox_export_idp_cert", "--algorithm=sha1")
    assert sha1 == ensure_sha1_key_pair().certificate_pem != output
    assert (tmp_path / "sha1" / "idp_certificate.pem").exists()


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_demo_setup_registers_the_demo_app_and_company(settings, tmp_path):
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "DATA_DIR": tmp_path}
    settings.SITE_URL = "http://127.0.0.1:8123"
    _run("demo_setup")
    _run("demo_setup")  # idempotent
    credentials = dict(
        line.split("=", 1) for line in (tmp_path / "demo_app.env").read_text().splitlines()
    )
    app = RegisteredApp.objects.get()
    assert (app.api_id, app.api_key, app.app_host) == (
        credentials["MAESTRANO_API_ID"],
        credentials["MAESTRANO_API_KEY"],
        "http://127.0.0.1:8123",
    )
    group = Group.objects.get(uid="cld-demo")
    assert group.name == "Demo Company"
    assert list(group.apps.all()) == [app]
    assert sorted(group.memberships.values_list("role", flat=True)) == ["Admin", "Member"]
    # The IdP's keys are made here, at set-up (both algorithms), never by a request.
    for folder in (tmp_path, tmp_path / "sha1"):
        assert (folder / "idp_private_key.pem").exists()
        assert (folder / "idp_certificate.pem").exists()
