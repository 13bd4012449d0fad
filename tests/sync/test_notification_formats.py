"""Notifications in every format Connec! used (docs/sync.md, 'Notification formats'), live:
ids as lists of ``{provider, realm, id}``, and payloads carrying several groups."""

from __future__ import annotations

import logging
import uuid

import pytest
import requests

from crm.models import Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.models import IdMap, InboxEntry, InboxRecord, OutboxEntry, SyncRecordError
from maestrano_sync.selectors import connec_id_for, find_local_object
from tests.helpers.live_sync import (
    deliver_notifications,
    hub_for,
    our_entry,
    register_peer,
)
from tests.sync.conftest import make_group


@pytest.fixture
def list_form_ids(settings):
    """The sandbox notifies with external-id lists, as older Connec! versions did."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "EXTERNAL_IDS": True},
    }


def post_notification(platform, payload):
    return requests.post(
        platform.url + "/maestrano/connec/notifications",
        json=payload,
        auth=platform.auth,
        timeout=30,
    )


def test_list_form_ids_are_applied_and_mapped_with_their_references(
    platform, company, peer, list_form_ids
):
    org = peer.create("organizations", {"name": "Globex"})
    person = peer.create(
        "people", {"first_name": "Hank", "last_name": "Scorpio", "organization_id": org["id"]}
    )

    deliver_notifications()

    # Deliveries may arrive in any order (the sandbox's own sender runs beside this one).
    delivered = {
        entity: records for e in InboxEntry.objects.all() for entity, records in e.payload.items()
    }
    assert isinstance(delivered["organizations"][0]["id"], list)  # really the list form
    assert isinstance(delivered["people"][0]["organization_id"], list)
    local_org = find_local_object(company=company, entity="organizations", connec_id=org["id"])
    local_person = find_local_object(company=company, entity="people", connec_id=person["id"])
    assert local_org.name == "Globex"
    assert local_person.organization == local_org
    assert not OutboxEntry.objects.exists()

    peer.update("people", person["id"], {"last_name": "Scorpio II"})
    deliver_notifications()

    local_person.refresh_from_db()
    assert local_person.last_name == "Scorpio II"
    assert Person.objects.filter(company=company).count() == 1
    assert IdMap.objects.filter(company=company).count() == 2


def test_a_list_form_change_to_our_own_record_updates_it_and_is_not_pushed_back(
    platform, company, peer, list_form_ids
):
    org = Organization.objects.create(company=company, name="Ours")
    remote_id = connec_id_for(company=company, obj=org)
    remote = peer.get("organizations", remote_id)
    assert our_entry(remote, provider=platform.api_id, realm=company.group_uid)

    peer.update("organizations", remote_id, {"name": "Renamed by the peer"})
    deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Renamed by the peer"
    assert Organization.objects.filter(company=company).count() == 1
    assert OutboxEntry.objects.count() == 1  # our create only


def test_a_payload_of_several_groups_is_applied_per_company_and_unknown_groups_skipped(
    platform, company, sandbox_group, live_sync, caplog
):
    other_group = make_group(platform, name="Initech")
    other = Company.objects.create(preset="maestrano", group_uid=other_group.uid, name="Initech")
    ours_peer = hub_for(platform, sandbox_group.uid, register_peer(platform, sandbox_group.group))
    other_peer = hub_for(platform, other_group.uid, register_peer(platform, other_group))
    # Written without delivering: the test sends the combined notification itself.
    first = ours_peer.create("organizations", {"name": "Acme's supplier"})
    second = other_peer.create("organizations", {"name": "Initech's supplier"})
    person = other_peer.create("people", {"first_name": "Milton", "organization_id": second["id"]})
    from maestrano_sandbox.models import NotificationDelivery

    NotificationDelivery.objects.all().delete()
    lost = {
        "id": str(uuid.uuid4()),
        "group_id": "cld-nobody",
        "name": "Nobody's",
        "updated_at": first["updated_at"],
    }
    payload = {
        "organizations": [
            ours_peer.get("organizations", first["id"]),
            lost,
            other_peer.get("organizations", second["id"]),
        ],
        "people": [other_peer.get("people", person["id"])],
    }
    caplog.set_level(logging.WARNING, logger="maestrano_sync.notifications")

    response = post_notification(platform, payload)

    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    entries = {entry.company_id: entry for entry in InboxEntry.objects.all()}
    assert set(entries) == {company.pk, other.pk}
    assert all(entry.status == "done" for entry in entries.values())
    assert list(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "Acme's supplier"
    ]
    theirs = Organization.objects.get(company=other)
    assert theirs.name == "Initech's supplier"
    assert Person.objects.get(company=other).organization == theirs
    assert not Person.objects.filter(company=company).exists()
    # Nothing crossed tenants: each IdMap row belongs to the company of its record.
    assert set(IdMap.objects.filter(company=company).values_list("connec_id", flat=True)) == {
        first["id"]
    }
    assert set(IdMap.objects.filter(company=other).values_list("connec_id", flat=True)) == {
        second["id"],
        person["id"],
    }
    assert not Organization.objects.filter(name="Nobody's").exists()
    assert any("cld-nobody" in record.getMessage() for record in caplog.records)


def test_a_record_carrying_an_external_id_no_database_key_can_hold_sinks_nothing(
    platform, company, live_sync
):
    # "Ours" by its provider and realm, but past 64 bits: no object of ours has that key
    # (SQLite's driver refused the whole lookup, and the notification with it).
    huge = {"provider": platform.api_id, "realm": company.group_uid, "id": "9" * 23}

    def person(name: str, *extra: dict) -> dict:
        connec = {"provider": "connec", "realm": company.group_uid, "id": str(uuid.uuid4())}
        return {
            "id": [connec, *extra],
            "group_id": company.group_uid,
            "first_name": name,
            "updated_at": "2026-12-01T10:00:00Z",
        }

    payload = {"people": [person("Ann"), person("Huge", huge), person("Bob")]}

    response = post_notification(platform, payload)

    assert response.status_code == 202
    assert InboxEntry.objects.get().status == "done"
    assert sorted(Person.objects.filter(company=company).values_list("first_name", flat=True)) == [
        "Ann",
        "Bob",
        "Huge",
    ]


def several_ids(company, connec_id: str) -> list[dict[str, str]]:
    """An id list as another app's write may leave it: a foreign entry first, then two
    Connec! entries of which only the second is in the record's realm (its group)."""
    return [
        {"provider": "another-app", "realm": company.group_uid, "id": "77"},
        {"provider": "connec", "realm": "org-elsewhere", "id": f"{connec_id}-elsewhere"},
        {"provider": "connec", "realm": company.group_uid, "id": connec_id},
    ]


def test_a_records_connec_id_is_read_by_one_rule_on_the_webhook_and_in_the_pipeline(
    platform, company, live_sync
):
    from maestrano_sync.inbox import apply_records

    def organization(connec_id, name):
        return {
            "id": several_ids(company, connec_id),
            "group_id": company.group_uid,
            "name": name,
            "updated_at": "2030-01-01T00:00:00Z",
        }

    # The pipeline (the import, the reconciliation, a record fetched again): a record and a
    # reference, each with several entries.
    through_pipeline = str(uuid.uuid4())
    apply_records(
        company=company,
        entity="organizations",
        records=[organization(through_pipeline, "Read by the pipeline")],
    )
    person_id = str(uuid.uuid4())
    apply_records(
        company=company,
        entity="people",
        records=[
            {
                "id": several_ids(company, person_id),
                "group_id": company.group_uid,
                "first_name": "Hank",
                "organization_id": several_ids(company, through_pipeline),
                "updated_at": "2030-01-01T00:00:00Z",
            }
        ],
    )
    # The webhook.
    through_webhook = str(uuid.uuid4())
    answer = post_notification(
        platform, {"organizations": [organization(through_webhook, "Read by the webhook")]}
    )
    assert answer.status_code == 202, answer.text

    org = find_local_object(company=company, entity="organizations", connec_id=through_pipeline)
    assert org is not None and org.name == "Read by the pipeline"
    person = find_local_object(company=company, entity="people", connec_id=person_id)
    assert person is not None and person.organization_id == org.pk
    webhook_org = find_local_object(
        company=company, entity="organizations", connec_id=through_webhook
    )
    assert webhook_org is not None and webhook_org.name == "Read by the webhook"
    assert not IdMap.objects.filter(connec_id__endswith="-elsewhere").exists()
    assert InboxRecord.objects.get().connec_id == through_webhook

    # Two Connec! entries, none in the record's realm: refused on both paths alike.
    ambiguous = organization(str(uuid.uuid4()), "Ambiguous")
    ambiguous["id"] = [*ambiguous["id"][1:2], {**ambiguous["id"][2], "realm": "org-third"}]
    result = apply_records(company=company, entity="organizations", records=[ambiguous])
    assert result.failed == 1
    reasons = [SyncRecordError.objects.get().reason]
    answer = post_notification(platform, {"organizations": [ambiguous]})
    assert answer.status_code == 202 and answer.json()["parked"] == 1
    (parked,) = SyncRecordError.objects.all()  # the same record: parked once, seen twice
    reasons.append(parked.reason)
    assert parked.times_seen == 2
    assert all("several entries with provider 'connec'" in reason for reason in reasons)
