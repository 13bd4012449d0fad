"""Per-company sync settings (docs/sync.md, 'Per-company sync settings'), against the sandbox:
on/off, a direction per entity within what its mapper allows, the import's start date; effects
are immediate and every change is recorded."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model

from crm.mappers import OrganizationMapper
from crm.models import Item, Organization, Person
from maestrano_accounts.models import Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from maestrano_sync.company_settings import (
    SettingsRefused,
    allowed_directions,
    pending_imports,
    policy_for,
    update_sync_settings,
)
from maestrano_sync.importer import run_import
from maestrano_sync.mappers import IMPORT_ONLY
from maestrano_sync.models import IdMap, InboxEntry, OutboxEntry, SyncSettingsChange
from maestrano_sync.selectors import connec_id_for, find_local_object
from tests.helpers.live_sync import (
    deliver_notifications,
)


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_user("grace", first_name="Grace", last_name="Admin")


def remote_names(peer, entity):
    return sorted(r.get("name") or r.get("last_name") for r in peer.list(entity))


def test_sync_off_keeps_changes_on_both_sides_and_on_again_sends_and_applies_them(
    platform, company, peer, admin_user
):
    update_sync_settings(company=company, enabled=False, changed_by=admin_user)

    Organization.objects.create(company=company, name="Made while off")
    remote = peer.create("organizations", {"name": "Theirs while off"})
    deliver_notifications()

    assert remote_names(peer, "organizations") == ["Theirs while off"]  # nothing pushed
    assert OutboxEntry.objects.get().status == "pending"  # kept
    assert InboxEntry.objects.get().status == "pending"  # kept, not applied
    assert not find_local_object(company=company, entity="organizations", connec_id=remote["id"])

    update_sync_settings(company=company, enabled=True, changed_by=admin_user)

    assert remote_names(peer, "organizations") == ["Made while off", "Theirs while off"]
    local = find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    assert local.name == "Theirs while off"
    assert InboxEntry.objects.get().status == "done"
    assert not OutboxEntry.objects.filter(status="pending").exists()
    assert Organization.objects.filter(company=company).count() == 2


def test_import_only_pushes_nothing_and_export_on_again_pushes_what_was_held(
    platform, company, peer
):
    update_sync_settings(company=company, directions={"people": "import"})

    person = Person.objects.create(company=company, first_name="Ada", last_name="Held")
    remote = peer.create("people", {"first_name": "Bob", "last_name": "Remote"})
    deliver_notifications()

    assert remote_names(peer, "people") == ["Remote"]  # ours not pushed
    assert OutboxEntry.objects.get().status == "pending"  # held
    assert find_local_object(company=company, entity="people", connec_id=remote["id"])  # imported
    person.last_name = "Held twice"
    person.save()

    update_sync_settings(company=company, directions={"people": "both"})

    assert remote_names(peer, "people") == ["Held twice", "Remote"]
    assert connec_id_for(company=company, obj=person)
    assert not OutboxEntry.objects.filter(status="pending").exists()


def test_export_only_ignores_notifications_and_import_on_again_imports_what_was_missed(
    platform, company, peer
):
    kept = peer.create("organizations", {"name": "Before"})
    deliver_notifications()
    update_sync_settings(company=company, directions={"organizations": "export"})

    peer.update("organizations", kept["id"], {"name": "Renamed while ignored"})
    missed = peer.create("organizations", {"name": "Created while ignored"})
    deliver_notifications()
    ours = Organization.objects.create(company=company, name="Still pushed")

    assert InboxEntry.objects.filter(status="done").count() == 3  # received (2 held)
    assert InboxEntry.objects.filter(status="held").count() == 2  # one per record
    assert not find_local_object(company=company, entity="organizations", connec_id=missed["id"])
    assert sorted(Organization.objects.values_list("name", flat=True)) == [
        "Before",
        "Still pushed",
    ]
    assert connec_id_for(company=company, obj=ours)  # export still on

    update_sync_settings(company=company, directions={"organizations": "both"})

    assert sorted(Organization.objects.values_list("name", flat=True)) == [
        "Created while ignored",
        "Renamed while ignored",
        "Still pushed",
    ]
    assert IdMap.objects.filter(company=company, entity="organizations").count() == 3
    assert pending_imports(company_id=company.pk) == []
    assert remote_names(peer, "organizations") == sorted(
        Organization.objects.values_list("name", flat=True)
    )


def test_import_since_limits_the_import_and_moving_it_earlier_imports_the_rest(
    platform, company, sandbox_group, live_sync
):
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    # Written without notifications: the import brings them. One last changed long ago.
    long_ago = datetime.datetime(2020, 5, 1, tzinfo=datetime.UTC)
    for code, stamp in (("OLD", long_ago), ("NEW", next_timestamp())):
        ConnecRecord.objects.create(
            group=sandbox_group.group,
            entity="items",
            data={"code": code, "name": f"{code} item", "status": "ACTIVE"},
            created_at=stamp,
            updated_at=stamp,
        )
    update_sync_settings(company=company, import_since=datetime.date(2024, 1, 1))

    run_import(company=company)

    assert list(Item.objects.values_list("code", flat=True)) == ["NEW"]

    update_sync_settings(company=company, import_since=datetime.date(2019, 1, 1))

    assert sorted(Item.objects.values_list("code", flat=True)) == ["NEW", "OLD"]


def test_an_import_since_year_one_imports_everything(platform, company, sandbox_group, live_sync):
    """The ``$filter`` names year 1 as the platform reads it (``0001-01-01``, not ``1-01-01``)."""
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord

    for code, stamp in (
        ("OLD", datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)),
        ("NEW", next_timestamp()),
    ):
        ConnecRecord.objects.create(
            group=sandbox_group.group,
            entity="items",
            data={"code": code, "name": f"{code} item", "status": "ACTIVE"},
            created_at=stamp,
            updated_at=stamp,
        )
    update_sync_settings(company=company, import_since=datetime.date(1, 1, 1))

    run_import(company=company)

    assert sorted(Item.objects.values_list("code", flat=True)) == ["NEW", "OLD"]


def test_directions_are_limited_to_what_the_mapper_allows(db, company, monkeypatch):
    monkeypatch.setattr(OrganizationMapper, "directions", IMPORT_ONLY)

    assert allowed_directions("organizations") == ["import", "off"]
    assert allowed_directions("people") == ["both", "import", "export", "off"]
    with pytest.raises(SettingsRefused, match="its mapper allows import, off"):
        update_sync_settings(company=company, directions={"organizations": "both"})
    with pytest.raises(SettingsRefused, match="No mapper"):
        update_sync_settings(company=company, directions={"tax_codes": "off"})
    assert not SyncSettingsChange.objects.exists()
    assert policy_for(company_id=company.pk).direction("organizations") == "import"


def test_each_change_is_recorded_with_who_when_and_what(db, company, admin_user):
    assert update_sync_settings(company=company, enabled=True) is None  # the default already

    change = update_sync_settings(
        company=company,
        changed_by=admin_user,
        enabled=False,
        directions={"people": "import", "items": "both"},
        import_since=datetime.date(2025, 3, 1),
    )

    assert change.changed_by == admin_user
    assert change.changed_by_name == admin_user.get_full_name() == "Grace Admin"
    assert change.changes == {
        "enabled": [True, False],
        "direction.people": ["both", "import"],
        "import_since": [None, "2025-03-01"],
    }
    policy = policy_for(company_id=company.pk)
    assert (policy.enabled, policy.direction("people"), policy.direction("items")) == (
        False,
        "import",
        "both",
    )
    assert not policy.imports("items")  # the whole sync is off


def test_an_import_switched_on_while_the_sync_is_off_waits_for_the_sync(platform, company, peer):
    update_sync_settings(company=company, directions={"items": "off"})
    peer.create("items", {"code": "I-1", "name": "Missed"})
    deliver_notifications()
    update_sync_settings(company=company, enabled=False)

    update_sync_settings(company=company, directions={"items": "both"})

    assert pending_imports(company_id=company.pk) == ["items"]
    assert not Item.objects.exists()

    update_sync_settings(company=company, enabled=True)

    assert list(Item.objects.values_list("code", flat=True)) == ["I-1"]
    assert pending_imports(company_id=company.pk) == []


def test_notifications_being_applied_when_the_sync_goes_off_are_kept_not_ignored(
    platform, company, live_sync
):
    from maestrano_sync.inbox import SyncPaused, apply_payloads

    update_sync_settings(company=company, enabled=False)
    payload = {"organizations": [{"id": "o-1", "group_id": company.group_uid, "name": "Kept"}]}

    with pytest.raises(SyncPaused):
        apply_payloads(company=company, payloads=[payload])
    assert not Organization.objects.exists()


def test_a_recorded_change_of_any_shape_reads_in_words(db, company):
    from maestrano_sync.company_settings import change_lines
    from maestrano_sync.models import SyncSettingsChange

    def lines(changes):
        return change_lines(SyncSettingsChange(company=company, changes=changes))

    assert lines({"enabled": [True, False]}) == ["Sync: on → off"]
    assert lines({"direction.people": ["both", "off"]}) == ["People: Both ways → Off"]
    assert lines({"direction.unknown": ["x", None]}) == ["unknown: x → —"]
    assert lines({"enabled": ["false", 1]}) == ["Sync: false → 1"]  # not read as on
    assert lines({"enabled": "odd"}) == ["Sync: — → —"]
    assert lines(["not", "a", "dict"]) == ["['not', 'a', 'dict']"]


def signed_in_admin(client, company):
    user = get_user_model().objects.create_user("ada-admin")
    Membership.objects.create(user=user, company=company, role="Admin")
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return client


def test_a_version_the_import_setting_keeps_out_waits_visibly_and_is_applied_when_on_again(
    platform, company, peer, client
):
    kept = peer.create("organizations", {"name": "Before"})
    deliver_notifications()
    org = find_local_object(company=company, entity="organizations", connec_id=kept["id"])
    admin = signed_in_admin(client, company)
    update_sync_settings(company=company, directions={"organizations": "export"})

    for name in ("Renamed once", "Renamed twice"):
        peer.update("organizations", kept["id"], {"name": name})
        deliver_notifications()

    org.refresh_from_db()
    assert org.name == "Before"  # not applied while the import is off...
    held = InboxEntry.objects.filter(company=company, status="held")
    # ...but kept, the newest version only (the older one superseded: no unbounded growth).
    assert [entry.payload["organizations"][0]["name"] for entry in held] == ["Renamed twice"]
    page = admin.get(f"/organizations/{org.pk}/").text
    assert 'data-sync-state="incoming"' in page
    assert "The import of organizations from Connec! is off (sync settings)" in page

    update_sync_settings(company=company, directions={"organizations": "both"})

    org.refresh_from_db()
    assert org.name == "Renamed twice"
    assert not InboxEntry.objects.filter(company=company, status="held").exists()
    page = admin.get(f"/organizations/{org.pk}/").text
    assert 'data-sync-state="synced"' in page
    assert "Updated from Connec!" in page  # the last change came from Connec!, nothing sent


def test_the_beats_safety_net_releases_records_held_for_an_import_switched_on_elsewhere(
    platform, company, live_sync
):
    import uuid

    import requests

    from maestrano_sync.models import CompanySyncSettings
    from maestrano_sync.tasks import drain_all
    from tests.helpers.live_sync import organization_record

    update_sync_settings(company=company, directions={"organizations": "export"})
    record_id = str(uuid.uuid4())
    answer = requests.post(
        platform.url + "/maestrano/connec/notifications",
        json={"organizations": [organization_record(company, record_id, "Held", None)]},
        auth=platform.auth,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert InboxEntry.objects.filter(company=company, status="held").count() == 1

    # Switched on where nothing enqueues an inbox run (the admin site, a shell).
    CompanySyncSettings.objects.filter(company=company).update(directions={})
    drain_all.delay()

    assert not InboxEntry.objects.filter(company=company, status="held").exists()
    org = find_local_object(company=company, entity="organizations", connec_id=record_id)
    assert org is not None and org.name == "Held"


def test_only_the_newest_held_version_of_a_record_is_kept_whatever_the_delivery_order(
    platform, company, live_sync
):
    import uuid

    import requests

    from tests.helpers.live_sync import organization_record

    update_sync_settings(company=company, directions={"organizations": "export"})
    record_id = str(uuid.uuid4())

    def notify(name, updated_at):
        answer = requests.post(
            platform.url + "/maestrano/connec/notifications",
            json={"organizations": [organization_record(company, record_id, name, updated_at)]},
            auth=platform.auth,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text

    def held_names():
        return [
            entry.payload["organizations"][0]["name"]
            for entry in InboxEntry.objects.filter(company=company, status="held")
        ]

    notify("Version 2", "2030-01-02T00:00:00Z")
    # The held row keeps the time its notification arrived (the dashboard's "last
    # notification received"), not the time it was held.
    arrived = InboxEntry.objects.filter(company=company, status="done").latest("pk").received_at
    assert InboxEntry.objects.get(company=company, status="held").received_at == arrived
    notify("Version 1", "2030-01-01T00:00:00Z")  # older, delivered late: not kept
    assert held_names() == ["Version 2"]
    notify("Version 3", "2030-01-03T00:00:00Z")  # newer: replaces the held one
    assert held_names() == ["Version 3"]
    notify("Unreadable", "not a date")  # no version to order by: never replaces one
    assert held_names() == ["Version 3"]

    update_sync_settings(company=company, directions={"organizations": "both"})

    org = find_local_object(company=company, entity="organizations", connec_id=record_id)
    assert org is not None and org.name == "Version 3"  # applied from the inbox, not fetched
    assert held_names() == []
