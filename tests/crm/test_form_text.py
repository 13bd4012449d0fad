"""The example application's forms refuse a POSTed form that is not UTF-8 text.

Django reads such a form leniently (each bad byte becomes U+FFFD), and the record was
saved with text its author never typed. The pages answer 400 naming the field and
store nothing (``maestrano_integration.request_text.form_problem``, the SSO forms' rule).
"""

from __future__ import annotations

import html

import pytest

from crm.models import Invoice, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.company_settings import policy_for
from maestrano_sync.models import OutboxEntry, SyncSettingsChange
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-text", name="Text Ltd")


@pytest.fixture
def app(client, company):
    """The test client logged in as an Admin of ``company``, as the pages' tests do."""
    log_in_to_company(client, company, role="Admin")
    return client


def post(client, path: str, body: bytes, **extra):
    return client.generic("POST", path, data=body, content_type=FORM, **extra)


def text(response) -> str:
    """The page's text as a person reads it (the HTML's entities decoded)."""
    return html.unescape(response.content.decode())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # "Café" in Latin-1, percent-encoded: Django read "Caf\ufffd".
        (b"name=Caf%E9&is_customer=on", "form field 'name' is not valid UTF-8"),
        (b"name=Caf\xe9&is_customer=on", "the form is not valid UTF-8"),
        (b"name=Cafe&is_customer=on&%E9=1", "a form field name is not valid UTF-8"),
    ],
)
def test_a_new_record_whose_form_is_not_utf8_is_refused_and_not_stored(app, body, reason):
    response = post(app, "/organizations/new/", body)

    assert response.status_code == 400
    assert reason in text(response)
    assert not Organization.objects.exists()
    assert not OutboxEntry.objects.exists()


def test_an_edit_whose_form_is_not_utf8_leaves_the_record_as_it_was(app, company):
    person = Person.objects.create(company=company, first_name="Zoe", last_name="Kept")

    response = post(app, f"/people/{person.pk}/", b"first_name=Zo%EB&last_name=Kept")

    assert response.status_code == 400
    assert "form field 'first_name' is not valid UTF-8" in text(response)
    person.refresh_from_db()
    assert person.first_name == "Zoe"


def test_an_invoice_whose_line_is_not_utf8_is_refused_and_not_stored(app, company):
    organization = Organization.objects.create(company=company, name="Customer")
    body = (
        f"type=CUSTOMER&number=INV-1&status=DRAFT&organization={organization.pk}"
        "&lines-TOTAL_FORMS=1&lines-INITIAL_FORMS=0&lines-0-quantity=1&lines-0-unit_price=2"
        "&lines-0-description=Cr%E8me"
    ).encode()

    response = post(app, "/invoices/new/", body)

    assert response.status_code == 400
    assert "form field 'lines-0-description' is not valid UTF-8" in text(response)
    assert not Invoice.objects.exists()


def test_the_sync_settings_form_not_utf8_changes_nothing(app, company):
    body = (
        b"import_since=&direction_organizations=both&direction_people=both"
        b"&direction_items=both&direction_invoices=both&note=%FF"
    )

    response = post(app, "/sync/settings/", body)  # "enabled" left out: turn it off

    assert response.status_code == 400
    assert "form field 'note' is not valid UTF-8" in text(response)
    assert policy_for(company_id=company.pk).enabled
    assert not SyncSettingsChange.objects.exists()


def test_a_delete_or_retry_form_not_utf8_is_refused(app, company):
    person = Person.objects.create(company=company, first_name="Pat", last_name="Kept")

    deleted = post(app, f"/people/{person.pk}/delete/", b"confirm=%FF")
    retried = post(app, "/sync/retry-parked/", b"entity=people%FF")
    problem = post(app, "/sync/problems/outbox/1/retry/", b"next=%2Fpeople%2F%FF")

    for response, field in ((deleted, "confirm"), (retried, "entity"), (problem, "next")):
        assert response.status_code == 400
        assert f"form field '{field}' is not valid UTF-8" in text(response)
    assert Person.objects.filter(pk=person.pk).exists()


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", [None, BROWSER_ACCEPT])
def test_a_browser_gets_the_sites_400_page_with_the_reason(app, company, accept):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    response = post(app, "/organizations/new/", b"name=Caf%E9&is_customer=on", **extra)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "400.html" in [t.name for t in response.templates]
    page = text(response)
    assert "<title>Request not understood · Acme CRM</title>" in page
    assert "The form is refused: form field 'name' is not valid UTF-8 once percent-decoded" in page
    assert "Nothing was changed." in page
    # The site's layout, in the request's context: the user's navigation.
    assert 'id="current-user">ada</span>' in page
    assert f"{company.name}</a>" in page
    assert not Organization.objects.exists()


def test_a_client_that_prefers_json_gets_the_reason_as_json(app):
    response = post(app, "/organizations/new/", b"name=%FF", HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The form is refused: form field 'name' is not valid UTF-8 once "
        "percent-decoded (invalid start byte at byte 0)."
    }


def test_a_form_in_utf8_is_saved_as_sent(app):
    body = "name=Caf%C3%A9+\ufffd&is_customer=on".encode()

    response = post(app, "/organizations/new/", body)

    assert response.status_code == 302
    assert Organization.objects.get().name == "Café \ufffd"  # a U+FFFD the client did send


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in_first(client):
    response = post(client, "/organizations/new/", b"name=%FF")

    assert response.status_code == 302
    assert not Organization.objects.exists()
