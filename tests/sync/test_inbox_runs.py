"""The inbox of Connec! notifications over time: what the dashboard and
``maestrano_sync_status`` say of it once its rows are pruned, and what an inbox run and the
beat's safety net cost in queries."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.company_settings import update_sync_settings
from maestrano_sync.inbox import companies_with_releasable_held, process_inbox, prune_done_entries
from maestrano_sync.models import CompanySyncSettings, InboxEntry
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

URL = "/maestrano/connec/notifications"
AUTHORIZATION = "Basic " + base64.b64encode(b"app-1:key-1").decode()


@pytest.fixture(autouse=True)
def presets(two_presets):
    return two_presets


def new_company(group_uid: str = "cld-1") -> Company:
    return Company.objects.create(
        preset="maestrano", group_uid=group_uid, name=f"Company {group_uid}", timezone="UTC"
    )


def notify(client, body) -> None:
    """POST a notification to the webhook as Connec! does (its inbox run is started by the
    test: on-commit work does not run inside a test's transaction)."""
    response = client.post(
        URL, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=AUTHORIZATION
    )
    assert response.status_code == 202, response.content


def organization(company: Company, n: int) -> dict:
    return {
        "id": f"org-{n}",
        "group_id": company.group_uid,
        "name": f"Org {n}",
        "updated_at": f"2030-01-01T00:00:{n:02d}Z",
    }


def last_notification_cell(page: str, entity: str) -> str:
    row = re.search(rf'<tr data-entity="{entity}">.*?</tr>', page, re.S)[0]
    return re.search(r'class="last-notification">([^<]*)</td>', row)[1]


# --- "last notification received" survives the pruning of the inbox ---------------------


def test_the_last_notification_received_is_still_shown_once_its_rows_are_pruned(client):
    company = new_company()
    log_in_to_company(client, company)
    with time_machine.travel(dt.datetime(2030, 3, 4, 5, 6, tzinfo=dt.UTC), tick=False):
        notify(client, {"organizations": [organization(company, 1)]})
    with time_machine.travel(dt.datetime(2030, 3, 4, 7, 8, tzinfo=dt.UTC), tick=False):
        notify(client, {"organizations": [organization(company, 2)]})
        assert process_inbox(company=company).processed == 2
    assert Organization.objects.filter(company=company).count() == 2

    def shown() -> tuple[str, str, str]:
        page = client.get("/dashboard/").text
        received = re.search(r"\(last received ([^)]*)\)", page)
        out = StringIO()
        call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
        command = re.search(r"last notification received: (.*)", out.getvalue())[1]
        return (
            received[1] if received else "",
            last_notification_cell(page, "organizations"),
            command,
        )

    before = shown()
    assert before == ("4 Mar 2030, 07:08 UTC", "4 Mar 2030, 07:08 UTC", "2030-03-04 07:08:00")

    # No notification since, for longer than SYNC["HISTORY_DAYS"] (30): the applied rows go.
    with time_machine.travel(dt.datetime(2030, 4, 10, tzinfo=dt.UTC), tick=False):
        assert prune_done_entries() == 2
    assert not InboxEntry.objects.exists()

    assert shown() == before


def test_a_later_prune_of_older_rows_keeps_the_newest_time(client):
    """Rows are pruned oldest first by arrival in the table, not by the time they were
    received (a held record keeps its notification's time): the later time stays."""
    company = new_company()
    for n, day in ((1, 5), (2, 3)):  # the second row was received before the first
        with time_machine.travel(dt.datetime(2030, 3, day, tzinfo=dt.UTC), tick=False):
            notify(client, {"organizations": [organization(company, n)]})
    assert process_inbox(company=company).processed == 2

    with time_machine.travel(dt.datetime(2030, 5, 1, tzinfo=dt.UTC), tick=False):
        assert prune_done_entries(limit=1) == 1
        assert prune_done_entries(limit=1) == 1
    out = StringIO()
    call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
    assert "last notification received: 2030-03-05 00:00:00" in out.getvalue()

    # A newer notification, kept in the inbox, is newer than what was pruned.
    with time_machine.travel(dt.datetime(2030, 5, 2, tzinfo=dt.UTC), tick=False):
        notify(client, {"organizations": [organization(company, 3)]})
    out = StringIO()
    call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
    assert "last notification received: 2030-05-02 00:00:00" in out.getvalue()


# --- an inbox run reads the company's sync settings once --------------------------------


def settings_reads(captured) -> int:
    table = CompanySyncSettings._meta.db_table
    return sum(
        1
        for query in captured
        if query["sql"].lstrip().upper().startswith("SELECT") and f'FROM "{table}"' in query["sql"]
    )


def test_an_inbox_run_reads_the_sync_settings_once_not_per_group_or_entity(client):
    company = new_company()
    update_sync_settings(company=company, directions={"items": "off"})  # items are held
    group = company.group_uid
    notify(
        client,
        {
            "organizations": [organization(company, 1), organization(company, 2)],
            "people": [{"id": "p-1", "group_id": group, "first_name": "Ada"}],
        },
    )
    notify(
        client,
        {
            "people": [{"id": "p-2", "group_id": group, "first_name": "Bob"}],
            "items": [{"id": "i-1", "group_id": group, "code": "I1", "name": "Kept out"}],
            "invoices": [],
        },
    )

    with CaptureQueriesContext(connection) as captured:
        run = process_inbox(company=company)

    assert (run.processed, run.result.created, run.result.held) == (2, 4, 1)
    assert (Organization.objects.count(), Person.objects.count(), Item.objects.count()) == (2, 2, 0)
    # Read when the run starts, and again before it ends as it holds records (an import
    # switched on meanwhile releases them). The code before read them for the run, for its
    # group of notifications, for each entity applied (organizations, people) and before
    # it ended: five reads, 59 queries. The time of the last notification of each entity
    # applied is one upsert (update_or_create spent six statements on each new row: 56).
    # The company's lock is created with one INSERT, not get_or_create's four (46). The new
    # organizations have names (their matching field): one query looks for unlinked local
    # rows with those names (maestrano_sync.matching), the people have no email: none (45).
    assert settings_reads(captured) == 2
    assert len(captured) == 45  # SQLite and PostgreSQL alike


def _run_changing_settings(client, monkeypatch, change) -> tuple[Company, object]:
    """Two notifications, a group each, and ``change(company)`` (an Admin, meanwhile) right
    after the first group is marked done; the run."""
    from maestrano_sync import inbox

    monkeypatch.setattr(inbox, "GROUP_RECORDS", 1)  # a group per notification
    company = new_company()
    for n in (1, 2):
        notify(client, {"organizations": [organization(company, n)]})
    done = InboxEntry.Status.DONE
    switched: list[bool] = []

    def after_the_first_group(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if (
            not switched
            and sql.startswith('UPDATE "maestrano_sync_inboxentry"')
            and done in (params or ())
        ):
            switched.append(True)
            change(company)
        return result

    with connection.execute_wrapper(after_the_first_group):
        run = process_inbox(company=company)
    return company, run


def test_a_sync_switched_off_during_a_run_stops_it_at_the_next_group(client, monkeypatch):
    """A run lasts as long as notifications keep coming: the settings are read again for
    each group, so the sync switched off after the first group stops it there."""
    _, run = _run_changing_settings(
        client, monkeypatch, lambda company: update_sync_settings(company=company, enabled=False)
    )

    assert (run.processed, run.paused) == (1, True)
    assert list(InboxEntry.objects.order_by("pk").values_list("status", flat=True)) == [
        "done",
        "pending",
    ]
    assert list(Organization.objects.values_list("name", flat=True)) == ["Org 1"]


def test_an_import_switched_off_during_a_run_holds_the_next_groups_records(client, monkeypatch):
    _, run = _run_changing_settings(
        client,
        monkeypatch,
        lambda company: update_sync_settings(company=company, directions={"organizations": "off"}),
    )

    assert run.result.held == 1
    assert list(Organization.objects.values_list("name", flat=True)) == ["Org 1"]
    assert InboxEntry.objects.filter(status=InboxEntry.Status.HELD).count() == 1


# --- the beat's safety net: a fixed number of queries -----------------------------------


def holding_company(client, n: int) -> Company:
    """A company holding a record (its import of items is off)."""
    company = new_company(f"cld-hold-{n}")
    update_sync_settings(company=company, directions={"items": "off"})
    notify(client, {"items": [{"id": f"i-{n}", "group_id": company.group_uid, "code": f"I{n}"}]})
    assert process_inbox(company=company).result.held == 1
    return company


def test_the_beat_finds_releasable_held_records_in_the_same_queries_for_1_or_5_companies(
    client,
):
    still_off = holding_company(client, 0)

    def queries(count: int) -> int:
        companies = [holding_company(client, 100 * count + n) for n in range(count)]
        # Switched on again where nothing starts an inbox run (the admin site, a shell).
        CompanySyncSettings.objects.filter(company__in=companies).update(directions={})
        with CaptureQueriesContext(connection) as captured:
            found = companies_with_releasable_held()
        assert found == {company.pk for company in companies}  # not still_off's
        CompanySyncSettings.objects.filter(company__in=companies).update(
            directions={"items": "off"}
        )
        return len(captured)

    assert queries(1) == queries(5) == 2
    assert companies_with_releasable_held() == set()
    assert still_off.pk not in companies_with_releasable_held()
