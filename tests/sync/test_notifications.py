"""Connec! notifications (docs/protocol.md, 'Connec! notifications'): changes by other apps arrive
and are applied once."""

from __future__ import annotations

import uuid

import requests

from crm.models import Organization, Person
from maestrano_sync.models import IdMap, InboxEntry, OutboxEntry, SyncState
from maestrano_sync.selectors import connec_id_for, find_local_object
from tests.helpers.live_sync import (
    deliver_notifications,
    organization_record,
)


def post_notification(platform, payload, *, auth=None, path="/maestrano/connec/notifications"):
    return requests.post(platform.url + path, json=payload, auth=auth or platform.auth, timeout=30)


def test_a_record_created_by_another_app_is_created_locally_and_mapped(platform, company, peer):
    remote = peer.create(
        "organizations",
        {"name": "Globex", "email": {"address": "info@globex.test"}, "is_supplier": True},
    )

    deliver_notifications()

    org = find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    assert (org.name, org.email, org.is_supplier) == ("Globex", "info@globex.test", True)
    assert InboxEntry.objects.get().status == "done"
    assert not OutboxEntry.objects.exists()  # applying Connec! data is not pushed back
    assert SyncState.objects.get(entity="organizations").last_notification_at is not None


def test_an_update_by_another_app_updates_the_local_record_without_pushing_it_back(
    platform, company, peer
):
    remote = peer.create("organizations", {"name": "Globex"})
    deliver_notifications()

    updated = peer.update("organizations", remote["id"], {"name": "Globex Corp"})
    deliver_notifications()

    org = find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    assert org.name == "Globex Corp"
    assert Organization.objects.filter(company=company).count() == 1
    assert not OutboxEntry.objects.exists()
    assert peer.get("organizations", remote["id"])["updated_at"] == updated["updated_at"]


def test_a_change_to_our_own_pushed_record_comes_back_once_and_does_not_loop(
    platform, company, peer
):
    org = Organization.objects.create(company=company, name="Ours")
    remote_id = connec_id_for(company=company, obj=org)
    deliver_notifications()  # the hub does not echo our own write

    updated = peer.update("organizations", remote_id, {"name": "Renamed by the peer"})
    deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Renamed by the peer"
    assert OutboxEntry.objects.count() == 1  # our create only; nothing pushed back
    assert peer.get("organizations", remote_id)["updated_at"] == updated["updated_at"]
    assert InboxEntry.objects.count() == 1


def test_a_missing_referenced_record_is_fetched_from_connec(platform, company, peer, sandbox_group):
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    # An organization we were never told about (written without notification).
    stamp = next_timestamp()
    hidden = ConnecRecord.objects.create(
        group=sandbox_group.group,
        entity="organizations",
        data={"name": "Hidden Co", "status": "ACTIVE"},
        created_at=stamp,
        updated_at=stamp,
    )
    remote = peer.create(
        "people", {"first_name": "Grace", "last_name": "Hopper", "organization_id": str(hidden.uid)}
    )

    deliver_notifications()

    person = find_local_object(company=company, entity="people", connec_id=remote["id"])
    assert person.organization.name == "Hidden Co"
    assert connec_id_for(company=company, obj=person.organization) == str(hidden.uid)


def test_a_record_made_inactive_by_another_app_is_deleted_locally(platform, company, peer):
    remote = peer.create("organizations", {"name": "Short-lived"})
    deliver_notifications()
    assert Organization.objects.filter(company=company).count() == 1

    peer.update("organizations", remote["id"], {"status": "INACTIVE"})
    deliver_notifications()

    assert not Organization.objects.filter(company=company).exists()
    assert not OutboxEntry.objects.exists()


def test_repeated_and_out_of_order_notifications_converge_to_the_latest_version(
    platform, company, live_sync
):
    record_id = str(uuid.uuid4())
    v1 = organization_record(company, record_id, "Version 1", "2030-01-01T00:00:01.000000Z")
    v2 = organization_record(company, record_id, "Version 2", "2030-01-01T00:00:02.000000Z")

    for payload in ({"organizations": [v2]}, {"organizations": [v1]}):
        assert post_notification(platform, payload).status_code == 202
    org = find_local_object(company=company, entity="organizations", connec_id=record_id)
    assert org.name == "Version 2"
    first_save = org.updated_at

    # The same payload again changes nothing.
    assert post_notification(platform, {"organizations": [v2]}).status_code == 202
    org.refresh_from_db()
    assert (org.name, org.updated_at) == ("Version 2", first_save)
    assert Organization.objects.filter(company=company).count() == 1
    assert IdMap.objects.get().last_pulled_updated_at.isoformat().startswith("2030-01-01T00:00:02")
    assert list(InboxEntry.objects.values_list("status", flat=True)) == ["done"] * 3

    # Two versions in one payload: the newest wins whatever their order.
    v3 = organization_record(company, record_id, "Version 3", "2030-01-01T00:00:03.000000Z")
    assert post_notification(platform, {"organizations": [v3, v1]}).status_code == 202
    org.refresh_from_db()
    assert org.name == "Version 3"


def test_entities_not_subscribed_or_not_imported_are_ignored(
    platform, company, live_sync, settings
):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "PRESETS": {
            "maestrano": platform.preset_values(
                webhook={"connec": {"subscriptions": {"organizations": True, "people": False}}}
            )
        },
    }
    payload = {
        "people": [
            {"id": str(uuid.uuid4()), "group_id": company.group_uid, "first_name": "Ignored"}
        ],
        "tax_codes": [{"id": str(uuid.uuid4()), "group_id": company.group_uid, "name": "GST"}],
        "organizations": [
            organization_record(company, str(uuid.uuid4()), "Kept", "2030-01-01T00:00:00Z")
        ],
    }

    assert post_notification(platform, payload).status_code == 202

    assert not Person.objects.exists()
    assert list(Organization.objects.values_list("name", flat=True)) == ["Kept"]
    assert InboxEntry.objects.get().status == "done"


def test_a_notification_is_routed_by_preset_to_that_preset_company(platform, settings, live_sync):
    from maestrano_accounts.models import Company

    other_app = platform.register_app(api_id="other-market-app")
    platform.configure(
        maestrano=platform.preset_values(), other=platform.preset_values(app=other_app)
    )
    ours = Company.objects.create(preset="maestrano", group_uid="cld-same", name="A")
    theirs = Company.objects.create(preset="other", group_uid="cld-same", name="B")
    payload = {
        "organizations": [
            organization_record(ours, str(uuid.uuid4()), "Other", "2030-01-01T00:00:00Z")
        ]
    }

    response = post_notification(
        platform,
        payload,
        auth=(other_app.api_id, other_app.api_key),
        path="/maestrano/other/connec/notifications",
    )

    assert response.status_code == 202
    assert list(Organization.objects.values_list("company", flat=True)) == [theirs.pk]
    assert not Organization.objects.filter(company=ours).exists()


def test_a_reference_to_a_record_deleted_before_we_knew_it_is_applied_as_empty(
    platform, company, peer, sandbox_group
):
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    stamp = next_timestamp()
    gone = ConnecRecord.objects.create(
        group=sandbox_group.group,
        entity="organizations",
        data={"name": "Gone Co", "status": "INACTIVE"},
        created_at=stamp,
        updated_at=stamp,
    )
    remote = peer.create(
        "people", {"first_name": "Ada", "last_name": "Lovelace", "organization_id": str(gone.uid)}
    )

    deliver_notifications()

    person = find_local_object(company=company, entity="people", connec_id=remote["id"])
    assert person is not None and person.organization is None
    assert not Organization.objects.exists()


def test_a_local_change_after_another_app_deactivated_the_record_brings_it_back(
    platform, company, peer, settings
):
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }
    org = Organization.objects.create(company=company, name="Ours")
    remote_id = connec_id_for(company=company, obj=org)
    peer.update("organizations", remote_id, {"status": "INACTIVE"})  # delivery held back

    org.name = "Still ours"
    org.save()  # the later write
    deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Still ours"
    record = peer.get("organizations", remote_id)
    assert (record["status"], record["name"]) == ("ACTIVE", "Still ours")


def test_a_creation_delivered_after_the_deletion_of_its_record_creates_nothing(
    platform, company, live_sync
):
    """Deliveries overtake each other (a failed first attempt is retried later): the record's
    deletion can arrive before its creation. The chaos test's rare "only local" came from here.
    """
    record_id = str(uuid.uuid4())
    created = organization_record(company, record_id, "Born", "2030-01-01T00:00:01Z")
    deleted = {**created, "status": "INACTIVE", "updated_at": "2030-01-01T00:00:02Z"}

    assert post_notification(platform, {"organizations": [deleted]}).status_code == 202
    assert post_notification(platform, {"organizations": [created]}).status_code == 202

    assert not Organization.objects.filter(company=company).exists()
    assert not IdMap.objects.exists()

    # Brought back to life by another app later: a newer version, created here.
    revived = {**created, "name": "Reborn", "updated_at": "2030-01-01T00:00:03Z"}
    assert post_notification(platform, {"organizations": [revived]}).status_code == 202

    org = find_local_object(company=company, entity="organizations", connec_id=record_id)
    assert org.name == "Reborn"


def test_a_subscribed_entity_without_a_mapper_is_warned_about_once_and_the_rest_applied(
    platform, company, live_sync, settings, caplog, monkeypatch
):
    """The preset asks for ``tax_codes`` and nothing maps them: their records are ignored,
    with one WARNING per entity and process (not one per record, nor per notification)."""
    from maestrano_sync import inbox_plan

    monkeypatch.setattr(inbox_plan, "_WARNED_WITHOUT_MAPPER", set(), raising=False)  # fresh
    subscriptions = {"organizations": True, "tax_codes": True}
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "PRESETS": {
            "maestrano": platform.preset_values(
                webhook={"connec": {"subscriptions": subscriptions}}
            )
        },
    }

    def tax_code() -> dict:
        return {"id": str(uuid.uuid4()), "group_id": company.group_uid, "name": "GST"}

    for name in ("Kept", "Kept too"):
        organization = organization_record(company, str(uuid.uuid4()), name, "2030-01-01T00:00:00Z")
        payload = {"tax_codes": [tax_code(), tax_code()], "organizations": [organization]}
        with caplog.at_level("WARNING", logger="maestrano_sync"):
            assert post_notification(platform, payload).status_code == 202

    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and "tax_codes" in r.getMessage()
    ]
    assert len(warnings) == 1, warnings
    assert "no mapper is registered" in warnings[0]
    assert sorted(Organization.objects.values_list("name", flat=True)) == ["Kept", "Kept too"]
    assert set(InboxEntry.objects.values_list("status", flat=True)) == {"done"}
