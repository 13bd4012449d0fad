"""``manage.py sandbox_seed``: deterministic demo data whose references hold, served by the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from maestrano_sandbox.models import ConnecRecord, Group
from tests.sandbox.connec_support import Hub

pytestmark = pytest.mark.django_db(databases="__all__")


def seed(*args: str) -> str:
    out = StringIO()
    call_command("sandbox_seed", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot(group_uid: str) -> list[tuple[str, str, dict]]:
    return [
        (str(r.uid), r.entity, r.data)
        for r in ConnecRecord.objects.filter(group__uid=group_uid).order_by("pk")
    ]


def test_seed_creates_the_group_and_the_share_of_each_entity(hub_app):
    output = seed("--group", "cld-demo", "--records", "50", "--app", hub_app.api_id)

    group = Group.objects.get(uid="cld-demo")
    assert hub_app in group.apps.all()
    counts = {
        e: ConnecRecord.objects.filter(group=group, entity=e).count()
        for e in ("organizations", "people", "items", "invoices")
    }
    assert counts == {"organizations": 10, "people": 20, "items": 10, "invoices": 10}
    assert "50 records" in output


def test_seeded_references_point_to_records_of_the_group(hub_app):
    seed("--group", "cld-demo", "--records", "100")
    records = ConnecRecord.objects.filter(group__uid="cld-demo")
    ids = {
        e: {str(u) for u in records.filter(entity=e).values_list("uid", flat=True)}
        for e in ("organizations", "people", "items")
    }

    for person in records.filter(entity="people"):
        assert person.data["organization_id"] in ids["organizations"]
    for invoice in records.filter(entity="invoices"):
        assert invoice.data["organization_id"] in ids["organizations"]
        assert invoice.data["person_id"] in ids["people"]
        assert invoice.data["lines"]
        assert {line["item_id"] for line in invoice.data["lines"]} <= ids["items"]


def test_the_same_seed_gives_the_same_records():
    seed("--group", "cld-a", "--records", "30", "--seed", "7")
    first = snapshot("cld-a")
    ConnecRecord.objects.all().delete()
    seed("--group", "cld-a", "--records", "30", "--seed", "7")

    assert snapshot("cld-a") == first


def test_seeding_again_adds_records_without_collisions():
    seed("--group", "cld-a", "--records", "20")
    seed("--group", "cld-a", "--records", "20")

    assert ConnecRecord.objects.filter(group__uid="cld-a").count() == 40
    codes = list(ConnecRecord.objects.filter(entity="people").values_list("data__code", flat=True))
    assert len(codes) == len(set(codes))


def test_seeded_data_is_served_by_the_api_and_is_older_than_new_writes(client, hub_app):
    seed("--group", "cld-demo", "--records", "20", "--app", hub_app.api_id)
    hub = Hub(client=client, app=hub_app)

    listed = hub.get("/cld-demo/invoices", {"$top": 2}).json()
    created = hub.post("/cld-demo/people", {"people": {"first_name": "New"}}).json()["people"]
    newer = hub.get("/cld-demo/people", {"$filter": f"updated_at ge '{created['updated_at']}'"})

    assert listed["pagination"]["total"] == 4
    assert [p["first_name"] for p in newer.json()["people"]] == ["New"]
