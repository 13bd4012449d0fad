"""Smart merging in batches (docs/protocol.md, 'Smart merging'): each create matches the
records stored before the batch and the ones the batch wrote before it, without a query
per record."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db(databases="__all__")

MATCH_BY_NAME = {"matching_fields": ["name"]}


def create(entity: str, fields: dict, opts: dict | None = None) -> dict:
    record = {**fields, **({"opts": opts} if opts else {})}
    return {"method": "post", "url": f"/api/v2/cld-1/{entity}", "params": {entity: record}}


def rename(record_id: str, name: str) -> dict:
    return {
        "method": "put",
        "url": f"/api/v2/cld-1/organizations/{record_id}",
        "params": {"organizations": {"name": name}},
    }


def results(response) -> list[tuple[int, dict]]:
    assert response.status_code == 200
    return [(r["status"], r["body"]) for r in response.json()["results"]]


def organizations(hub) -> list[dict]:
    return hub.get("/cld-1/organizations", {"$top": 500}).json()["organizations"]


def test_two_creates_with_the_same_value_in_one_batch_make_one_record(hub):
    answers = results(
        hub.batch(
            [
                create("organizations", {"name": "Acme"}, MATCH_BY_NAME),
                create(
                    "organizations",
                    {"name": "Acme", "email": {"address": "a@acme.test"}},
                    MATCH_BY_NAME,
                ),
                create("organizations", {"name": "Other"}, MATCH_BY_NAME),
            ]
        )
    )

    assert [status for status, _ in answers] == [201, 200, 201]
    first, merged = answers[0][1]["organizations"], answers[1][1]["organizations"]
    assert merged["id"] == first["id"]
    assert merged["email"] == {"address": "a@acme.test"}
    assert sorted(o["name"] for o in organizations(hub)) == ["Acme", "Other"]


def test_a_create_merges_into_the_oldest_stored_record(hub):
    # Stored without matching fields: two records share the name.
    oldest = hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}}).json()
    hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}})

    answers = results(
        hub.batch([create("organizations", {"name": "Acme", "industry": "Tools"}, MATCH_BY_NAME)])
    )

    assert answers[0][0] == 200
    assert answers[0][1]["organizations"]["id"] == oldest["organizations"]["id"]
    assert answers[0][1]["organizations"]["industry"] == "Tools"
    assert len(organizations(hub)) == 2


@pytest.mark.parametrize(
    "index_read_first", [True, False], ids=["index-then-rename", "rename-first"]
)
def test_a_create_matches_a_record_renamed_earlier_in_the_batch(hub, index_read_first):
    stored = hub.post("/cld-1/organizations", {"organizations": {"name": "Old"}}).json()
    stored_id = stored["organizations"]["id"]
    # A matching create before the rename reads the names before the batch changes them.
    before = (
        [create("organizations", {"name": "Elsewhere"}, MATCH_BY_NAME)] if index_read_first else []
    )

    answers = results(
        hub.batch(
            [
                *before,
                rename(stored_id, "New"),
                create("organizations", {"name": "Old"}, MATCH_BY_NAME),
                create("organizations", {"name": "New", "industry": "Tools"}, MATCH_BY_NAME),
            ]
        )
    )[len(before) :]

    assert [status for status, _ in answers] == [200, 201, 200]
    assert answers[1][1]["organizations"]["id"] != stored_id
    assert answers[2][1]["organizations"]["id"] == stored_id
    assert answers[2][1]["organizations"]["industry"] == "Tools"


def test_a_renamed_oldest_record_leaves_its_old_name_to_the_next_oldest(hub):
    oldest = hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}}).json()
    second = hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}}).json()

    answers = results(
        hub.batch(
            [
                create("organizations", {"name": "Elsewhere"}, MATCH_BY_NAME),
                rename(oldest["organizations"]["id"], "Acme Old"),
                create("organizations", {"name": "Acme", "industry": "Tools"}, MATCH_BY_NAME),
            ]
        )
    )

    assert answers[2][0] == 200
    assert answers[2][1]["organizations"]["id"] == second["organizations"]["id"]


def test_values_are_compared_as_json_values(hub):
    # A numeric-looking text matches the same text, not the number.
    stored = hub.post("/cld-1/items", {"items": {"name": "Bolt", "code": "1001"}}).json()

    answers = results(
        hub.batch(
            [
                create("items", {"name": "Bolt M4", "code": "1001"}, {"matching_fields": ["code"]}),
                create("items", {"name": "Nut", "code": "1002"}, {"matching_fields": ["code"]}),
            ]
        )
    )

    assert [status for status, _ in answers] == [200, 201]
    assert answers[0][1]["items"]["id"] == stored["items"]["id"]


def test_invalid_matching_fields_are_a_422_in_a_batch(hub):
    answers = results(
        hub.batch([create("organizations", {"name": "Acme"}, {"matching_fields": "name"})])
    )

    assert answers[0][0] == 422
    error = answers[0][1]["errors"][0]
    assert error["detail"] == "opts.matching_fields must be a list of field names"
    assert error["source"] == {"pointer": "/opts"}


def batch_queries(hub, names: list[str]) -> int:
    ops = [create("organizations", {"name": name}, MATCH_BY_NAME) for name in names]
    with CaptureQueriesContext(connections["sandbox"]) as queries:
        answers = results(hub.batch(ops))
    assert {status for status, _ in answers} == {201}
    return len(queries)


def test_a_batch_of_matching_creates_costs_the_same_queries_whatever_is_stored(hub):
    hub.batch([create("organizations", {"name": f"Stored {i}"}) for i in range(10)])
    with_10 = batch_queries(hub, [f"First {i}" for i in range(100)])
    hub.batch([create("organizations", {"name": f"More {i}"}) for i in range(90)])
    with_200 = batch_queries(hub, [f"Second {i}" for i in range(100)])

    assert len(organizations(hub)) == 300
    assert with_200 == with_10
    # A query per record would make at least a hundred.
    assert with_10 < 20


def stored_item(hub, name: str, ref) -> str:
    response = hub.post("/cld-1/items", {"items": {"name": name, "ref": ref}})
    assert response.status_code == 201
    return response.json()["items"]["id"]


def test_each_json_type_matches_its_own_stored_value_only(hub):
    # Stored without matching fields; "ref" is a field the schema does not know (kept as sent).
    ids = {
        "one-point-zero": stored_item(hub, "Real", 1.0),
        "text-one": stored_item(hub, "Text", "1"),
        "true": stored_item(hub, "Bool", True),
        "huge": stored_item(hub, "Huge", 2**70),
        "path": stored_item(hub, "Nested", {"code": "A-1"}),
    }
    by_ref = {"matching_fields": ["ref"]}

    answers = results(
        hub.batch(
            [
                create("items", {"name": "int one", "ref": 1}, by_ref),
                create("items", {"name": "text one", "ref": "1"}, by_ref),
                create("items", {"name": "true", "ref": True}, by_ref),
                create("items", {"name": "false", "ref": False}, by_ref),
                create("items", {"name": "huge", "ref": 2**70}, by_ref),
                create("items", {"name": "huge + 1", "ref": 2**70 + 1}, by_ref),
                create("items", {"name": "nested", "ref": {"code": "A-1"}}, by_ref),
                create(
                    "items",
                    {"name": "by path", "ref": {"code": "A-1"}},
                    {"matching_fields": ["ref.code"]},
                ),
            ]
        )
    )

    merged_into = [body["items"]["id"] if status == 200 else None for status, body in answers]
    assert [status for status, _ in answers] == [200, 200, 200, 201, 200, 201, 201, 200]
    assert merged_into[:3] == [ids["one-point-zero"], ids["text-one"], ids["true"]]
    assert merged_into[4] == ids["huge"]
    assert merged_into[7] == ids["path"]


def test_a_value_known_only_once_resolved_is_matched_too(hub):
    # A reference sent as an external id is a Connec! id only after validation: the
    # batch cannot announce it, and the create still finds the stored person holding it.
    ours = [{"provider": "my-app", "realm": "r", "id": "47"}]
    organization_id, other_id = (
        hub.post("/cld-1/organizations", {"organizations": {"name": name}}).json()["organizations"][
            "id"
        ]
        for name in ("Ours", "Other")
    )
    hub.put(f"/cld-1/organizations/{organization_id}", {"organizations": {"id": ours}})
    stored = hub.post(
        "/cld-1/people", {"people": {"last_name": "Stored", "organization_id": organization_id}}
    ).json()["people"]
    by_organization = {"matching_fields": ["organization_id"]}

    answers = results(
        hub.batch(
            [
                # The first lookup reads the people of the values the batch announced.
                create(
                    "people", {"last_name": "Other", "organization_id": other_id}, by_organization
                ),
                create("people", {"last_name": "Merged", "organization_id": ours}, by_organization),
            ]
        )
    )

    assert [status for status, _ in answers] == [201, 200]
    assert answers[1][1]["people"]["id"] == stored["id"]
    assert answers[1][1]["people"]["last_name"] == "Merged"


def test_a_record_whose_value_the_batch_removed_is_not_matched_by_its_stored_value(hub):
    first_id, other_id = (
        hub.post("/cld-1/organizations", {"organizations": {"name": name}}).json()["organizations"][
            "id"
        ]
        for name in ("First", "Other")
    )
    first_by_external_id = [{"provider": "my-app", "realm": "r", "id": "first"}]
    hub.put(f"/cld-1/organizations/{first_id}", {"organizations": {"id": first_by_external_id}})
    stored = hub.post(
        "/cld-1/people", {"people": {"last_name": "Stored", "organization_id": first_id}}
    ).json()["people"]
    leave = {
        "method": "put",
        "url": f"/api/v2/cld-1/people/{stored['id']}",
        "params": {"people": {"organization_id": None}},
    }
    by_organization = {"matching_fields": ["organization_id"]}

    answers = results(
        hub.batch(
            [
                create(
                    "people", {"last_name": "Other", "organization_id": other_id}, by_organization
                ),
                leave,
                # Organization "first" by external id: looked up in the database only now,
                # where the stored person still names it; the batch took it away.
                create(
                    "people",
                    {"last_name": "New", "organization_id": first_by_external_id},
                    by_organization,
                ),
            ]
        )
    )

    assert [status for status, _ in answers] == [201, 200, 201]
    assert answers[1][1]["people"]["organization_id"] is None
    assert answers[2][1]["people"]["id"] != stored["id"]


@pytest.mark.parametrize(
    "value",
    [1e308, -0.0, 123456789012345678901234567890, 'it\'s "q" %s %% \\ ; --', "ÿ€😀"],
    ids=["largest-float", "negative-zero", "beyond-64-bits", "quotes-and-percents", "non-ascii"],
)
def test_an_odd_matching_value_merges_the_second_create(hub, value):
    by_ref = {"matching_fields": ["ref"]}
    first = results(hub.batch([create("items", {"name": "First", "ref": value}, by_ref)]))
    second = results(hub.batch([create("items", {"name": "Second", "ref": value}, by_ref)]))

    assert first[0][0] == 201
    assert second[0][0] == 200
    assert second[0][1]["items"]["id"] == first[0][1]["items"]["id"]


def test_a_path_through_a_list_never_matches(hub):
    by_first = {"matching_fields": ["ref.0"]}
    answers = [
        results(hub.batch([create("items", {"name": name, "ref": ["v"]}, by_first)]))[0]
        for name in ("First", "Second")
    ]

    assert [status for status, _ in answers] == [201, 201]
