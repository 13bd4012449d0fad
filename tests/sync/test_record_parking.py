"""A bad record of a notification is parked with its reason; the others of the payload are applied.

Through the webhook on the live server, as the platform sends notifications
(the inbox is processed once the entry is stored).
"""

from __future__ import annotations

import datetime
import json
import logging

import pytest
import requests

from crm.models import Invoice, Organization
from maestrano_sync import status
from maestrano_sync.inbox import apply_records
from maestrano_sync.models import IdMap, InboxEntry, SyncRecordError
from tests.helpers.users import log_in_to_company


def notify(platform, payload):
    response = requests.post(
        platform.url + "/maestrano/connec/notifications",
        json=payload,
        auth=platform.auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return InboxEntry.objects.get(pk=response.json()["notification"])


def invoice(group_uid: str, connec_id: str, **fields) -> dict:
    return {
        "id": connec_id,
        "group_id": group_uid,
        "updated_at": "2024-05-01T10:00:00Z",
        "type": "CUSTOMER",
        "status": "DRAFT",
        "transaction_number": connec_id.upper(),
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"due_date": 12698}, "due_date: not a date: 12698"),
        ({"due_date": "2024-02-30"}, "due_date:"),
        ({"due_date": "2024-02-30T00:00:00Z"}, "due_date: not a date"),
        ({"transaction_date": True}, "transaction_date: not a date: True"),
        ({"transaction_number": "x" * 65}, "transaction_number: Ensure this value has at most 64"),
        ({"transaction_number": 12345}, "transaction_number: not a string: 12345"),
        ({"total_amount": "a lot"}, "total_amount:"),
        ({"total_amount": True}, "total_amount: not a decimal number: True"),
        ({"total_amount": 1e20}, "total_amount: Ensure that there are no more than 14 digits"),
        ({"type": 5}, "type: not a string: 5"),
        ({"status": "BOGUS"}, "status: Value 'BOGUS' is not a valid choice"),
        ({"lines": [{"quantity": "two"}]}, "lines[1]: quantity:"),
        ({"lines": [{"line_number": 2**70}]}, "lines[1]: line_number:"),
        ({"lines": [{"line_number": 1.5}]}, "lines[1]: line_number: not a whole number"),
        ({"lines": "one line"}, "lines: not a list"),
        ({"organization_id": {"id": "x"}}, "organization_id: not a Connec! id"),
        ({"updated_at": "2024-02-30T00:00:00Z"}, "updated_at: not a date-time"),
        ({"updated_at": "2024-05-01T10:00:00+99:00"}, "updated_at: not a date-time"),
    ],
)
def test_a_wrong_value_parks_its_record_and_the_others_are_applied(
    platform, company, fields, reason
):
    group = company.group_uid
    payload = {
        "invoices": [
            invoice(group, "inv-good-1", due_date="2024-05-31T00:00:00Z"),
            invoice(group, "inv-bad", **fields),
            invoice(group, "inv-good-2", total_amount=12.5),
        ]
    }

    entry = notify(platform, payload)

    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.DONE
    assert set(Invoice.objects.filter(company=company).values_list("number", flat=True)) == {
        "INV-GOOD-1",
        "INV-GOOD-2",
    }
    parked = SyncRecordError.objects.get(company=company)
    assert (parked.entity, parked.connec_id) == ("invoices", "inv-bad")
    assert reason in parked.reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email": "ann@example.com"}, "email.address: email is not an object"),
        ({"phone": ["555-0100"]}, "phone.landline: phone is not an object"),
        ({"address": "1 Main St"}, "address.billing.line1: address is not an object"),
        ({"address": {"billing": 7}}, "address.billing.city: address.billing is not an object"),
    ],
)
def test_a_value_where_the_mapping_reads_an_object_parks_its_record(
    platform, company, fields, reason
):
    group = company.group_uid

    def org(connec_id, **extra):
        return {"id": connec_id, "group_id": group, "name": connec_id, **extra}

    entry = notify(platform, {"organizations": [org("ok-1"), org("bad", **fields), org("ok-2")]})

    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.DONE
    names = Organization.objects.filter(company=company).values_list("name", flat=True)
    assert set(names) == {"ok-1", "ok-2"}
    parked = SyncRecordError.objects.get(company=company)
    assert (parked.entity, parked.connec_id) == ("organizations", "bad")
    assert reason in parked.reason
    assert json.loads(parked.payload_excerpt) == org("bad", **fields)  # nothing lost


def test_malformed_records_are_parked_for_operators_and_the_others_applied(
    platform, company, client
):
    """A record without id, with a numeric id, with a NUL in a field: each is parked with
    its reason and the whole record (the dashboard's sync problems), the others applied."""
    group = company.group_uid

    def org(connec_id, name):
        return {"id": connec_id, "group_id": group, "name": name, "updated_at": "2024-05-01"}

    body = json.dumps(
        {
            "organizations": [
                org("ok-1", "Good one"),
                {"group_id": group, "name": "No id"},
                {**org("x", "Numeric id"), "id": 12345},
                org("ok-2", "Good two"),
                org("nul-1", "Nul\x00name"),
            ]
        }
    )
    response = requests.post(
        platform.url + "/maestrano/connec/notifications",
        data=body,
        headers={"Content-Type": "application/json"},
        auth=platform.auth,
        timeout=30,
    )

    assert response.status_code == 202, response.text
    assert response.json()["parked"] == 3
    assert set(Organization.objects.filter(company=company).values_list("name", flat=True)) == {
        "Good one",
        "Good two",
    }
    parked = {error.reason: error for error in SyncRecordError.objects.filter(company=company)}
    reasons = sorted(parked)
    assert "$.organizations[1].id must be a non-empty string" in reasons[0]
    assert "$.organizations[2].id must be a non-empty string" in reasons[1]
    assert "$.organizations[4].name contains a NUL character" in reasons[2]
    kept = sorted(json.loads(error.payload_excerpt)["name"] for error in parked.values())
    assert kept == ["No id", "Nul\x00name", "Numeric id"]  # nothing lost
    problems = status.problems(company=company)
    assert sorted(problem.reason for problem in problems if problem.kind == "record") == reasons
    assert [p.connec_id for p in problems if "NUL" in p.reason] == ["nul-1"]

    page = admin_dashboard(client, company)
    assert page.count("Refused when notified: ") == 3
    assert "$.organizations[4].name contains a NUL character" in page


def admin_dashboard(client, company) -> str:
    log_in_to_company(client, company)
    return client.get("/dashboard/").text


def test_a_naive_updated_at_is_utc_and_compares_with_the_others(platform, company):
    group = company.group_uid
    first = {"id": "org-1", "group_id": group, "name": "Old", "updated_at": "2024-05-01T10:00:00Z"}
    notify(platform, {"organizations": [first]})

    entry = notify(
        platform,
        {"organizations": [{**first, "name": "New", "updated_at": "2024-05-01T11:00:00"}]},
    )

    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.DONE
    assert Organization.objects.get(company=company).name == "New"


def test_an_updated_at_no_database_stores_parks_its_record_and_the_others_are_applied(
    platform, company
):
    """An offset PostgreSQL refuses (16 hours or more), a time whose UTC is past year 9999 or
    before year 1: each is a malformed ``updated_at``, its record parked; never a 5xx."""
    group = company.group_uid
    bad_times = {
        "far-offset": "2030-01-01T00:00:00+20:00",
        "past-9999": "9999-12-31T23:59:59-23:59",
        "before-1": "0001-01-01T00:00:00+23:59",
    }
    records = [
        {"id": connec_id, "group_id": group, "name": connec_id, "updated_at": updated_at}
        for connec_id, updated_at in [*bad_times.items(), ("ok", "2030-01-01T00:00:00+14:00")]
    ]

    entry = notify(platform, {"organizations": records})

    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.DONE
    assert list(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "ok"
    ]
    parked = {e.connec_id: e.reason for e in SyncRecordError.objects.filter(company=company)}
    assert set(parked) == set(bad_times)
    for connec_id, updated_at in bad_times.items():
        assert f"updated_at: not a date-time: '{updated_at}'" in parked[connec_id]
    # The good record's time is kept in UTC (every database stores it).
    link = IdMap.objects.get(company=company, connec_id="ok")
    assert link.last_pulled_updated_at == datetime.datetime(2029, 12, 31, 10, tzinfo=datetime.UTC)


#: ISO forms Python's ``fromisoformat`` reads but the platform never sends: not times of the
#: platform (maestrano_integration.times.PLATFORM_TIME_FORM).
ISO_FORMS_NOT_SENT = {
    "week": "2024-W18-3T10:00:00Z",
    "ordinal": "2024-122T10:00:00Z",
    "basic": "20240501T100000Z",
    "comma": "2024-05-01T10:00:00,5Z",
    "end-of-day": "2024-05-01T24:00:00Z",
    "short-offset": "2024-05-01T10:00:00+0200",
}


def test_an_iso_form_the_platform_never_sends_parks_its_record_and_the_others_are_applied(
    platform, company
):
    group = company.group_uid
    records = [
        {"id": f"upd-{form}", "group_id": group, "name": form, "updated_at": value}
        for form, value in ISO_FORMS_NOT_SENT.items()
    ]
    records.append({"id": "ok", "group_id": group, "name": "ok", "updated_at": "2024-05-01"})
    invoices = [
        invoice(group, "inv-week", due_date="2024-W22-5"),
        invoice(group, "inv-ok", due_date="2024-05-31 00:00:00Z"),
    ]

    entry = notify(platform, {"organizations": records, "invoices": invoices})

    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.DONE
    assert list(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "ok"
    ]
    assert list(Invoice.objects.filter(company=company).values_list("number", flat=True)) == [
        "INV-OK"
    ]
    parked = {e.connec_id: e for e in SyncRecordError.objects.filter(company=company)}
    assert set(parked) == {*(f"upd-{form}" for form in ISO_FORMS_NOT_SENT), "inv-week"}
    for form, value in ISO_FORMS_NOT_SENT.items():
        error = parked[f"upd-{form}"]
        assert f"updated_at: not a date-time: '{value}'" in error.reason
        assert json.loads(error.payload_excerpt)["updated_at"] == value  # nothing lost
    assert "due_date: not a date" in parked["inv-week"].reason


def test_a_record_claiming_an_object_id_we_do_not_have_is_created_not_linked(platform, company):
    """Records fetched from Connec! carry external ids; ours must name an object we have."""
    group = company.group_uid
    records = [
        {
            "id": [
                {"provider": "connec", "id": f"org-{n}"},
                {"provider": platform.app.api_id, "realm": group, "id": claimed},
            ],
            "group_id": group,
            "name": f"Org {n}",
        }
        for n, claimed in enumerate(["not-a-number", "987654"])
    ]

    result = apply_records(company=company, entity="organizations", records=records)

    assert (result.created, result.failed) == (2, 0)
    assert sorted(Organization.objects.values_list("name", flat=True)) == ["Org 0", "Org 1"]


def test_each_parked_record_is_logged_by_the_inbox_with_its_reason(platform, company, caplog):
    """Operators' logs name each record the inbox could not apply, and the company's preset
    and group, from the inbox's logger and line."""
    caplog.set_level(logging.WARNING, logger="maestrano_sync.inbox")
    group = company.group_uid
    records = [invoice(group, "inv-bad", due_date=12698), invoice(group, "inv-good")]

    result = apply_records(company=company, entity="invoices", records=records)

    assert result.failed == 1
    (logged,) = [r for r in caplog.records if r.name == "maestrano_sync.inbox"]
    assert logged.levelno == logging.WARNING
    assert logged.getMessage() == (
        "Connec! invoices record inv-bad not applied: due_date: not a date: 12698"
    )
    assert (logged.preset, logged.group) == (company.preset, group)
    assert (logged.module, logged.funcName) == ("inbox", "apply_records")
