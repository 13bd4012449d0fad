"""The example application's pages through the Django test client: tenant isolation first."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from maestrano_sync.models import InboxEntry, OutboxEntry, SyncRun, SyncRunEntity
from maestrano_sync.services import link_record
from tests.helpers.html import dangling_references, described

User = get_user_model()

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    # These tests are about the pages: saves write outbox rows, nothing is sent to Connec!
    # (pushing is the sync app's, tested there and in the browser story).
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def companies():
    ours = Company.objects.create(preset="maestrano", group_uid="cld-ours", name="Ours Ltd")
    theirs = Company.objects.create(preset="maestrano", group_uid="cld-theirs", name="Theirs Inc")
    return ours, theirs


@pytest.fixture
def member(companies):
    ours, _ = companies
    user = User.objects.create_user("ada", first_name="Ada", last_name="Lovelace")
    Membership.objects.create(user=user, company=ours, role="Admin")
    return user


def log_in(client, user, company):
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return client


@pytest.fixture
def app(client, member, companies):
    return log_in(client, member, companies[0])


@pytest.fixture
def records(companies):
    """One record of each kind in both companies."""
    made = {}
    for company in companies:
        tag = company.group_uid
        organization = Organization.objects.create(company=company, name=f"Org of {tag}")
        person = Person.objects.create(
            company=company, first_name="Pat", last_name=tag, organization=organization
        )
        item = Item.objects.create(company=company, code=f"I-{tag}", name=f"Item of {tag}")
        invoice = Invoice.objects.create(
            company=company, number=f"INV-{tag}", organization=organization
        )
        made[tag] = {
            "organizations": organization,
            "people": person,
            "items": item,
            "invoices": invoice,
        }
    return made


PLURALS = ["organizations", "people", "items", "invoices"]


@pytest.mark.parametrize("plural", PLURALS)
def test_a_list_shows_only_the_current_companys_records(app, records, plural):
    response = app.get(f"/{plural}/")

    assert response.status_code == 200
    assert "cld-ours" in response.text
    assert "cld-theirs" not in response.text


@pytest.mark.parametrize("plural", PLURALS)
@pytest.mark.parametrize("suffix", ["", "delete/"])
def test_another_companys_record_is_not_found(app, records, plural, suffix):
    foreign = records["cld-theirs"][plural]
    url = f"/{plural}/{foreign.pk}/{suffix}"

    assert app.get(url).status_code == 404
    assert app.post(url, {"name": "Hijacked", "first_name": "Hijacked"}).status_code == 404
    assert type(foreign).objects.filter(pk=foreign.pk).exists()
    foreign.refresh_from_db()
    assert "Hijacked" not in str(foreign)


def test_creating_a_person_puts_it_in_the_current_company(app, records, companies):
    organization = records["cld-ours"]["organizations"]

    response = app.post(
        "/people/new/",
        {"first_name": "Grace", "last_name": "Hopper", "organization": organization.pk},
    )

    person = Person.objects.get(first_name="Grace")
    assert response.status_code == 302
    assert response["Location"] == f"/people/{person.pk}/"
    assert person.company == companies[0]
    assert person.organization == organization


def test_a_form_refuses_another_companys_organization(app, records):
    foreign = records["cld-theirs"]["organizations"]

    response = app.post(
        "/people/new/", {"first_name": "Grace", "last_name": "Hopper", "organization": foreign.pk}
    )

    assert response.status_code == 400
    assert "organization" in response.context["form"].errors
    assert not Person.objects.filter(first_name="Grace").exists()


def test_editing_a_person_saves_the_change_and_shows_its_connec_id(app, records, companies):
    person = records["cld-ours"]["people"]
    link_record(company=companies[0], entity="people", obj=person, connec_id="con-123")

    response = app.post(f"/people/{person.pk}/", {"first_name": "Patricia", "last_name": "Ours"})
    page = app.get(f"/people/{person.pk}/")

    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.first_name, person.last_name) == ("Patricia", "Ours")
    assert "con-123" in page.text
    assert "/sandbox/connec/groups/cld-ours/people/" not in page.text  # not a uuid: no link


def test_a_person_needs_a_name(app):
    response = app.post("/people/new/", {"job_title": "Nobody"})

    assert response.status_code == 400
    assert not Person.objects.exists()


def test_a_refused_form_names_its_errors_under_existing_ids(app):
    response = app.post("/people/new/", {"first_name": "Ada", "email": "not an address"})

    page = described(response.text)
    assert page.references["email"] == ["id_email_error"]
    assert "valid email" in page.texts["id_email_error"]
    assert dangling_references(response.text) == {}


def test_an_item_code_is_unique_within_the_company_only(app, records):
    taken_elsewhere = app.post("/items/new/", {"code": "I-cld-theirs", "name": "Same code"})
    taken_here = app.post("/items/new/", {"code": "I-cld-ours", "name": "Clash"})

    assert taken_elsewhere.status_code == 302
    assert taken_here.status_code == 400
    assert "code" in taken_here.context["form"].errors


def test_an_invoice_is_saved_with_numbered_lines_and_their_total(app, records, companies):
    ours = records["cld-ours"]
    data = {
        "type": "CUSTOMER",
        "number": "INV-NEW",
        "status": "DRAFT",
        "transaction_date": "2024-05-01",
        "due_date": "2024-05-31",
        "organization": ours["organizations"].pk,
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-0-item": ours["items"].pk,
        "lines-0-description": "Widgets",
        "lines-0-quantity": "3",
        "lines-0-unit_price": "2.50",
        "lines-1-description": "Setup",
        "lines-1-quantity": "1",
        "lines-1-unit_price": "10",
    }

    response = app.post("/invoices/new/", data)

    invoice = Invoice.objects.get(number="INV-NEW")
    assert response.status_code == 302
    assert invoice.company == companies[0]
    assert invoice.total == Decimal("17.50")
    assert invoice.transaction_date == dt.date(2024, 5, 1)
    lines = list(invoice.lines.order_by("line_number"))
    assert [(line.line_number, line.description) for line in lines] == [
        (1, "Widgets"),
        (2, "Setup"),
    ]
    assert {line.company_id for line in lines} == {companies[0].pk}


def test_removing_an_invoice_line_renumbers_the_rest_and_updates_the_total(app, records):
    invoice = records["cld-ours"]["invoices"]
    first, second = (
        InvoiceLine.objects.create(
            company=invoice.company,
            invoice=invoice,
            line_number=number,
            description=f"L{number}",
            quantity=1,
            unit_price=Decimal(price),
        )
        for number, price in ((1, "4"), (2, "6"))
    )
    data = {
        "type": "CUSTOMER",
        "number": invoice.number,
        "status": "DRAFT",
        "organization": invoice.organization_id,
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "2",
        "lines-0-id": first.pk,
        "lines-0-description": "L1",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "4",
        "lines-0-DELETE": "on",
        "lines-1-id": second.pk,
        "lines-1-description": "L2",
        "lines-1-quantity": "2",
        "lines-1-unit_price": "6",
    }

    response = app.post(f"/invoices/{invoice.pk}/", data)

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.total == Decimal("12.00")
    assert list(invoice.lines.values_list("line_number", "description")) == [(1, "L2")]


def test_the_invoice_form_shows_quantities_without_trailing_zeros(app, records):
    invoice = records["cld-ours"]["invoices"]
    for number, quantity in ((1, "10"), (2, "2.5")):
        InvoiceLine.objects.create(
            company=invoice.company,
            invoice=invoice,
            line_number=number,
            quantity=Decimal(quantity),
            unit_price=Decimal(1),
        )

    text = app.get(f"/invoices/{invoice.pk}/").content.decode()

    assert 'name="lines-0-quantity" value="10"' in text
    assert 'name="lines-1-quantity" value="2.5"' in text


def test_an_invoice_line_cannot_sell_another_companys_item(app, records):
    ours, theirs = records["cld-ours"], records["cld-theirs"]
    data = {
        "type": "CUSTOMER",
        "status": "DRAFT",
        "organization": ours["organizations"].pk,
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-0-item": theirs["items"].pk,
        "lines-0-quantity": "1",
    }

    response = app.post("/invoices/new/", data)

    assert response.status_code == 400
    assert not InvoiceLine.objects.filter(
        item=theirs["items"], invoice__company__group_uid="cld-ours"
    )


def test_deleting_a_record_removes_it(app, records):
    person = records["cld-ours"]["people"]

    response = app.post(f"/people/{person.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/people/"
    assert not Person.objects.filter(pk=person.pk).exists()


def test_deleting_an_organization_still_invoiced_is_refused_with_a_message(app, records):
    organization = records["cld-ours"]["organizations"]

    response = app.post(f"/organizations/{organization.pk}/delete/", follow=True)

    assert response.status_code == 200
    assert Organization.objects.filter(pk=organization.pk).exists()
    assert "still used" in response.text


def test_lists_search_and_paginate(app, companies):
    Person.objects.bulk_create(
        Person(company=companies[0], first_name="Sam", last_name=f"Number{n:03d}")
        for n in range(60)
    )

    first_page = app.get("/people/")
    second_page = app.get("/people/?page=2")
    search = app.get("/people/?q=Number059")

    assert len(first_page.context["rows"]) == 50
    assert len(second_page.context["rows"]) == 10
    assert [row["record"].last_name for row in search.context["rows"]] == ["Number059"]


def test_a_search_of_several_words_finds_the_records_holding_each_of_them(app, companies):
    ours, theirs = companies
    Person.objects.bulk_create(
        [
            Person(company=ours, first_name="Ada", last_name="Lovelace", job_title="Analyst"),
            Person(company=ours, first_name="Ada", last_name="Byron"),
            Person(company=ours, first_name="Augusta", last_name="Lovelace"),
            Person(company=theirs, first_name="Ada", last_name="Lovelace"),
        ]
    )

    def found(query):
        response = app.get("/people/", {"q": query})
        assert response.status_code == 200
        return sorted(
            f"{row['record'].first_name} {row['record'].last_name}"
            for row in response.context["rows"]
        )

    assert found("Ada Lovelace") == ["Ada Lovelace"]  # ours only
    assert found("  lovelace   ADA ") == ["Ada Lovelace"]
    assert found("Ada") == ["Ada Byron", "Ada Lovelace"]
    assert found("Lovelace analyst") == ["Ada Lovelace"]
    assert found("Ada Nobody") == []
    # A word said again is one condition.
    assert found("a " * 40 + "Lovelace") == ["Ada Lovelace", "Augusta Lovelace"]


@pytest.mark.parametrize("path", ["/people/", "/people/new/", "/invoices/1/delete/"])
def test_anonymous_visitors_are_sent_to_log_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/?next=")


def test_the_import_progress_endpoint_refuses_anonymous_visitors(client):
    response = client.get("/sync/import-progress.json")

    assert response.status_code == 403
    assert response.json() == {"error": "No current company"}


def test_a_user_without_a_company_is_sent_back_to_the_landing_page(client):
    client.force_login(User.objects.create_user("loner"))

    response = client.get("/people/")

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_user_removed_from_the_company_loses_access(client, member, companies, records):
    log_in(client, member, companies[0])
    Membership.objects.filter(user=member).update(is_active=False)

    assert client.get("/people/").status_code == 302
    person = records["cld-ours"]["people"]
    assert client.get(f"/people/{person.pk}/").status_code == 302


def test_the_import_progress_endpoint_reports_the_current_companys_run(app, companies):
    ours, theirs = companies
    run = SyncRun.objects.create(company=ours)
    SyncRunEntity.objects.create(run=run, entity="people", position=0, total=10, created=4)
    SyncRun.objects.create(company=theirs, status=SyncRun.Status.FAILED)

    progress = app.get("/sync/import-progress.json").json()

    assert progress["status"] == "running"
    assert progress["label"] == "Running"
    assert progress["running"] is True
    assert progress["percent"] == 40
    assert progress["entities"] == [
        {
            "entity": "people",
            "total": 10,
            "processed": 4,
            "failed": 0,
            "done": False,
            "percent": 40,
        }
    ]


def test_the_dashboard_shows_company_members_billing_and_sync(app, records, companies):
    link_record(
        company=companies[0], entity="people", obj=records["cld-ours"]["people"], connec_id="c-1"
    )

    response = app.get("/dashboard/")

    assert response.status_code == 200
    text = response.text
    assert 'id="company-name">Ours Ltd<' in text
    assert "Ada Lovelace" in text and "Admin" in text
    assert 'id="buy-sms"' in text and 'action="/billing/buy/sms/"' in text
    assert 'data-entity="people"' in text
    assert "Theirs Inc" not in text
    mapped = dict(re.findall(r'data-entity="(\w+)">.*?class="mapped">(\d+)<', text, re.S))
    assert mapped == {"organizations": "0", "people": "1", "items": "0", "invoices": "0"}


@pytest.mark.parametrize(
    "billing",
    [{"PRODUCTS": {}}, {"ENABLED": False}],
    ids=["no-sms-product", "billing-off"],
)
def test_the_dashboard_offers_the_sms_pack_only_when_it_can_be_bought(app, settings, billing):
    """The button buys the product "sms" of ``MAESTRANO["BILLING"]["PRODUCTS"]``: none
    configured, or billing off, and the dashboard offers nothing (its link to the charges
    stays)."""
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": billing}

    text = app.get("/dashboard/").text

    assert 'id="buy-sms"' not in text and "/billing/buy/" not in text
    assert 'id="purchases-admins-only"' not in text
    assert 'href="/billing/">All charges (0)</a>' in text


def test_the_dashboards_in_connec_count_is_the_linked_records_the_list_shows(
    app, companies, records
):
    from maestrano_sync.inbox import apply_records

    ours = companies[0]
    kept = Person.objects.create(company=ours, first_name="Kept", last_name="Here")
    gone_here = records["cld-ours"]["people"]
    for number, person in enumerate((kept, gone_here, records["cld-theirs"]["people"])):
        link_record(company=person.company, entity="people", obj=person, connec_id=f"c-{number}")
    gone_there = Person.objects.create(company=ours, first_name="Gone", last_name="There")
    link_record(company=ours, entity="people", obj=gone_there, connec_id="c-inactive")

    # Deleted here (Connec! gets it as inactive) and deleted in Connec! (it keeps it inactive).
    assert app.post(f"/people/{gone_here.pk}/delete/").status_code == 302
    apply_records(
        company=ours,
        entity="people",
        records=[{"id": "c-inactive", "status": "INACTIVE", "updated_at": "2030-01-01T00:00:00Z"}],
    )

    text = app.get("/dashboard/").text
    mapped = dict(re.findall(r'data-entity="(\w+)">.*?class="mapped">(\d+)<', text, re.S))
    listed = app.get("/people/").text
    assert mapped["people"] == "1"
    assert listed.count('data-sync-state="') == 1 and 'data-sync-state="local"' not in listed


def parked(company, person, *, entity="people"):
    return OutboxEntry.objects.create(
        company=company,
        entity=entity,
        content_type=ContentType.objects.get_for_model(Person),
        object_id=str(person.pk),
        operation=OutboxEntry.Operation.UPSERT,
        status=OutboxEntry.Status.PARKED,
        attempts=8,
        last_error="422: email is invalid",
    )


def test_the_dashboard_shows_parked_pushes_with_their_error(app, records, companies):
    ours = parked(companies[0], records["cld-ours"]["people"])
    parked(companies[1], records["cld-theirs"]["people"])

    text = app.get("/dashboard/").text

    row = re.search(r'<tr data-entity="people">.*?</tr>', text, re.S).group(0)
    attention = re.search(r'class="attention">(.*?)</td>', row, re.S).group(1)
    assert re.search(r'<span class="badge bad refused">1 refused by Connec!</span>', attention)
    assert "not sent" not in attention  # refused, not given up
    assert "422" not in row  # the technical reason is under Sync problems' details
    problems = re.search(r'<section class="card" id="problems">.*?</section>', text, re.S).group(0)
    assert problems.count('data-kind="outbox"') == 1
    reason = re.search(r'<p class="reason">(.*?)</p>', problems, re.S).group(1)
    assert reason.startswith("Connec! does not accept a value of this record")
    assert "422" not in reason
    details = re.search(r'<details class="technical">.*?</details>', problems, re.S).group(0)
    assert "422: email is invalid" in details
    assert f'action="/sync/problems/outbox/{ours.pk}/retry/"' in problems


def test_an_edit_waits_in_the_outbox_shown_on_the_dashboard(app, records):
    def people_outbox() -> int:
        text = app.get("/dashboard/").text
        row = re.search(r'<tr data-entity="people">.*?</tr>', text, re.S).group(0)
        return int(re.search(r'class="outbox">(\d+)<', row).group(1))

    before = people_outbox()
    person = records["cld-ours"]["people"]
    app.post(f"/people/{person.pk}/", {"first_name": "Queued", "last_name": "Change"})

    assert people_outbox() == before + 1


def test_retry_requeues_the_current_companys_parked_pushes_only(app, records, companies):
    ours = parked(companies[0], records["cld-ours"]["people"])
    theirs = parked(companies[1], records["cld-theirs"]["people"])

    response = app.post("/sync/retry-parked/", {"entity": "people"})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/#messages"
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.status, ours.attempts) == (OutboxEntry.Status.PENDING, 0)
    assert theirs.status == OutboxEntry.Status.PARKED


def test_retry_requeues_the_current_companys_failed_notifications(app, companies):
    ours, theirs = (
        InboxEntry.objects.create(
            preset="maestrano", company=company, payload={}, status=InboxEntry.Status.FAILED
        )
        for company in companies
    )

    response = app.post("/sync/retry-parked/", {"entity": "inbox"})

    assert response.status_code == 302
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == InboxEntry.Status.PENDING
    assert theirs.status == InboxEntry.Status.FAILED


def test_retry_is_post_only_and_knows_its_entities(app):
    assert app.get("/sync/retry-parked/").status_code == 405
    assert app.post("/sync/retry-parked/", {"entity": "bogus"}).status_code == 404


def test_a_synced_record_links_to_its_page_on_the_platforms_host(app, records, companies, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "PRESETS": {"maestrano": {"api": {"host": "http://localhost:9999/sandbox"}}},
    }
    person = records["cld-ours"]["people"]
    connec_id = "0b9e8f5e-3a7c-4b1e-9f3e-2d6c1f0a7b11"
    link_record(company=companies[0], entity="people", obj=person, connec_id=connec_id)

    page = app.get(f"/people/{person.pk}/").text

    expected = f"http://localhost:9999/sandbox/connec/groups/cld-ours/people/{connec_id}/"
    assert f'href="{expected}" id="sandbox-record"' in page
