"""External ids and smart merging (docs/protocol.md, 'External ids', 'Smart merging') on the
sandbox Connec! API."""

from __future__ import annotations

import pytest

from maestrano_sandbox.models import Group

pytestmark = pytest.mark.django_db(databases="__all__")

REALM = "2243"


def ours(record_id: str, provider: str = "my-app") -> dict:
    return {"realm": REALM, "provider": provider, "id": record_id}


def connec_id(entries: list[dict]) -> str:
    [entry] = [e for e in entries if e["provider"] == "connec"]
    return entry["id"]


def test_external_ids_header_turns_id_and_references_into_lists(hub):
    external = hub.as_external()
    organization = external.post(
        "/cld-1/organizations", {"organizations": {"id": [ours("47")], "name": "Acme"}}
    ).json()["organizations"]
    external.post(
        "/cld-1/people",
        {"people": {"id": [ours("1")], "first_name": "Anastasia", "organization_id": [ours("47")]}},
    )

    person = external.get("/cld-1/people").json()["people"][0]

    assert person["id"][0] == ours("1")
    assert person["id"][-1]["provider"] == "connec"
    assert person["id"][-1]["realm"] == person["channel_id"]
    assert person["organization_id"] == [ours("47"), organization["id"][-1]]


def test_without_the_header_ids_are_plain_strings(hub):
    hub.post("/cld-1/people", {"people": {"id": [ours("1")], "first_name": "A"}})

    person = hub.get("/cld-1/people").json()["people"][0]

    assert isinstance(person["id"], str)


def test_a_post_with_our_id_creates_then_updates_the_same_record(hub):
    external = hub.as_external()
    first = external.post("/cld-1/people", {"people": {"id": [ours("17")], "first_name": "Bob"}})
    second = external.post(
        "/cld-1/people", {"people": {"id": [ours("17")], "last_name": "Builder"}}
    )

    assert first.status_code == 201
    assert second.status_code == 200
    assert connec_id(first.json()["people"]["id"]) == connec_id(second.json()["people"]["id"])
    assert second.json()["people"]["first_name"] == "Bob"
    assert second.json()["people"]["last_name"] == "Builder"
    assert hub.get("/cld-1/people").json()["pagination"]["total"] == 1


def test_same_external_id_from_another_realm_or_provider_is_another_record(hub):
    hub.post("/cld-1/people", {"people": {"id": [ours("17")], "first_name": "A"}})
    hub.post(
        "/cld-1/people",
        {
            "people": {
                "id": [{"realm": "other", "provider": "my-app", "id": "17"}],
                "first_name": "B",
            }
        },
    )
    hub.post("/cld-1/people", {"people": {"id": [ours("17", "other-app")], "first_name": "C"}})

    assert hub.get("/cld-1/people").json()["pagination"]["total"] == 3


def test_retrieve_by_external_id(hub):
    created = hub.post("/cld-1/people", {"people": {"id": [ours("17")], "first_name": "Bob"}})

    response = hub.get("/cld-1/people/17", {"opts[provider]": "my-app", "opts[realm]": REALM})
    missing = hub.get("/cld-1/people/18", {"opts[provider]": "my-app", "opts[realm]": REALM})

    assert response.status_code == 200
    assert response.json()["people"]["id"] == created.json()["people"]["id"]
    assert missing.status_code == 404


def test_update_by_external_id(hub):
    hub.post("/cld-1/people", {"people": {"id": [ours("17")], "first_name": "Bob"}})

    response = hub.put(
        f"/cld-1/people/17?opts[provider]=my-app&opts[realm]={REALM}",
        {"people": {"job_title": "Builder"}},
    )

    assert response.status_code == 200
    assert response.json()["people"]["job_title"] == "Builder"


def test_an_external_id_of_another_group_is_not_found(hub, hub_app):
    other = Group.objects.create(uid="cld-2", name="Other")
    other.apps.add(hub_app)
    hub.post("/cld-2/people", {"people": {"id": [ours("17")], "first_name": "Elsewhere"}})

    response = hub.get("/cld-1/people/17", {"opts[provider]": "my-app", "opts[realm]": REALM})
    created = hub.post("/cld-1/people", {"people": {"id": [ours("17")], "first_name": "Here"}})

    assert response.status_code == 404
    assert created.status_code == 201


def test_unresolvable_external_reference_is_a_422(hub):
    response = hub.post(
        "/cld-1/people", {"people": {"first_name": "A", "organization_id": [ours("404")]}}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["source"]["pointer"] == "/people/organization_id"


def test_invoice_lines_resolve_item_external_ids(hub):
    external = hub.as_external()
    item = external.post("/cld-1/items", {"items": {"id": [ours("I1")], "name": "Widget"}}).json()

    invoice = external.post(
        "/cld-1/invoices",
        {"invoices": {"id": [ours("INV1")], "lines": [{"quantity": 1, "item_id": [ours("I1")]}]}},
    ).json()["invoices"]

    assert invoice["lines"][0]["item_id"] == [ours("I1"), item["items"]["id"][-1]]
    plain = hub.get(f"/cld-1/invoices/{connec_id(invoice['id'])}").json()["invoices"]
    assert plain["lines"][0]["item_id"] == connec_id(item["items"]["id"])


def test_a_connec_entry_designates_the_record_to_update(hub):
    created = hub.post("/cld-1/people", {"people": {"first_name": "A"}}).json()["people"]

    response = hub.post(
        "/cld-1/people",
        {
            "people": {
                "id": [
                    ours("9"),
                    {"realm": created["channel_id"], "provider": "connec", "id": created["id"]},
                ],
                "last_name": "Linked",
            }
        },
    )

    assert response.status_code == 200
    assert (
        hub.get("/cld-1/people/9", {"opts[provider]": "my-app", "opts[realm]": REALM}).json()[
            "people"
        ]["last_name"]
        == "Linked"
    )


def test_ids_designating_two_records_are_a_422(hub):
    hub.post("/cld-1/people", {"people": {"id": [ours("1")], "first_name": "A"}})
    hub.post("/cld-1/people", {"people": {"id": [ours("2")], "first_name": "B"}})

    response = hub.post(
        "/cld-1/people", {"people": {"id": [ours("1"), ours("2")], "first_name": "C"}}
    )

    assert response.status_code == 422


def test_a_malformed_id_list_is_a_422(hub):
    response = hub.post("/cld-1/people", {"people": {"id": [{"id": "1"}], "first_name": "A"}})

    assert response.status_code == 422


def test_smart_merge_on_matching_fields_updates_the_existing_record(hub):
    first = hub.post(
        "/cld-1/people", {"people": {"first_name": "A", "email": {"address": "a@example.com"}}}
    ).json()["people"]

    merged = hub.post(
        "/cld-1/people",
        {
            "people": {
                "last_name": "Merged",
                "email": {"address": "a@example.com"},
                "opts": {"matching_fields": ["email.address"]},
            }
        },
    )
    distinct = hub.post(
        "/cld-1/people",
        {
            "people": {"first_name": "B", "email": {"address": "b@example.com"}},
            "opts": {"matching_fields": ["email.address"]},
        },
    )

    assert merged.status_code == 200
    assert merged.json()["people"]["id"] == first["id"]
    assert merged.json()["people"]["first_name"] == "A"
    assert merged.json()["people"]["last_name"] == "Merged"
    assert "opts" not in merged.json()["people"]
    assert distinct.status_code == 201


def test_smart_merge_without_the_matching_value_creates(hub):
    hub.post("/cld-1/items", {"items": {"name": "No code"}})

    response = hub.post(
        "/cld-1/items", {"items": {"name": "Also no code"}, "opts": {"matching_fields": ["sku"]}}
    )

    assert response.status_code == 201


def test_smart_merge_on_a_field_named_like_a_query_lookup(hub):
    # A matching field is a (dotted) field name, whatever the name: ``in`` is no lookup.
    fields = {"first_name": "A", "tags": {"in": "x"}, "opts": {"matching_fields": ["tags.in"]}}
    first = hub.post("/cld-1/people", {"people": fields})
    second = hub.post("/cld-1/people", {"people": {**fields, "last_name": "L"}})

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["people"]["id"] == first.json()["people"]["id"]
