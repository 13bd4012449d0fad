"""A record the import or the inbox cannot apply is parked once per company, however often
it comes back: the import run again, or the record notified again, counts on its row
(``times_seen``), as the webhook's refusals do (docs/sync.md, 'Parked records').

The import through its command, against the sandbox's Connec! API on a live server; the
inbox through the webhook, as the platform delivers notifications.
"""

from __future__ import annotations

import logging
from io import StringIO

import requests
from django.core.management import call_command

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry, SyncRecordError, SyncRun
from tests.helpers.users import log_in_to_company

from .conftest import make_group


def inject_record(group, entity: str, data: dict) -> str:
    """Store a record the hub's own validation would refuse (another app's bad data)."""
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    stamp = next_timestamp()
    record = ConnecRecord.objects.create(
        group=group, entity=entity, data=data, created_at=stamp, updated_at=stamp
    )
    return str(record.uid)


def import_organizations(company: Company) -> SyncRun:
    """``manage.py maestrano_import --restart``: a new import run of the organizations."""
    call_command(
        "maestrano_import",
        "--company",
        company.group_uid,
        "--entity",
        "organizations",
        "--restart",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    return SyncRun.objects.filter(company=company, kind=SyncRun.Kind.IMPORT).latest("pk")


def dashboard(client, company) -> str:
    log_in_to_company(client, company)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    return page.content.decode()


def test_a_record_imported_bad_twice_is_parked_once_and_counted_twice(
    sandbox_group, company, client, caplog
):
    caplog.set_level(logging.WARNING, logger="maestrano_sync.importer")
    bad = inject_record(sandbox_group.group, "organizations", {"name": "Bad", "is_customer": "yes"})
    sandbox_group.create("organizations", {"name": "Good"})

    first = import_organizations(company)
    second = import_organizations(company)

    assert second.pk != first.pk
    (parked,) = SyncRecordError.objects.filter(company=company)
    assert (parked.connec_id, parked.times_seen) == (bad, 2)
    assert parked.last_seen_at is not None and parked.last_seen_at >= parked.created_at
    assert '"yes"' in parked.payload_excerpt and "boolean" in parked.reason
    # The run that parked it last lists it; each run still counts what it parked.
    assert parked.run_id == second.pk
    assert list(SyncRecordError.objects.filter(run=second)) == [parked]
    for run in (first, second):
        assert run.status == SyncRun.Status.PARTIAL
        assert run.entities.get().failed == 1

    # Each run logs it, from the importer's logger and line, with the company and run.
    logged = [r for r in caplog.records if r.getMessage().startswith("Connec! organizations")]
    assert [r.getMessage() for r in logged] == [
        f"Connec! organizations record {bad} skipped: {parked.reason}"
    ] * 2
    assert [(r.name, r.levelno, r.funcName, r.group, r.run) for r in logged] == [
        ("maestrano_sync.importer", logging.WARNING, "apply_page", company.group_uid, run.pk)
        for run in (first, second)
    ]

    page = dashboard(client, company)
    assert page.count('data-kind="record"') == 1
    assert '<span class="times-seen">2 times</span>' in page
    assert "1 not applied" in page  # the latest run's progress


def test_two_bad_records_imported_twice_are_two_rows(sandbox_group, company):
    one = inject_record(sandbox_group.group, "organizations", {"name": "One", "is_customer": "y"})
    two = inject_record(sandbox_group.group, "organizations", {"name": "Two", "email": "a@b.c"})

    import_organizations(company)
    import_organizations(company)

    rows = SyncRecordError.objects.filter(company=company).values_list("connec_id", "times_seen")
    assert sorted(rows) == sorted([(one, 2), (two, 2)])


def test_the_same_bad_record_of_another_company_is_its_own_row(platform, sandbox_group, company):
    other_group = make_group(platform, name="Other")
    other = Company.objects.create(preset="maestrano", group_uid=other_group.uid, name="Other")
    for group in (sandbox_group.group, other_group):
        inject_record(group, "organizations", {"name": "Bad", "is_customer": "yes"})

    import_organizations(company)
    import_organizations(other)
    import_organizations(company)

    counts = SyncRecordError.objects.values_list("company_id", "times_seen")
    assert sorted(counts) == sorted([(company.pk, 2), (other.pk, 1)])


def test_a_bad_record_fixed_in_connec_is_no_longer_a_problem_once_imported(
    sandbox_group, company, client
):
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    bad = inject_record(sandbox_group.group, "organizations", {"name": "Bad", "is_customer": "yes"})
    import_organizations(company)
    import_organizations(company)
    ConnecRecord.objects.filter(uid=bad).update(
        data={"name": "Fixed", "is_customer": True}, updated_at=next_timestamp()
    )

    fixed = import_organizations(company)

    assert fixed.status == SyncRun.Status.SUCCEEDED
    assert Organization.objects.get(company=company).name == "Fixed"
    assert SyncRecordError.objects.get(company=company).times_seen == 2  # kept, not current
    assert 'data-kind="record"' not in dashboard(client, company)


def notify(platform, payload) -> InboxEntry:
    response = requests.post(
        platform.url + "/maestrano/connec/notifications",
        json=payload,
        auth=platform.auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    entry = InboxEntry.objects.get(pk=response.json()["notification"])
    assert entry.status == InboxEntry.Status.DONE  # applied, its bad record parked
    return entry


def organization(group_uid: str, connec_id: str, **fields) -> dict:
    return {"id": connec_id, "group_id": group_uid, "name": connec_id, **fields}


def test_a_record_the_inbox_cannot_apply_notified_again_is_parked_once(platform, company, client):
    group = company.group_uid
    bad = organization(group, "org-bad", email="ann@example.com")  # email is an object

    notify(platform, {"organizations": [organization(group, "org-ok"), bad]})
    notify(platform, {"organizations": [bad]})
    notify(platform, {"organizations": [organization(group, "org-other", phone=["555"])]})

    rows = SyncRecordError.objects.filter(company=company).order_by("pk")
    assert [(row.connec_id, row.times_seen, row.run_id) for row in rows] == [
        ("org-bad", 2, None),
        ("org-other", 1, None),
    ]
    assert "email is not an object" in rows[0].reason
    page = dashboard(client, company)
    assert page.count('data-kind="record"') == 2
    assert '<span class="times-seen">2 times</span>' in page


def test_a_record_parked_by_the_import_and_notified_bad_again_counts_on_the_import_row(
    platform, sandbox_group, company
):
    """Whoever parks it, a record is parked once: the inbox counts on the import's row,
    which keeps the run that parked it."""
    bad = inject_record(sandbox_group.group, "organizations", {"name": "Bad", "is_customer": "yes"})
    run = import_organizations(company)
    record = requests.get(
        f"{platform.connec_url}/api/v2/{sandbox_group.uid}/organizations/{bad}",
        auth=(sandbox_group.app.api_id, sandbox_group.app.api_key),
        timeout=10,
    ).json()["organizations"]

    notify(platform, {"organizations": [record]})

    parked = SyncRecordError.objects.get(company=company)
    assert (parked.times_seen, parked.run_id) == (2, run.pk)
