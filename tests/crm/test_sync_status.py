"""One sync status per record (maestrano_sync.status), as the record pages, lists and dashboard
show it."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from crm.models import Person
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from maestrano_sync.models import IdMap, InboxEntry, OutboxEntry, SyncRecordError
from maestrano_sync.services import link_record

pytestmark = pytest.mark.django_db

CONNEC_ID = "0b9e8f5e-3a7c-4b1e-9f3e-2d6c1f0a7b11"


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def company():
    return Company.objects.create(
        preset="maestrano",
        group_uid="cld-ours",
        name="Ours Ltd",
        currency="AUD",
        country="AU",
        timezone="Australia/Sydney",
    )


def signed_in(client, company, *, role):
    user = get_user_model().objects.create_user(f"user-{role}".lower().replace(" ", "-"))
    Membership.objects.create(user=user, company=company, role=role)
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return client


@pytest.fixture
def admin(client, company):
    return signed_in(client, company, role="Admin")


@pytest.fixture
def person(company):
    return Person.objects.create(company=company, first_name="Pat", last_name="Doe")


def outbox_row(company, person, **fields):
    return OutboxEntry.objects.create(
        company=company,
        entity="people",
        content_type=ContentType.objects.get_for_model(Person),
        object_id=str(person.pk),
        operation=OutboxEntry.Operation.UPSERT,
        **fields,
    )


def state_on_page(client, person) -> str:
    page = client.get(f"/people/{person.pk}/").text
    return re.search(r'id="sync-status"><span class="badge[^"]*" data-sync-state="(\w+)"', page)[1]


def state_in_list(client, person) -> str:
    page = client.get("/people/").text
    row = re.search(rf'<tr data-pk="{person.pk}">.*?</tr>', page, re.S)[0]
    return re.search(r'data-sync-state="(\w+)"', row)[1]


def test_a_record_never_sent_is_not_called_synced(admin, company, person):
    assert state_on_page(admin, person) == "queued"  # the save wrote an outbox row
    OutboxEntry.objects.filter(company=company).delete()  # e.g. saved while sync was off
    assert state_on_page(admin, person) == "local"
    assert admin.get(f"/people/{person.pk}/sync.json").json()["state"] == "local"


def test_a_saved_change_is_queued_until_connec_acknowledges_it(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    assert state_on_page(admin, person) == "synced"

    admin.post(f"/people/{person.pk}/", {"first_name": "Pat", "last_name": "Changed"})

    assert state_on_page(admin, person) == "queued"
    assert state_in_list(admin, person) == "queued"
    OutboxEntry.objects.filter(company=company).update(status=OutboxEntry.Status.DONE)
    IdMap.objects.filter(company=company).update(updated_at=timezone.now())
    assert state_on_page(admin, person) == "synced"


def test_a_transient_failure_shows_retrying_with_the_next_attempt(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    next_attempt = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    outbox_row(company, person, attempts=2, next_attempt_at=next_attempt, last_error="HTTP 503")

    page = admin.get(f"/people/{person.pk}/").text

    assert 'data-sync-state="retrying"' in page
    # In the company's timezone, with the zone: 03:04 UTC is 14:04 in Sydney (summer).
    assert 'next attempt <span id="sync-at">2 Jan 2030, 14:04 AEDT</span>' in page
    assert "HTTP 503" in page
    status = admin.get(f"/people/{person.pk}/sync.json").json()
    # The page's poll shows a later attempt's time as the page does.
    assert (status["state"], status["at_text"]) == ("retrying", "2 Jan 2030, 14:04 AEDT")


def test_a_parked_change_shows_its_reason_and_an_admin_can_retry_it(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    row = outbox_row(
        company, person, status=OutboxEntry.Status.PARKED, attempts=1, last_error="HTTP 422: bad"
    )

    page = admin.get(f"/people/{person.pk}/").text
    assert 'data-sync-state="parked"' in page and "HTTP 422: bad" in page
    assert f'action="/sync/problems/outbox/{row.pk}/retry/"' in page
    assert state_in_list(admin, person) == "parked"

    response = admin.post(
        f"/sync/problems/outbox/{row.pk}/retry/", {"next": f"/people/{person.pk}/"}
    )

    assert response.status_code == 302 and response["Location"] == f"/people/{person.pk}/"
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboxEntry.Status.PENDING, 0)
    assert state_on_page(admin, person) == "queued"


def test_a_member_sees_problems_but_cannot_retry_them(client, company, person):
    member = signed_in(client, company, role="Member")
    row = outbox_row(company, person, status=OutboxEntry.Status.PARKED, last_error="HTTP 422")

    assert "/retry/" not in member.get(f"/people/{person.pk}/").text
    assert "/retry/" not in member.get("/dashboard/").text
    response = member.post(f"/sync/problems/outbox/{row.pk}/retry/")

    assert response.status_code == 403
    assert "You are not allowed to do this" in response.text
    row.refresh_from_db()
    assert row.status == OutboxEntry.Status.PARKED
    assert member.post("/sync/retry-parked/", {"entity": "people"}).status_code == 403


def test_a_connec_change_that_could_not_be_applied_is_shown_on_the_record(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    SyncRecordError.objects.create(
        company=company, entity="people", connec_id=CONNEC_ID, reason="last_name: too long"
    )

    page = admin.get(f"/people/{person.pk}/").text

    assert 'data-sync-state="not_applied"' in page and "last_name: too long" in page
    dashboard = admin.get("/dashboard/").text
    problems = re.search(r'id="problems">.*?</section>', dashboard, re.S)[0]
    assert 'data-kind="record"' in problems and "last_name: too long" in problems
    assert f'href="/people/{person.pk}/"' in problems
    # A later successful exchange for the record (the IdMap row touched) heals it.
    IdMap.objects.filter(company=company).update(updated_at=timezone.now())
    assert state_on_page(admin, person) == "synced"


def test_a_failed_notification_marks_the_records_it_carried(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    entry = InboxEntry.objects.create(
        preset="maestrano",
        company=company,
        payload={"people": [{"id": CONNEC_ID, "last_name": "x" * 500}]},
        record_count=1,
        status=InboxEntry.Status.FAILED,
        last_error="DataError: value too long",
    )

    assert state_on_page(admin, person) == "not_applied"
    response = admin.post(f"/sync/problems/notification/{entry.pk}/retry/")

    assert response["Location"] == "/dashboard/#messages"
    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.PENDING


def test_retry_answers_404_for_unknown_kinds_and_other_companies_items(admin, company, person):
    other = Company.objects.create(preset="maestrano", group_uid="cld-other", name="Other")
    foreign = outbox_row(other, Person.objects.create(company=other, last_name="X"))
    OutboxEntry.objects.filter(pk=foreign.pk).update(status=OutboxEntry.Status.PARKED)

    assert admin.post("/sync/problems/bogus/1/retry/").status_code == 404
    response = admin.post(f"/sync/problems/outbox/{foreign.pk}/retry/", follow=True)

    assert "Nothing to retry" in response.text
    foreign.refresh_from_db()
    assert foreign.status == OutboxEntry.Status.PARKED


def test_money_and_times_follow_the_companys_currency_locale_and_timezone(admin, company):
    from maestrano_accounts.billing.models import AdHocCharge

    charge = AdHocCharge.objects.create(
        company=company, idempotency_key="k", amount_cents=500, currency="AUD", description="SMS"
    )
    AdHocCharge.objects.filter(pk=charge.pk).update(
        created_at=dt.datetime(2030, 6, 1, 0, 30, tzinfo=dt.UTC)
    )

    page = admin.get("/billing/").text

    assert "AUD\u00a05.00" in page and "cents" not in page and "$" not in page
    assert "1 Jun 2030, 10:30 AEST" in page  # Sydney in winter: UTC+10


def test_the_apps_own_error_pages(admin, settings):
    settings.DEBUG = False
    missing = admin.get("/people/999999/")
    assert missing.status_code == 404 and "This page does not exist" in missing.text
    wrong_method = admin.get("/sync/retry-parked/")
    assert wrong_method.status_code == 405
    assert "does not answer that request" in wrong_method.text
    assert wrong_method["Allow"] == "POST"


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("post", "/health/live", "GET"),  # marked with json_errors, behind require_GET
        ("delete", "/people/{pk}/sync.json", "GET"),  # a marked class-based view
        ("post", "/sync/import-progress.json", "GET"),
    ],
)
@pytest.mark.parametrize("accept", [None, BROWSER_ACCEPT])
def test_a_json_endpoints_405_is_json_whatever_the_accept(
    admin, person, settings, method, path, allow, accept
):
    settings.DEBUG = False
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = getattr(admin, method)(path.format(pk=person.pk), **headers)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}
    assert allow in response["Allow"]


def test_a_pages_405_follows_the_accept_header(admin, settings):
    settings.DEBUG = False
    as_json = admin.get("/sync/retry-parked/", HTTP_ACCEPT="application/json")
    as_page = admin.get("/sync/retry-parked/", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert as_json.status_code == as_page.status_code == 405
    assert as_json.json() == {"detail": 'Method "GET" not allowed.'}
    assert as_page["Content-Type"].startswith("text/html")
    assert "does not answer that request" in as_page.text
    for response in (as_json, as_page):
        assert response["Allow"] == "POST"
        assert "Accept" in response["Vary"]


def test_a_record_saved_again_after_a_refusal_is_on_its_way_again(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    outbox_row(company, person, status=OutboxEntry.Status.PARKED, last_error="HTTP 422: bad")
    assert state_on_page(admin, person) == "parked"

    admin.post(f"/people/{person.pk}/", {"first_name": "Pat", "last_name": "Fixed"})

    assert state_on_page(admin, person) == "queued"


def test_a_change_the_sync_settings_keep_here_is_on_hold_not_on_its_way(admin, company, person):
    from maestrano_sync.company_settings import update_sync_settings

    update_sync_settings(company=company, enabled=False)

    saved = admin.post(
        f"/people/{person.pk}/", {"first_name": "Pat", "last_name": "Held"}, follow=True
    )

    assert "it waits here while it is not sent to Connec!" in saved.text
    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "held" and state_in_list(admin, person) == "held"
    assert "Sync with Connec! is switched off for this company" in page
    assert "Your change is on its way" not in page
    assert admin.get(f"/people/{person.pk}/sync.json").json()["state"] == "held"
    dashboard = admin.get("/dashboard/").text
    assert 'id="sync-paused"' in dashboard
    people = re.search(r'<tr data-entity="people">.*?</tr>', dashboard, re.S)[0]
    assert "on hold" in people

    # Sync on, but people imported only: still held, and the page says why.
    update_sync_settings(company=company, enabled=True, directions={"people": "import"})
    OutboxEntry.objects.filter(company=company).update(attempts=0)

    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "held"
    assert "Changes of people are not sent to Connec! (the sync settings import them only)" in page
    assert 'id="sync-paused"' not in admin.get("/dashboard/").text

    # People off both ways: the reason says so, not "import them only".
    update_sync_settings(company=company, enabled=True, directions={"people": "off"})

    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "held"
    assert "Changes of people are not sent to Connec! (the sync settings turn them off)" in page


def test_a_change_given_up_after_failures_is_not_sent_not_refused(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    outbox_row(
        company,
        person,
        status=OutboxEntry.Status.PARKED,
        gave_up=True,
        attempts=7,
        last_error="gave up after 8 attempts: HTTP 503",
    )

    page = admin.get(f"/people/{person.pk}/").text

    assert state_on_page(admin, person) == "not_sent"
    assert "We stopped trying" in page and "refused" not in page
    assert "Change not sent: Connec! kept failing" in admin.get("/dashboard/").text


def test_an_import_interrupted_by_a_transient_failure_is_shown_retrying(admin, company):
    from maestrano_sync.models import SyncRun

    SyncRun.objects.create(
        company=company,
        kind=SyncRun.Kind.IMPORT,
        status=SyncRun.Status.RETRYING,
        error="Connec! answered 503 (transient: the import resumes from its cursor when retried)",
    )

    dashboard = admin.get("/dashboard/").text
    progress = admin.get("/sync/import-progress.json").json()

    assert re.search(r'id="import-status" class="badge warn">Interrupted, retrying<', dashboard)
    # Plain words for the person; Connec!'s answer only under the collapsed details.
    advice = re.search(r'<p class="reason" id="import-advice">([^<]*)<', dashboard)
    assert advice and "goes on by itself" in advice.group(1) and "503" not in advice.group(1)
    technical = dashboard[dashboard.index("<details", dashboard.index('id="import-error"')) :]
    assert "the import resumes from its cursor when retried" in technical.split("</details>")[0]
    assert (progress["status"], progress["label"]) == ("retrying", "Interrupted, retrying")
    assert "goes on by itself" in progress["advice"] and "503" in progress["error"]


def test_a_failed_import_tells_what_happened_in_plain_words(admin, company):
    from maestrano_sync.models import SyncRun

    SyncRun.objects.create(
        company=company,
        kind=SyncRun.Kind.IMPORT,
        status=SyncRun.Status.FAILED,
        error="Connec! answered 401: http://127.0.0.1:9/connec/api/v2/cld-x/people",
    )

    dashboard = admin.get("/dashboard/").text
    progress = admin.get("/sync/import-progress.json").json()

    advice = re.search(r'<p class="reason" id="import-advice">([^<]*)<', dashboard)
    assert advice and "What it imported is kept" in advice.group(1)
    assert "http" not in advice.group(1) and "401" not in advice.group(1)
    assert "What it imported is kept" in progress["advice"]


def test_an_import_without_error_shows_no_advice(admin, company):
    from maestrano_sync.models import SyncRun

    SyncRun.objects.create(company=company, kind=SyncRun.Kind.IMPORT)

    dashboard = admin.get("/dashboard/").text

    assert re.search(r'<div id="import-error" hidden>', dashboard)
    assert admin.get("/sync/import-progress.json").json()["advice"] == ""


def test_the_dashboards_queries_do_not_grow_with_the_outbox(admin, company):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_with(rows: int) -> int:
        OutboxEntry.objects.filter(company=company).delete()
        for n in range(rows):
            person = Person.objects.create(company=company, first_name=f"P{n}")
            OutboxEntry.objects.filter(object_id=str(person.pk)).update(
                attempts=n % 3, status=OutboxEntry.Status.PARKED if n % 3 == 2 else "pending"
            )
        OutboxEntry.objects.filter(status=OutboxEntry.Status.PARKED).update(gave_up=True)
        with CaptureQueriesContext(connection) as captured:
            assert admin.get("/dashboard/").status_code == 200
        return len(captured)

    assert queries_with(30) == queries_with(3)


def waiting_notification(company, *, updated_at, **fields):
    """A notification of the record CONNEC_ID received and not applied yet."""
    record = {
        "id": [{"provider": "connec", "id": CONNEC_ID, "realm": company.group_uid}],
        "group_id": company.group_uid,
        "last_name": "Changed in Connec!",
        "updated_at": updated_at,
    }
    return InboxEntry.objects.create(
        preset="maestrano", company=company, payload={"people": [record]}, record_count=1, **fields
    )


def synced_person(company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    IdMap.objects.filter(company=company).update(
        last_pulled_updated_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )


def test_a_newer_version_waiting_in_the_inbox_is_not_called_synced(admin, company, person):
    from maestrano_sync.company_settings import update_sync_settings

    synced_person(company, person)
    update_sync_settings(company=company, enabled=False)
    assert state_on_page(admin, person) == "synced"

    waiting_notification(company, updated_at="2030-01-02T03:04:00Z")

    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "incoming" and state_in_list(admin, person) == "incoming"
    # The list says why too, in the row (not only in a tooltip).
    listed = admin.get("/people/").text
    assert re.search(r'<small class="muted sync-reason">Sync with Connec! is switched off', listed)
    assert "Update from Connec! waiting" in page
    assert "A newer version, changed in Connec! 2 Jan 2030, 14:04 AEDT" in page
    assert "Sync with Connec! is switched off for this company" in page
    assert 'data-follow="1"' not in page  # held: nothing changes until an Admin acts
    status = admin.get(f"/people/{person.pk}/sync.json").json()
    assert (status["state"], status["label"]) == ("incoming", "Update from Connec! waiting")
    assert "switched off" in status["reason"]

    # Sync on, but people exported only: the waiting version is held when applied.
    update_sync_settings(company=company, enabled=True, directions={"people": "export"})
    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "incoming"
    assert "The import of people from Connec! is off (sync settings)" in page

    # Sync on both ways: it is on its way, and the page follows it.
    update_sync_settings(company=company, directions={"people": "both"})
    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "incoming" and 'data-follow="1"' in page

    InboxEntry.objects.filter(company=company).update(status=InboxEntry.Status.DONE)
    assert state_on_page(admin, person) == "synced"


def test_a_waiting_version_we_already_have_is_not_an_update(admin, company, person):
    from maestrano_sync.company_settings import update_sync_settings

    synced_person(company, person)
    update_sync_settings(company=company, enabled=False)
    # The echo of our own push, or a redelivery: not newer than the version we hold.
    waiting_notification(company, updated_at="2030-01-01T00:00:00Z")
    # Another company's waiting version of the same Connec! id is none of ours.
    other = Company.objects.create(preset="maestrano", group_uid="cld-other", name="Other")
    waiting_notification(other, updated_at="2031-01-01T00:00:00Z")

    assert state_on_page(admin, person) == "synced"
    assert state_in_list(admin, person) == "synced"


def test_a_waiting_version_of_an_entity_the_preset_does_not_subscribe_to_is_no_update(
    admin, company, person, settings
):
    """The inbox ignores records of an entity the marketplace does not send us (whatever
    the sync settings): nothing waits to be applied, so no "Update from Connec! waiting"."""
    synced_person(company, person)
    waiting_notification(company, updated_at="2030-01-02T03:04:00Z")
    assert state_on_page(admin, person) == "incoming"

    preset = copy.deepcopy(settings.MAESTRANO["PRESETS"]["maestrano"])
    preset.setdefault("webhook", {}).setdefault("connec", {})["subscriptions"] = {
        "organizations": True,
        "people": False,
    }
    settings.MAESTRANO = {**settings.MAESTRANO, "PRESETS": {"maestrano": preset}}

    assert state_on_page(admin, person) == "synced"
    assert state_in_list(admin, person) == "synced"


def test_the_list_pages_queries_do_not_grow_with_the_waiting_versions(admin, company):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from maestrano_sync.company_settings import update_sync_settings

    update_sync_settings(company=company, enabled=False)

    def queries_with(rows: int) -> tuple[int, list[str]]:
        InboxEntry.objects.filter(company=company).delete()
        for n in range(rows):
            person = Person.objects.create(company=company, first_name=f"P{n}")
            link_record(company=company, entity="people", obj=person, connec_id=f"c-{rows}-{n}")
            InboxEntry.objects.create(
                preset="maestrano",
                company=company,
                payload={"people": [{"id": f"c-{rows}-{n}", "updated_at": "2030-01-01T00:00:00Z"}]},
                record_count=1,
            )
        OutboxEntry.objects.filter(company=company).delete()  # saved here, sent since
        with CaptureQueriesContext(connection) as captured:
            page = admin.get("/people/").text
        assert page.count('data-sync-state="incoming"') == rows
        return len(captured)

    assert queries_with(3) == queries_with(30)


def test_a_notified_records_connec_id_is_read_by_the_webhooks_rule(admin, company, person):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    # Two Connec! entries: the record's is the one in its realm (its group), not the first.
    ids = [
        {"provider": "connec", "realm": "another-channel", "id": "someone-elses"},
        {"provider": "connec", "realm": company.group_uid, "id": CONNEC_ID},
    ]
    InboxEntry.objects.create(
        preset="maestrano",
        company=company,
        payload={"people": [{"id": ids, "group_id": company.group_uid}]},
        record_count=1,
        status=InboxEntry.Status.FAILED,
        last_error="DataError: value too long",
    )

    assert state_on_page(admin, person) == "not_applied"


def test_people_read_a_plain_sentence_and_the_technical_reason_stays_in_details(
    admin, company, person
):
    link_record(company=company, entity="people", obj=person, connec_id=CONNEC_ID)
    OutboxEntry.objects.filter(company=company).delete()
    technical = "HTTP 422: email.address is not an email address (https://connec.example/v2)"
    outbox_row(company, person, status=OutboxEntry.Status.PARKED, last_error=technical)

    page = admin.get(f"/people/{person.pk}/").text
    listed = admin.get("/people/").text
    status = admin.get(f"/people/{person.pk}/sync.json").json()

    reason = re.search(r'id="sync-reason">(.*?)</p>', page, re.S)[1]
    assert reason.startswith("Connec! does not accept a value of this record: correct it")
    assert "HTTP" not in reason and "https://" not in reason
    details = re.search(r'<details class="technical" id="sync-technical">.*?</details>', page, re.S)
    assert "HTTP 422: email.address is not an email address" in details[0]
    assert page.count("HTTP 422") == 1  # nowhere but the details
    row = re.search(rf'<tr data-pk="{person.pk}">.*?</tr>', listed, re.S)[0]
    assert "HTTP" not in row and "Connec! does not accept a value" in row  # the badge's title
    assert status["reason"] == reason and status["detail"] == technical
    # Stored as it was, for the admin and the logs.
    assert OutboxEntry.objects.get(company=company).last_error == technical


def test_one_records_retries_are_one_history_row_told_in_plain_words(admin, company):
    from maestrano_sync.history import record_run
    from maestrano_sync.models import SyncRun

    record_run(
        company=company, kind=SyncRun.Kind.NOTIFICATIONS, counts={"notifications": 1, "created": 1}
    )
    for _ in range(12):  # one record Connec! keeps failing: a retrying drain per attempt
        record_run(
            company=company, kind=SyncRun.Kind.PUSH, counts={"sent": 1, "retried": 1, "requests": 1}
        )

    page = admin.get("/dashboard/").text

    rows = re.findall(r'<tr data-kind="(\w+)" data-status="(\w+)">.*?</tr>', page, re.S)
    assert rows == [("push", "retrying"), ("notifications", "succeeded")]
    summaries = re.findall(r'class="run-summary">(.*?)</td>', page, re.S)
    assert summaries[0].startswith("1 record sent, 1 to try again, in 1 request ")
    assert "(the same 12 times since " in summaries[0]
    assert summaries[1] == "1 notification, 1 created"


def test_a_list_page_reads_only_its_records_notifications_and_no_payload(admin, company):
    """The inbox rows of other records (a backlog while the sync was off) are not read:
    the page's records are looked up in the index of the notified records."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from maestrano_sync.company_settings import update_sync_settings

    update_sync_settings(company=company, enabled=False)
    waiting, failed, synced = (
        Person.objects.create(company=company, first_name=name) for name in ("W", "F", "S")
    )
    for person, connec_id in ((waiting, "c-waiting"), (failed, "c-failed"), (synced, "c-synced")):
        link_record(company=company, entity="people", obj=person, connec_id=connec_id)
    OutboxEntry.objects.filter(company=company).delete()
    IdMap.objects.filter(company=company).update(
        last_pulled_updated_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    for n in range(50):  # other records' versions waiting: none of the page's business
        InboxEntry.objects.create(
            preset="maestrano",
            company=company,
            payload={"people": [{"id": f"c-other-{n}", "updated_at": "2030-06-01T00:00:00Z"}]},
            record_count=1,
        )
    InboxEntry.objects.create(
        preset="maestrano",
        company=company,
        payload={
            "people": [
                {"id": "c-waiting", "updated_at": "2030-01-02T00:00:00Z"},
                {"id": "c-synced", "updated_at": "2029-12-31T00:00:00Z"},  # older: not newer
            ]
        },
        record_count=2,
    )
    InboxEntry.objects.create(
        preset="maestrano",
        company=company,
        payload={"people": [{"id": [{"provider": "connec", "id": "c-failed"}]}]},
        record_count=1,
        status=InboxEntry.Status.FAILED,
        last_error="DataError: value too long",
    )

    with CaptureQueriesContext(connection) as captured:
        page = admin.get("/people/").text

    inbox = InboxEntry._meta.db_table
    assert not [q["sql"] for q in captured if f'"{inbox}"."payload"' in q["sql"]]
    states = dict(re.findall(r'<tr data-pk="(\d+)">.*?data-sync-state="(\w+)"', page, re.S))
    assert states == {
        str(waiting.pk): "incoming",
        str(failed.pk): "not_applied",
        str(synced.pk): "synced",
    }
    status = admin.get(f"/people/{failed.pk}/sync.json").json()
    assert (status["state"], status["detail"]) == ("not_applied", "DataError: value too long")


def test_a_synced_record_says_which_way_its_last_change_went(admin, company, person):
    synced_person(company, person)  # last pulled from Connec!, never pushed
    page = admin.get(f"/people/{person.pk}/").text
    assert state_on_page(admin, person) == "synced"
    assert "Updated from Connec!" in page
    assert "Connec! acknowledged it" not in page  # nothing was sent from here
    assert admin.get(f"/people/{person.pk}/sync.json").json()["updated_from_connec"] is True

    # Our change pushed and acknowledged after it: Connec! acknowledged ours.
    IdMap.objects.filter(company=company).update(
        last_pushed_updated_at=dt.datetime(2030, 1, 3, tzinfo=dt.UTC)
    )
    page = admin.get(f"/people/{person.pk}/").text
    assert "Connec! acknowledged it" in page and "Updated from Connec!" not in page


def test_old_applied_notifications_are_pruned_and_held_ones_kept(company, settings):
    from maestrano_sync.inbox import prune_done_entries

    old = timezone.now() - dt.timedelta(days=31)
    done = waiting_notification(
        company, updated_at="2030-01-01T00:00:00Z", status=InboxEntry.Status.DONE
    )
    recent = waiting_notification(
        company, updated_at="2030-01-01T00:00:00Z", status=InboxEntry.Status.DONE
    )
    held = waiting_notification(
        company, updated_at="2030-01-01T00:00:00Z", status=InboxEntry.Status.HELD
    )
    InboxEntry.objects.filter(pk__in=[done.pk, held.pk]).update(processed_at=old)
    InboxEntry.objects.filter(pk=recent.pk).update(processed_at=timezone.now())

    assert prune_done_entries() == 1
    assert set(InboxEntry.objects.values_list("pk", flat=True)) == {recent.pk, held.pk}


def test_a_backlog_of_applied_notifications_is_pruned_in_steps_oldest_first(company):
    from maestrano_sync.inbox import prune_done_entries

    old = timezone.now() - dt.timedelta(days=31)
    rows = [
        waiting_notification(
            company, updated_at="2030-01-01T00:00:00Z", status=InboxEntry.Status.DONE
        )
        for _ in range(3)
    ]
    InboxEntry.objects.filter(pk__in=[row.pk for row in rows]).update(processed_at=old)

    assert prune_done_entries(limit=2) == 2
    assert list(InboxEntry.objects.values_list("pk", flat=True)) == [rows[-1].pk]
    assert prune_done_entries(limit=2) == 1
    assert prune_done_entries(limit=2) == 0


def test_the_dashboard_tells_refused_given_up_and_not_applied_apart_and_names_the_records(
    admin, company
):
    refused, given_up, not_applied = (
        Person.objects.create(company=company, first_name=name, last_name="Doe")
        for name in ("Rita", "Gus", "Nora")
    )
    OutboxEntry.objects.filter(company=company).delete()
    outbox_row(company, refused, status=OutboxEntry.Status.PARKED, last_error="HTTP 422: bad")
    outbox_row(
        company, given_up, status=OutboxEntry.Status.PARKED, gave_up=True, last_error="HTTP 503"
    )
    link_record(company=company, entity="people", obj=not_applied, connec_id=CONNEC_ID)
    IdMap.objects.filter(company=company).update(updated_at=timezone.now() - dt.timedelta(days=1))
    SyncRecordError.objects.create(
        company=company, entity="people", connec_id=CONNEC_ID, reason="email: not an email"
    )

    page = admin.get("/dashboard/").text

    table = re.search(r'<table class="sync-table">.*?</table>', page, re.S)[0]
    assert ">Parked<" not in table and '<th scope="col">Needs attention</th>' in table
    row = re.search(r'<tr data-entity="people">.*?</tr>', table, re.S)[0]
    assert '<span class="badge bad refused">1 refused by Connec!</span>' in row
    assert '<span class="badge bad given-up">1 not sent: Connec! kept failing</span>' in row
    assert '<span class="badge bad not-applied">1 not applied here</span>' in row
    assert 'id="attention-legend"' in page
    problems = re.search(r'<section class="card" id="problems">.*?</section>', page, re.S)[0]
    for person in (refused, given_up, not_applied):
        assert f'<a href="/people/{person.pk}/">{person}</a>' in problems
    assert "open the record" not in problems


def test_sync_settings_named_in_a_reason_link_to_them_for_an_admin(admin, company, person, client):
    from maestrano_sync.company_settings import update_sync_settings

    update_sync_settings(company=company, enabled=True, directions={"people": "import"})
    link = '<a href="/sync/settings/" class="sync-settings-link">sync settings</a>'

    assert link in admin.get(f"/people/{person.pk}/").text
    assert link in admin.get("/people/").text

    member = signed_in(client, company, role="Member")  # the settings page is Admins' only
    page = member.get(f"/people/{person.pk}/").text
    assert "sync settings" in page and link not in page


def test_a_retry_from_the_dashboard_lands_at_its_confirmation(admin, company, person):
    OutboxEntry.objects.filter(company=company).delete()
    row = outbox_row(company, person, status=OutboxEntry.Status.PARKED, last_error="HTTP 422")
    dashboard = admin.get("/dashboard/").text
    next_url = re.search(
        rf'action="/sync/problems/outbox/{row.pk}/retry/".*?name="next" value="([^"]*)"',
        dashboard,
        re.S,
    )[1]

    response = admin.post(f"/sync/problems/outbox/{row.pk}/retry/", {"next": next_url})

    assert response["Location"] == "/dashboard/#messages"
    page = admin.get(response["Location"]).text
    assert re.search(r'id="messages"[^>]*>.*?Queued again', page, re.S)


@pytest.mark.parametrize("object_id", ["9" * 25, "-" + "9" * 25, "not-a-key"])
def test_a_problem_about_an_id_no_record_can_have_names_no_record(admin, company, object_id):
    # A parked change whose object id is no key of the model (past 64 bits: SQLite's driver
    # refuses the whole query) names no record; the others are still named.
    named = Person.objects.create(company=company, first_name="Pat", last_name="Doe")
    for oid in (object_id, str(named.pk)):
        OutboxEntry.objects.create(
            company=company,
            entity="people",
            content_type=ContentType.objects.get_for_model(Person),
            object_id=oid,
            operation="upsert",
            status="parked",
            last_error="HTTP 422: bad",
        )

    response = admin.get("/dashboard/")

    assert response.status_code == 200
    problems = re.search(r'id="problems">.*?</section>', response.text, re.S)[0]
    assert "a record deleted here since" in problems
    assert f'href="/people/{named.pk}/"' in problems
