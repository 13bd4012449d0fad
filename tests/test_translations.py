"""The reusable apps' text is translatable, and the French catalogues they ship are whole.

A site whose language is French (``LANGUAGE_CODE``, or ``LocaleMiddleware`` and the
browser's ``Accept-Language``) reads the apps' pages, flash messages and sync reasons in
French; each app's ``locale/fr`` catalogue is compiled (the ``.mo`` matches its ``.po``),
fully translated, and holds every string ``makemessages`` finds in the app (docs/install.md,
'Translations').
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.test import override_settings
from django.utils import translation

from maestrano_accounts.company_forms import COMPANY_FORM_FIELD
from maestrano_accounts.models import Company, Membership
from maestrano_sync import status
from maestrano_sync.history import describe_counts
from maestrano_sync.models import SyncRun
from tests.helpers.users import platform_user, sso_browser

ROOT = Path(__file__).resolve().parent.parent
APPS = ("maestrano_accounts", "maestrano_sync", "maestrano_integration")
CONSUME = "/maestrano/auth/saml/consume"


def _with_locale_middleware(middleware: list[str]) -> list[str]:
    """The project's middleware with Django's LocaleMiddleware where Django places it."""
    after = middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
    return [*middleware[:after], "django.middleware.locale.LocaleMiddleware", *middleware[after:]]


# --- pages and messages --------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="fr")
def test_the_sso_error_page_is_in_the_sites_language(client, two_presets):
    answer = client.post(CONSUME, {"SAMLResponse": "this is *not* base64!"})

    assert answer.status_code == 400
    page = answer.content.decode()
    assert "<h1>Nous n'avons pas pu vous connecter</h1>" in page
    assert "La réponse de connexion de la place de marché n'a pas été acceptée" in page
    assert "We could not log you in" not in page


@pytest.mark.django_db
def test_with_locale_middleware_the_sso_error_page_follows_the_browsers_language(
    client, two_presets, settings
):
    settings.MIDDLEWARE = _with_locale_middleware(settings.MIDDLEWARE)

    french = client.post(
        CONSUME, {"SAMLResponse": "this is *not* base64!"}, headers={"accept-language": "fr"}
    )
    english = client.post(
        CONSUME, {"SAMLResponse": "this is *not* base64!"}, headers={"accept-language": "en"}
    )

    assert "Nous n'avons pas pu vous connecter" in french.content.decode()
    assert "We could not log you in" in english.content.decode()


@pytest.fixture
def acme_admin_browser():
    acme = Company.objects.create(preset="maestrano", group_uid="cld-acme", name="Acme")
    user = platform_user("usr-1")
    Membership.objects.create(user=user, company=acme, role="Admin")
    return sso_browser(user, acme, uid="usr-1")


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="fr")
def test_the_billing_page_is_in_the_sites_language(acme_admin_browser):
    page = acme_admin_browser.get("/billing/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "<h1>Facturation de Acme</h1>" in text
    assert "Aucun achat supplémentaire." in text
    assert '<th scope="col">Montant</th>' in text
    assert "Billing for" not in text


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="fr")
def test_a_flash_message_is_in_the_sites_language(acme_admin_browser):
    """A form sent for a company the session cannot work in: refused, and said in French."""
    answer = acme_admin_browser.post(
        "/billing/buy/sms/", {COMPANY_FORM_FIELD: "999999", "idempotency_key": "k"}, follow=True
    )

    said = [str(message) for message in answer.context["messages"]]
    assert said == [
        "Ce formulaire concernait une autre entreprise ; vous êtes maintenant dans Acme. "
        "Rien n'a été modifié."
    ]


def test_the_sync_reasons_labels_and_counts_are_in_the_active_language():
    with translation.override("fr"):
        parked = status.RecordSyncStatus(
            state=status.PARKED, reason=str(status.PLAIN_REASONS[status.PARKED])
        )
        counts = describe_counts(
            SyncRun(kind=SyncRun.Kind.PUSH, counts={"sent": 2, "parked": 1, "requests": 1})
        )
        settings_words = str(status.SETTINGS_WORDS)
        label = parked.label

    assert label == "Refusée par Connec!"
    assert parked.reason.startswith("Connec! n'accepte pas une valeur de cette fiche")
    assert counts == "2 fiches envoyées, 1 refusée ou abandonnée, en 1 requête"
    assert settings_words == "réglages de synchronisation"
    # Outside the override, English as before.
    assert status.RecordSyncStatus(state=status.PARKED).label == "Refused by Connec!"


# --- the catalogues ------------------------------------------------------------------------


def _catalogue(app: str) -> Path:
    return ROOT / app / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def _read_po(path: Path):
    with path.open("rb") as file:
        return read_po(file, locale="fr")


def _key(message) -> tuple[object, str | None]:
    return (tuple_or_str(message.id), message.context)


_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def tuple_or_str(value):
    """Babel reads a plural's forms from a .mo as a list, from a .po as a tuple."""
    return tuple(value) if isinstance(value, list) else value


def _placeholders(text: str) -> set[str]:
    return {named or braced for named, braced in _PLACEHOLDER.findall(text)}


@pytest.mark.parametrize("app", APPS)
def test_the_french_catalogue_is_fully_translated_and_its_mo_is_up_to_date(app):
    po_path = _catalogue(app)
    catalogue = _read_po(po_path)
    with po_path.with_suffix(".mo").open("rb") as file:
        compiled = read_mo(file)

    messages = [message for message in catalogue if message.id]
    assert messages
    assert not catalogue.fuzzy
    for message in messages:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        assert "fuzzy" not in message.flags, message.id
        assert all(strings), f"untranslated: {message.id!r}"
        for string in strings[1:] or strings:  # every placeholder kept, none invented
            assert _placeholders(string) == _placeholders(ids[-1]), message.id
        if len(strings) > 1:  # a singular may say "one" in words ("every day"), no more
            assert _placeholders(strings[0]) <= _placeholders(ids[-1]), message.id
        in_mo = compiled.get(message.id, context=message.context)
        assert in_mo is not None, f"not compiled: {message.id!r}"
        assert tuple_or_str(in_mo.string) == message.string, (
            f"the .mo is older than the .po: {message.id!r}"
        )
    assert {_key(m) for m in compiled if m.id} == {_key(m) for m in messages}


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="xgettext (GNU gettext) is needed")
@pytest.mark.parametrize("app", APPS)
def test_the_french_catalogue_holds_every_string_makemessages_finds(app, tmp_path):
    """makemessages, run into a copy of the app (its committed catalogue set aside), finds
    exactly the msgids the committed catalogue has: none missing, none obsolete."""
    copy = tmp_path / app
    shutil.copytree(
        ROOT / app,
        copy,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "django.po", "django.mo"),
    )
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # -P: the copy's modules (maestrano_integration.http...) must not shadow the stdlib's.
    subprocess.run(
        [sys.executable, "-P", "-m", "django", "makemessages", "-l", "fr", "--no-location"],
        cwd=copy,
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )

    found = {_key(m) for m in _read_po(copy / "locale/fr/LC_MESSAGES/django.po") if m.id}
    committed = {_key(m) for m in _read_po(_catalogue(app)) if m.id}
    assert found - committed == set(), "missing from the committed catalogue: run makemessages"
    assert committed - found == set(), "obsolete in the committed catalogue: run makemessages"
