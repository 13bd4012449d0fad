"""A form rendered for one company is not carried out in another (maestrano_accounts.company_forms).

Through the Django test client: a page is rendered in Acme, the user switches to Beta (in
another tab: the same session), then sends the page's form. The example project's POST
forms that act in the current company carry ``{% company_form_field %}``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from crm.models import Person
from maestrano_accounts.company_forms import COMPANY_FORM_FIELD
from maestrano_accounts.models import AdHocCharge, Company, Membership, Plan
from maestrano_sync.models import OutboxEntry
from tests.helpers.html_forms import post_form, post_forms
from tests.helpers.users import platform_user, sso_browser

User = get_user_model()

pytestmark = pytest.mark.django_db

REFUSED = "This form was for Acme; you are now in Beta. Nothing was changed."


@pytest.fixture
def acme():
    return Company.objects.create(preset="maestrano", group_uid="cld-acme", name="Acme")


@pytest.fixture
def beta():
    return Company.objects.create(preset="maestrano", group_uid="cld-beta", name="Beta")


@pytest.fixture
def admin(acme, beta):
    """An Admin of both companies."""
    user = platform_user("usr-1")
    Membership.objects.create(user=user, company=acme, role="Admin")
    Membership.objects.create(user=user, company=beta, role="Admin")
    return user


@pytest.fixture
def browser(admin, acme) -> Client:
    """Logged in through SSO, in Acme, with Django's CSRF check on as in a browser."""
    client = sso_browser(admin, acme, uid="usr-1")
    client.handler.enforce_csrf_checks = True
    return client


def switch(browser: Client, company: Company) -> None:
    """The switcher of the dashboard, sent as the browser sends it (another tab)."""
    form = post_form(browser.get("/dashboard/").text, "company-switcher")
    answer = browser.post(form.action, {**form.fields, "company_id": str(company.pk)})
    assert answer.status_code == 302


def messages_on_the_dashboard(browser: Client) -> list[str]:
    return [str(m) for m in browser.get("/dashboard/").context["messages"]]


def nothing_done() -> None:
    assert not Person.objects.filter(first_name="Meant").exists()
    assert not AdHocCharge.objects.exists()


# page, form id, what the user types
FORMS = [
    ("/people/new/", "record-form", {"first_name": "Meant", "last_name": "For Acme"}),
    ("/dashboard/", "buy-sms", {}),
    ("/billing/", "buy-sms", {}),
]
FORM_IDS = ["new-person", "buy-sms-on-the-dashboard", "buy-sms-on-the-billing-page"]


@pytest.mark.parametrize(("page", "form_id", "typed"), FORMS, ids=FORM_IDS)
def test_a_form_rendered_in_one_company_is_not_carried_out_in_another(
    browser, acme, beta, page, form_id, typed
):
    form = post_form(browser.get(page).text, form_id)
    assert form.fields[COMPANY_FORM_FIELD] == str(acme.pk)

    switch(browser, beta)
    sent = browser.post(form.action or page, {**form.fields, **typed})

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    nothing_done()
    assert messages_on_the_dashboard(browser) == [REFUSED]
    assert browser.get("/dashboard/").context["company"] == beta


@pytest.mark.parametrize(("page", "form_id", "typed"), FORMS, ids=FORM_IDS)
def test_a_form_sent_in_the_company_it_was_rendered_for_is_carried_out(
    browser, acme, beta, page, form_id, typed
):
    form = post_form(browser.get(page).text, form_id)
    switch(browser, beta)
    switch(browser, acme)  # and back: the form's company is current again

    sent = browser.post(form.action or page, {**form.fields, **typed})

    assert sent.status_code == 302
    assert sent.headers["Location"] != "/dashboard/"
    if typed:
        assert Person.objects.get(first_name="Meant").company == acme
    else:
        assert AdHocCharge.objects.get().company == acme
    assert REFUSED not in messages_on_the_dashboard(browser)


def test_a_company_the_user_was_removed_from_is_not_named(browser, admin, acme, beta):
    form = post_form(browser.get("/people/new/").text, "record-form")
    switch(browser, beta)
    Membership.objects.filter(user=admin, company=acme).update(is_active=False)
    Company.objects.filter(pk=acme.pk).update(name="Acme, renamed since")

    sent = browser.post("/people/new/", {**form.fields, "first_name": "Meant"})

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    nothing_done()
    assert messages_on_the_dashboard(browser) == [
        "This form was for another company; you are now in Beta. Nothing was changed."
    ]


def test_a_login_without_sso_is_protected_too(admin, acme, beta):
    browser = Client()
    browser.force_login(admin)
    browser.post("/maestrano/switch-company", {"company_id": str(acme.pk)})
    form = post_form(browser.get("/dashboard/").text, "buy-sms")

    browser.post("/maestrano/switch-company", {"company_id": str(beta.pk)})
    sent = browser.post(form.action, form.fields)

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    nothing_done()
    assert messages_on_the_dashboard(browser) == [REFUSED]


def test_a_form_without_the_field_is_not_concerned(browser, acme, beta):
    """The check is opt-in per form: a form (or a client) that does not send the field
    acts in the current company as before."""
    switch(browser, beta)
    token = browser.cookies["csrftoken"].value

    sent = browser.post(
        "/people/new/",
        {"first_name": "Meant", "last_name": "No field", "csrfmiddlewaretoken": token},
    )

    assert sent.status_code == 302
    assert Person.objects.get(first_name="Meant").company == beta


@pytest.fixture
def secret():
    """Another tenant's company: its name never shows to a user who is not a member."""
    return Company.objects.create(preset="maestrano", group_uid="cld-secret", name="Secret Co")


ODD_VALUES = ["", " ", "abc", "-1", "0", "9" * 40, "１", "1\x00", "1e3", "<b>1</b>", "secret"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_an_odd_company_value_is_refused_without_naming_a_company(browser, secret, value):
    form = post_form(browser.get("/people/new/").text, "record-form")
    value = str(secret.pk) if value == "secret" else value

    sent = browser.post(
        "/people/new/",
        {**form.fields, "first_name": "Meant", "last_name": "Odd", COMPANY_FORM_FIELD: value},
    )

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    nothing_done()
    assert messages_on_the_dashboard(browser) == [
        "This form was for another company; you are now in Acme. Nothing was changed."
    ]


def test_a_urlencoded_form_is_checked_too(browser, acme, beta):
    """The test client sends multipart/form-data unless told otherwise; browsers send
    forms without files urlencoded."""
    form = post_form(browser.get("/people/new/").text, "record-form")
    switch(browser, beta)

    sent = browser.post(
        "/people/new/",
        urlencode({**form.fields, "first_name": "Meant"}),
        content_type="application/x-www-form-urlencoded",
    )

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    nothing_done()
    assert messages_on_the_dashboard(browser) == [REFUSED]


def test_every_form_that_acts_in_the_company_names_it(browser, acme):
    """The example project's POST forms, on every page that has one: all but the logout and
    the company switcher carry the current company."""
    person = Person.objects.create(company=acme, first_name="Pat", last_name="Doe")
    parked = OutboxEntry.objects.create(
        company=acme,
        entity="people",
        content_type=ContentType.objects.get_for_model(Person),
        object_id=str(person.pk),
        operation=OutboxEntry.Operation.UPSERT,
        status=OutboxEntry.Status.PARKED,
        last_error="HTTP 422: refused",
    )
    plan = Plan.objects.create(name="Basic", price_cents=1000)
    pages = [
        "/dashboard/",
        "/billing/",
        f"/billing/plans/{plan.pk}/",
        "/people/new/",
        f"/people/{person.pk}/",
        f"/people/{person.pk}/delete/",
        "/invoices/new/",
        "/sync/settings/",
    ]
    seen = []
    for page in pages:
        answer = browser.get(page)
        assert answer.status_code == 200, page
        for form in post_forms(answer.text):
            if form.id in {"company-switcher"} or "logout" in form.action:
                continue
            assert form.fields.get(COMPANY_FORM_FIELD) == str(acme.pk), (page, form)
            seen.append((page, form.id or form.action))

    assert f"/sync/problems/outbox/{parked.pk}/retry/" in {what for _, what in seen}
    assert len(seen) >= 10
