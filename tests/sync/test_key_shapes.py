"""Synced models whose keys are not integers: UUIDs (``default=uuid.uuid4``) and text.

The adopter's shapes of ``tests/shapes``: a tenant keyed by a UUID, people keyed by UUIDs
that reference organizations keyed by text (with a default), items keyed by text that
the mapper's ``new_instance`` gives each new row. The import, a push, notifications that
create and update, the status counts and the admin pages, against the sandbox, on each
database (SQLite keeps a UUID as 32 hex digits, PostgreSQL as ``uuid``).
"""

from __future__ import annotations

import io
import re
import uuid

import pytest
from django.core.management import call_command
from django.db import transaction

from maestrano_sync.checks import check_registry
from maestrano_sync.mappers import EXPORT_ONLY, Mapper
from maestrano_sync.models import IdMap, OutboxEntry, SyncRecordError
from maestrano_sync.push import drain_outbox
from maestrano_sync.registry import MapperRegistry
from maestrano_sync.selectors import connec_id_for, find_local_object
from tests.helpers.live_sync import connec_id, our_entry, wait_until
from tests.shapes.mappers import ProductMapper, shape_mappers
from tests.shapes.models import Firm, Member, Product, Workspace


@pytest.fixture
def shapes(platform):
    with shape_mappers():
        yield


@pytest.fixture
def workspace(company, shapes):
    return Workspace.objects.create(name="Acme", company=company)


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def mapped_count(status: str, entity: str) -> int:
    """The *mapped* column of ``entity`` in ``maestrano_sync_status``'s table."""
    return int(re.search(rf"^{entity}\s+(\d+)\s", status, re.M).group(1))


def test_uuid_and_text_keys_are_imported_pushed_and_notified(
    platform, sandbox_group, company, workspace, peer, admin_client
):
    orgs = [sandbox_group.create("organizations", {"name": f"Org {n}"}) for n in range(2)]
    people = [
        sandbox_group.create(
            "people",
            {"first_name": f"P{n}", "last_name": "Key", "organization_id": orgs[n % 2]["id"]},
        )
        for n in range(3)
    ]

    run("maestrano_import", "--company", company.group_uid)

    firms = {connec_id_for(company=company, obj=firm): firm for firm in Firm.objects.all()}
    assert set(firms) == {org["id"] for org in orgs}
    assert all(code.startswith("F-") for code in Firm.objects.values_list("code", flat=True))
    members = list(Member.objects.order_by("first_name"))
    assert [m.first_name for m in members] == ["P0", "P1", "P2"]
    assert len({m.pk for m in members}) == 3 and all(isinstance(m.pk, uuid.UUID) for m in members)
    for member, record in zip(members, people, strict=True):
        assert connec_id_for(company=company, obj=member) == record["id"]
        assert member.firm_id == firms[record["organization_id"]].pk
        assert find_local_object(company=company, entity="people", connec_id=record["id"]) == member
    assert sorted(IdMap.objects.filter(entity="people").values_list("object_id", flat=True)) == (
        sorted(str(m.pk) for m in members)
    )
    status = run("maestrano_sync_status", "--company", company.group_uid)
    assert (mapped_count(status, "organizations"), mapped_count(status, "people")) == (2, 3)

    # A local change and a new local row reach Connec!, our external id the UUID.
    first = members[0]
    first.last_name = "Pushed"
    first.save()
    assert peer.get("people", people[0]["id"])["last_name"] == "Pushed"
    made = Member.objects.create(workspace=workspace, first_name="Local", firm=members[1].firm)
    record = wait_until(lambda: connec_id_for(company=company, obj=made))
    pushed = peer.get("people", record)
    assert our_entry(pushed, provider=platform.api_id, realm=company.group_uid)["id"] == str(
        made.pk
    )
    assert connec_id(pushed["organization_id"]) == people[1]["organization_id"]

    # Another application creates and updates: applied to the UUID-keyed rows.
    created = peer.create(
        "people", {"first_name": "Remote", "last_name": "Made", "organization_id": orgs[0]["id"]}
    )
    peer.update("people", people[2]["id"], {"last_name": "Renamed"})
    remote = wait_until(lambda: Member.objects.filter(first_name="Remote").first())
    assert remote.firm_id == firms[orgs[0]["id"]].pk
    assert connec_id_for(company=company, obj=remote) == created["id"]
    wait_until(lambda: Member.objects.filter(pk=members[2].pk, last_name="Renamed").exists())
    assert Member.objects.count() == 5
    assert not SyncRecordError.objects.exists()
    status = run("maestrano_sync_status", "--company", company.group_uid)
    assert mapped_count(status, "people") == 5

    # The admin's lists of sync rows find them by the UUID.
    for page in ("idmap", "outboxentry"):
        answer = admin_client.get(f"/admin/maestrano_sync/{page}/", {"q": str(first.pk)})
        assert answer.status_code == 200
        assert str(first.pk) in answer.text


def test_text_keys_given_by_new_instance_stay_each_rows_own(
    platform, sandbox_group, company, workspace
):
    """Each new row gets the key the mapper's ``new_instance`` gives it, also when the
    database refuses another row of the page (a duplicate unique code) and the page is
    written again row by row."""
    for code in ("SKU-1", "SKU-2", "SKU-1"):
        sandbox_group.create("items", {"code": code, "name": f"Item {code}"})

    run("maestrano_import", "--company", company.group_uid)

    products = list(Product.objects.order_by("code"))
    assert [p.code for p in products] == ["SKU-1", "SKU-2"]
    assert all(p.sku.startswith("P-") for p in products)
    assert len({p.sku for p in products}) == 2
    assert sorted(IdMap.objects.filter(entity="items").values_list("object_id", flat=True)) == (
        sorted(p.sku for p in products)
    )
    (refused,) = SyncRecordError.objects.filter(entity="items")
    assert "rejected by the database" in refused.reason


def test_a_text_key_that_is_no_url_segment_is_deleted_by_our_external_id(
    platform, sandbox_group, company, workspace, manual_drain, peer
):
    """A row deleted before its push was answered is deleted in Connec! by our external id,
    its key one segment of the request's URL: a key with ``/``, ``?``, ``#``, ``%`` or a
    space names that row, not another URL."""
    codes = ["ACME/2024", "Q?x=1", "A#1", "50%", "two words"]
    ours = {"provider": platform.api_id, "realm": company.group_uid}
    # In Connec! already under our external id (a push whose answer was lost), and not here.
    records = {
        code: sandbox_group.create("organizations", {"id": [{**ours, "id": code}], "name": code})
        for code in codes
    }
    with transaction.atomic():
        for code in codes:
            Firm.objects.create(workspace=workspace, code=code, name=code).delete()

    result = drain_outbox(company=company)

    assert result.parked == 0
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}
    for code, record in records.items():
        assert peer.get("organizations", connec_id(record))["status"] == "INACTIVE", code


def _mapper(name: str, **declarations):
    return type(name, (Mapper,), {"tenant_field": "workspace__company", **declarations})


def test_a_mapped_primary_key_is_a_check_error_unless_only_exported():
    """A mapped key would be changed by an update from Connec!: every update of the
    entity failed (``bulk_update()`` refuses a key), and a whole notification with it."""
    registry = MapperRegistry()
    registry.register_mapper(
        Firm, _mapper("CodeMapper", entity="organizations", fields={"code": "code", "name": "name"})
    )
    registry.register_mapper(
        Product,
        _mapper("SkuMapper", entity="items", fields={"sku": "code"}, directions=EXPORT_ONLY),
    )

    (message,) = check_registry(registry)

    assert message.id == "maestrano_sync.E006"
    assert message.msg.startswith("CodeMapper maps shapes.Firm.code, the primary key")
    assert "a field of its own" in message.hint


def test_a_key_the_import_cannot_give_is_a_check_warning():
    registry = MapperRegistry()
    registry.register_mapper(Product, _mapper("PlainProductMapper", entity="items"))
    registry.register_mapper(Firm, _mapper("FirmMapper", entity="organizations"))  # a default
    registry.register_mapper(Member, _mapper("MemberMapper", entity="people"))  # uuid4

    (message,) = check_registry(registry)

    assert message.id == "maestrano_sync.W003"
    assert message.msg.startswith("PlainProductMapper: shapes.Product.sku, the primary key")
    assert "new_instance()" in message.hint
    # The shapes' own mapper names each new row in new_instance(): nothing to say.
    registry.unregister(Product)
    registry.register_mapper(Product, type("ProductMapper", (ProductMapper,), {}))
    assert check_registry(registry) == []
