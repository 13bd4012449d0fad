"""The sandbox Connec! batch endpoint: sequential ops, each succeeding or failing on its own."""

from __future__ import annotations

import pytest

from tests.sandbox.connec_support import Hub, register_app

pytestmark = pytest.mark.django_db(databases="__all__")


def test_batch_runs_ops_in_order_and_reports_each_status(hub):
    response = hub.batch(
        [
            {"method": "post", "url": "/api/v2/cld-1/items", "params": {"items": {"name": "W"}}},
            {"method": "post", "url": "/api/v2/cld-1/items", "params": {"items": {"code": "X"}}},
            {"method": "get", "url": "/api/v2/cld-1/items", "params": {"$top": 10}},
        ]
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 200]
    assert results[0]["body"]["items"]["name"] == "W"
    assert results[1]["body"]["errors"][0]["status"] == "422"
    assert [i["name"] for i in results[2]["body"]["items"]] == ["W"]


def test_an_ops_group_uid_is_read_as_one_percent_encoded_segment(hub):
    """The apps quote the group uid as they quote a record id (any character may be
    encoded, ``-`` as ``%2D``): both name the same group."""
    results = hub.batch(
        [{"method": "post", "url": "/api/v2/cld%2D1/items", "params": {"items": {"name": "E"}}}]
    ).json()["results"]

    assert [r["status"] for r in results] == [201]
    assert [i["name"] for i in hub.get("/cld-1/items").json()["items"]] == ["E"]


def test_a_failing_op_does_not_roll_back_the_others(hub):
    hub.batch(
        [
            {
                "method": "post",
                "url": "/api/v2/cld-1/people",
                "params": {"people": {"first_name": "A"}},
            },
            {"method": "put", "url": "/api/v2/cld-1/people/nope", "params": {"people": {}}},
            {
                "method": "post",
                "url": "/api/v2/cld-1/people",
                "params": {"people": {"first_name": "B"}},
            },
        ]
    )

    names = [p["first_name"] for p in hub.get("/cld-1/people").json()["people"]]
    assert names == ["A", "B"]


def test_batch_put_and_get_by_id(hub):
    created = hub.post("/cld-1/people", {"people": {"first_name": "A"}}).json()["people"]
    url = f"/api/v2/cld-1/people/{created['id']}"

    results = hub.batch(
        [
            {"method": "put", "url": url, "params": {"people": {"last_name": "Z"}}},
            {"method": "get", "url": url},
        ]
    ).json()["results"]

    assert [r["status"] for r in results] == [200, 200]
    assert results[1]["body"]["people"]["last_name"] == "Z"


def test_batch_honours_external_ids_and_upserts(hub):
    entry = {"realm": "r1", "provider": "my-app", "id": "42"}
    op = {
        "method": "post",
        "url": "/api/v2/cld-1/people",
        "params": {"people": {"id": [entry], "first_name": "Once"}},
    }

    first = hub.as_external().batch([op]).json()["results"][0]
    again = hub.as_external().batch([op]).json()["results"][0]

    assert (first["status"], again["status"]) == (201, 200)
    assert first["body"]["people"]["id"][0] == entry
    assert first["body"]["people"]["id"] == again["body"]["people"]["id"]
    assert hub.get("/cld-1/people").json()["pagination"]["total"] == 1


def test_batch_ops_on_a_group_the_app_does_not_use_fail_alone(client, hub_group):
    outsider = Hub(client=client, app=register_app("outsider"))

    results = outsider.batch(
        [{"method": "get", "url": "/api/v2/cld-1/people"}, {"method": "delete", "url": "/x"}]
    ).json()["results"]

    assert [r["status"] for r in results] == [404, 400]


def test_batch_needs_credentials(client, hub_group):
    response = Hub(client=client, app=None).batch([])

    assert response.status_code == 401


@pytest.mark.parametrize("body", ['{"ops": "nope"}', "[1, 2]", "not json"])
def test_a_malformed_batch_is_a_400(hub, client, body):
    response = client.post(
        "/sandbox/connec/batch",
        body,
        content_type="application/json",
        headers=hub.headers(),
    )

    assert response.status_code == 400


def test_each_op_sees_the_ops_before_it_in_the_same_batch(hub):
    org = {"realm": "r1", "provider": "my-app", "id": "org-1"}
    person = {"realm": "r1", "provider": "my-app", "id": "person-1"}

    def post(entity: str, fields: dict) -> dict:
        return {"method": "post", "url": f"/api/v2/cld-1/{entity}", "params": {entity: fields}}

    results = (
        hub.as_external()
        .batch(
            [
                post("organizations", {"id": [org], "name": "Acme"}),
                post("people", {"id": [person], "first_name": "A", "organization_id": [org]}),
                post("people", {"id": [person], "last_name": "Again"}),
                post("organizations", {"id": [org], "name": "Acme 2"}),
                {
                    "method": "put",
                    "url": "/api/v2/cld-1/people/person-1?opts[provider]=my-app&opts[realm]=r1",
                    "params": {"people": {"job_title": "CEO"}},
                },
                {"method": "get", "url": "/api/v2/cld-1/people"},
            ]
        )
        .json()["results"]
    )

    assert [r["status"] for r in results] == [201, 201, 200, 200, 200, 200]
    org_id = results[0]["body"]["organizations"]["id"][-1]["id"]
    # Each answer shows the record as its own op left it.
    assert results[1]["body"]["people"]["organization_id"][-1]["id"] == org_id
    assert "last_name" not in results[1]["body"]["people"]
    assert results[2]["body"]["people"]["last_name"] == "Again"
    assert results[3]["body"]["organizations"]["name"] == "Acme 2"
    (listed,) = results[5]["body"]["people"]
    assert (listed["first_name"], listed["last_name"], listed["job_title"]) == ("A", "Again", "CEO")


def test_codes_and_timestamps_of_a_batch_follow_the_op_order(hub):
    hub.post("/cld-1/items", {"items": {"name": "Before"}})

    results = hub.batch(
        [
            {"method": "post", "url": "/api/v2/cld-1/items", "params": {"items": {"name": n}}}
            for n in ("A", "B", "C")
        ]
    ).json()["results"]

    items = [r["body"]["items"] for r in results]
    assert [i["code"] for i in items] == ["IT2", "IT3", "IT4"]
    stamps = [i["updated_at"] for i in items]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_an_op_failing_validation_leaves_the_record_as_the_ops_before_it_left_it(hub):
    person = {"realm": "r1", "provider": "my-app", "id": "person-1"}
    op = {"method": "post", "url": "/api/v2/cld-1/people"}

    results = hub.batch(
        [
            {**op, "params": {"people": {"id": [person], "first_name": "A"}}},
            {**op, "params": {"people": {"id": [person], "first_name": "", "title": "Dr"}}},
            {**op, "params": {"people": {"id": [person], "last_name": "B"}}},
        ]
    ).json()["results"]

    assert [r["status"] for r in results] == [201, 422, 200]
    (stored,) = hub.get("/cld-1/people").json()["people"]
    assert (stored["first_name"], stored["last_name"], stored.get("title")) == ("A", "B", None)


# Text that needs escaping in every form PostgreSQL reads (JSON, SQL literals, arrays).
AWKWARD = "Quote \" backslash \\ brace {} comma , apostrophe ' NUL-free ünïcödé 🙂"


def test_a_bulk_batch_stores_each_record_exactly_and_a_replay_duplicates_nothing(hub):
    """A batch of creates (one bulk insert), replayed as a retry after a lost answer
    would: the same records, answered 200, never a second copy; a bad record fails alone."""
    people = [
        {
            "method": "post",
            "url": "/api/v2/cld-1/people",
            "params": {
                "people": {
                    "id": [{"realm": "r1", "provider": "my-app", "id": str(n)}],
                    "first_name": f"{AWKWARD} {n}",
                    "email": {"address": f"p{n}@example.com"},
                }
            },
        }
        for n in range(30)
    ]
    people[7]["params"]["people"]["email"] = {"address": "not-an-email"}
    external = hub.as_external()

    first = external.batch(people).json()["results"]
    again = external.batch(people).json()["results"]

    assert [r["status"] for r in first] == [201] * 7 + [422] + [201] * 22
    assert [r["status"] for r in again] == [200] * 7 + [422] + [200] * 22
    assert first[7]["body"]["errors"][0]["source"]["pointer"].endswith("/email/address")
    for before, after in zip(first, again, strict=True):
        if before["status"] < 300:
            assert before["body"]["people"]["id"] == after["body"]["people"]["id"]
    stored = hub.get("/cld-1/people", {"$top": 100, "$orderby": "created_at asc"}).json()
    assert stored["pagination"]["total"] == 29
    assert [p["first_name"] for p in stored["people"]] == [
        f"{AWKWARD} {n}" for n in range(30) if n != 7
    ]


def test_a_bulk_update_batch_stores_each_change_exactly(hub):
    created = [
        hub.post("/cld-1/people", {"people": {"first_name": f"P{n}"}}).json()["people"]
        for n in range(5)
    ]
    ops = [
        {
            "method": "put",
            "url": f"/api/v2/cld-1/people/{person['id']}",
            "params": {"people": {"last_name": f"{AWKWARD} {n}", "notes": [AWKWARD]}},
        }
        for n, person in enumerate(created)
    ]

    results = hub.batch(ops).json()["results"]

    assert [r["status"] for r in results] == [200] * 5
    for n, person in enumerate(created):
        stored = hub.get(f"/cld-1/people/{person['id']}").json()["people"]
        assert (stored["first_name"], stored["last_name"]) == (f"P{n}", f"{AWKWARD} {n}")
        assert stored["notes"] == [AWKWARD]


def planner_rows() -> dict[str, float]:
    """What PostgreSQL's statistics say the tables hold (-1: never analyzed)."""
    from django.db import connections

    with connections["sandbox"].cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class "
            "WHERE relname IN "
            "('maestrano_sandbox_connecrecord', 'maestrano_sandbox_connecexternalid')"
        )
        return dict(cursor.fetchall())


def test_postgresql_statistics_follow_bulk_batches(hub, monkeypatch):
    """The record and external-id tables are analyzed once this process has written as
    many records as they held at the last ANALYZE (from MIN_ROWS on)."""
    from django.db import connections

    from maestrano_sandbox.connec import statistics

    if connections["sandbox"].vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    monkeypatch.setattr(statistics, "MIN_ROWS", 4)
    monkeypatch.setattr(statistics, "_state", {"written": 0, "next_at": 4})
    before = planner_rows()

    def batch(count: int, start: int) -> None:
        ops = [
            {
                "method": "post",
                "url": "/api/v2/cld-1/people",
                "params": {
                    "people": {
                        "id": [{"realm": "r", "provider": "p", "id": str(n)}],
                        "first_name": "A",
                    }
                },
            }
            for n in range(start, start + count)
        ]
        assert {r["status"] for r in hub.as_external().batch(ops).json()["results"]} == {201}

    batch(3, 0)  # 3 written: below MIN_ROWS
    assert planner_rows() == before
    batch(3, 3)  # 6: analyzed; the next ANALYZE once 6 more are written
    assert planner_rows() == {
        "maestrano_sandbox_connecrecord": 6,
        "maestrano_sandbox_connecexternalid": 6,
    }
    batch(3, 6)  # 3 more: below
    assert planner_rows() == {
        "maestrano_sandbox_connecrecord": 6,
        "maestrano_sandbox_connecexternalid": 6,
    }
    batch(3, 9)  # 6 more: analyzed again
    assert planner_rows() == {
        "maestrano_sandbox_connecrecord": 12,
        "maestrano_sandbox_connecexternalid": 12,
    }


def test_a_batch_answers_the_external_ids_of_its_records_and_of_their_references(hub):
    """The answer's id lists (``CONNEC-EXTERNAL-IDS``) are looked up by the records' keys
    the batch knows: its own records, created or updated, and the ones referenced, from
    this batch or an earlier one, with every app's external ids, oldest first."""

    def entry(n: str) -> dict:
        return {"realm": "r1", "provider": "my-app", "id": n}

    def org(n: str) -> dict:
        return {
            "method": "post",
            "url": "/api/v2/cld-1/organizations",
            "params": {"organizations": {"id": [entry(n)], "name": f"Org {n}"}},
        }

    def person(n: str, employer: str) -> dict:
        return {
            "method": "post",
            "url": "/api/v2/cld-1/people",
            "params": {
                "people": {"id": [entry(n)], "first_name": n, "organization_id": [entry(employer)]}
            },
        }

    external = hub.as_external()
    [earlier] = external.batch([org("o1")]).json()["results"]
    earlier_id = next(
        e["id"] for e in earlier["body"]["organizations"]["id"] if e["provider"] == "connec"
    )
    # Another app's external id on the earlier organization: answered too, after ours.
    other = {"realm": "r2", "provider": "other-app", "id": "x1"}
    put = {
        "method": "put",
        "url": f"/api/v2/cld-1/organizations/{earlier_id}",
        "params": {"organizations": {"id": [other], "name": "Org o1, renamed"}},
    }

    results = external.batch([org("o2"), person("p1", "o1"), person("p2", "o2"), put]).json()[
        "results"
    ]

    assert [r["status"] for r in results] == [201, 201, 201, 200]
    o2, p1, p2, renamed = (r["body"] for r in results)
    o2_id = o2["organizations"]["id"]
    assert o2_id[0] == entry("o2") and o2_id[1]["provider"] == "connec"
    assert p1["people"]["id"][0] == entry("p1")
    assert p2["people"]["id"][0] == entry("p2")
    assert p2["people"]["organization_id"] == o2_id
    # p1 was answered before the put attached the other app's id: what the batch
    # wrote is rendered once the batch is done, so every answer shows the final ids.
    assert p1["people"]["organization_id"][:2] == [entry("o1"), other]
    assert renamed["organizations"]["id"][:2] == [entry("o1"), other]
    assert renamed["organizations"]["id"][2] == {
        **renamed["organizations"]["id"][2],
        "id": earlier_id,
    }
