"""The notifications webhook refuses a malformed notification with a clear 4xx and stores
nothing; a bad record of a well-formed one is parked with its reason, alone."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from django.utils import timezone

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry, SyncRecordError

URL = "/maestrano/connec/notifications"


def auth(api_id: str, api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{api_id}:{api_key}".encode()).decode()


@pytest.fixture
def companies(db, two_presets):
    return {
        "one": Company.objects.create(preset="maestrano", group_uid="cld-1", name="One"),
        "two": Company.objects.create(preset="maestrano", group_uid="cld-2", name="Two"),
        "acme": Company.objects.create(preset="acme-market", group_uid="cld-9", name="Acme"),
    }


def record(group_uid: str, **fields) -> dict:
    return {"id": "7fef3180-6bf8", "group_id": group_uid, "name": "Org", **fields}


def post(
    client,
    body,
    *,
    credentials=("app-1", "key-1"),
    url=URL,
    raw=False,
    content_type="application/json",
):
    data = body if raw else json.dumps(body)
    return client.post(
        url,
        data,
        content_type=content_type,
        HTTP_AUTHORIZATION=auth(*credentials),
    )


@pytest.fixture
def nothing_stored():
    yield
    assert not InboxEntry.objects.exists()
    assert not Organization.objects.exists()


def test_a_valid_notification_is_stored_and_answered_202(client, companies):
    before = timezone.now()
    response = post(client, {"organizations": [record("cld-1")]})

    assert response.status_code == 202
    entry = InboxEntry.objects.get()
    assert response.json() == {"accepted": 1, "notification": entry.pk}
    assert (entry.company, entry.preset, entry.record_count) == (companies["one"], "maestrano", 1)
    assert entry.payload == {"organizations": [record("cld-1")]}
    assert (entry.status, entry.attempts, entry.last_error, entry.processed_at) == (
        InboxEntry.Status.PENDING,
        0,
        "",
        None,
    )
    after = timezone.now()
    assert before <= entry.received_at <= after
    assert before <= entry.updated_at <= after


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.api+json", "application/vnd.api+json; charset=utf-8", "application/json"],
)
def test_the_hubs_own_media_type_is_accepted(client, companies, content_type):
    """Connec!'s media type (docs/protocol.md, 'Paths and media types'): a 415 would lose the
    notification (the hub sends a refused one again never)."""
    response = post(client, {"organizations": [record("cld-1")]}, content_type=content_type)

    assert response.status_code == 202
    assert InboxEntry.objects.get().payload == {"organizations": [record("cld-1")]}


def test_another_media_type_is_refused(client, companies, nothing_stored):
    response = post(client, {"organizations": [record("cld-1")]}, content_type="text/plain")

    assert response.status_code == 415


def test_the_payload_is_stored_as_it_was_posted(client, companies):
    odd = record(
        "cld-1",
        name="Ünïcode ✓ 'quoted' \"double\" \\ %s ? null",
        notes=None,
        amount=12345678901234567890,
        ratio=0.1,
        nested={"a": [1, "two", {"three": False}], "": ""},
        empty=[],
    )
    response = post(client, {"organizations": [odd], "people": [record("cld-1")]})

    assert response.status_code == 202
    entry = InboxEntry.objects.get()
    assert entry.payload == {"organizations": [odd], "people": [record("cld-1")]}
    assert entry.record_count == 2


def test_the_per_preset_url_takes_that_preset_credentials(client, companies):
    response = post(
        client,
        {"people": [record("cld-9")]},
        credentials=("acme-app", "acme-key"),
        url="/maestrano/acme-market/connec/notifications",
    )

    assert response.status_code == 202
    assert InboxEntry.objects.get().company == companies["acme"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[]", 400, "must be an object"),
        ('{"organizations": {"id": "x"}}', 400, "must be a list"),
        ('{"spaceships": {"id": "x", "group_id": "cld-1"}}', 400, "must be a list"),
        ('{"organizations": NaN}', 400, "NaN is not a JSON number"),
        ('{"organizations": [], "organizations": []}', 400, "is repeated in one object"),
        ('{"organizations": [{"id": "x", "id": "y", "group_id": "cld-1"}]}', 400, "repeated"),
        ('{"\\u0000": []}', 400, "NUL character"),
        ("[" * 100_000 + "]" * 100_000, 400, ""),
        (b"\xff\xfe{}", 400, "not valid JSON"),
    ],
)
def test_malformed_payloads_are_refused(client, companies, nothing_stored, body, status, message):
    """What is not ``{"<entity>": [{...}, ...]}`` (the envelope), or not JSON that reads as
    one meaning, is refused whole."""
    response = post(client, body, raw=True)

    assert response.status_code == status
    assert message in response.json()["error"]
    assert not SyncRecordError.objects.exists()


def good(connec_id: str) -> dict:
    return record("cld-1", id=connec_id, name=f"Org {connec_id}")


def assert_parked_alone(response, *, reason: str, record_text: str | None = None):
    """The answer is a 202; the good records (``ok-1``, ``ok-2``) are stored, the bad
    one is parked for cld-1 with ``reason`` and the whole record."""
    assert response.status_code == 202, response.content
    entry = InboxEntry.objects.get()
    assert response.json() == {"accepted": 2, "notification": entry.pk, "parked": 1}
    assert entry.payload == {"organizations": [good("ok-1"), good("ok-2")]}
    parked = SyncRecordError.objects.get()
    assert (parked.company.group_uid, parked.entity) == ("cld-1", "organizations")
    assert parked.reason.startswith("Refused when notified: "), parked.reason
    assert reason in parked.reason, parked.reason
    if record_text is not None:
        assert parked.payload_excerpt == record_text
    return parked


BAD_RECORDS = [
    ({"group_id": "cld-1", "name": "No id"}, "$.organizations[1].id must be a non-empty string"),
    (record("cld-1", id=5), "$.organizations[1].id must be a non-empty string"),
    (record("cld-1", id=" "), "$.organizations[1].id must be a non-empty string"),
    (record("cld-1", id={"provider": "connec", "id": "c-1"}), "non-empty string or a list"),
    (record("cld-1", id=[]), "has no entry with provider 'connec'"),
    (record("cld-1", id=[{"provider": "app-1", "realm": "cld-1", "id": "42"}]), "no entry"),
    (record("cld-1", id=[{"provider": "connec", "realm": "org-1", "id": 5}]), "no entry"),
    (record("cld-1", id=["c-1"]), "no entry"),
    # Longer than any id column holds: the same refusal on SQLite and PostgreSQL.
    (record("cld-1", id="c" * 65), "$.organizations[1].id is longer than 64 characters"),
    (
        record("cld-1", id=[{"provider": "connec", "realm": "cld-1", "id": "c" * 65}]),
        "$.organizations[1].id is longer than 64 characters",
    ),
    (
        record(
            "cld-1",
            id=[
                {"provider": "connec", "realm": "org-8", "id": "a"},
                {"provider": "connec", "realm": "org-9", "id": "b"},
            ],
        ),
        "several",
    ),
    # Realms that are not text (a list answered 500: unhashable in a set).
    (
        record(
            "cld-1",
            channel_id=[],
            id=[
                {"provider": "connec", "realm": "org-8", "id": "a"},
                {"provider": "connec", "realm": "org-9", "id": "b"},
            ],
        ),
        "several",
    ),
    (
        record(
            "cld-1",
            id=[
                {"provider": "connec", "realm": ["cld-1"], "id": "a"},
                {"provider": "connec", "realm": {"x": 1}, "id": "b"},
            ],
        ),
        "several",
    ),
    (record("cld-1", updated_at=5), "$.organizations[1].updated_at must be a string"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_RECORDS)
def test_a_bad_record_is_parked_with_its_reason_and_the_others_are_stored(
    client, companies, bad, reason
):
    response = post(client, {"organizations": [good("ok-1"), bad, good("ok-2")]})

    parked = assert_parked_alone(response, reason=reason)
    assert json.loads(parked.payload_excerpt) == bad  # the whole record, nothing lost
    valid_id = isinstance(bad.get("id"), str) and bad["id"].strip() and len(bad["id"]) <= 64
    assert parked.connec_id == (bad["id"] if valid_id else "")


def three(middle: str) -> str:
    """A body of three records of cld-1, the middle one ``{"group_id": "cld-1", <middle>}``
    (raw JSON text: what ``json.dumps`` never writes)."""
    first, last = json.dumps(good("ok-1")), json.dumps(good("ok-2"))
    return f'{{"organizations": [{first}, {{"group_id": "cld-1", {middle}}}, {last}]}}'


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize(
    ("where", "path"),
    [
        ('"total": %s', "$.organizations[1].total"),
        ('"address": {"billing": {"city": %s}}', "$.organizations[1].address.billing.city"),
        ('"lines": [%s]', "$.organizations[1].lines[0]"),
    ],
)
def test_a_record_with_a_non_standard_number_is_parked(client, companies, number, where, path):
    response = post(client, three('"id": "o-1", ' + where % number), raw=True)

    parked = assert_parked_alone(response, reason=f"{path} is ")
    assert "not a JSON number" in parked.reason
    assert parked.connec_id == "o-1"


@pytest.mark.parametrize("digits", ["1" * 4301, "-" + "9" * 5000, "1" * 100_000])
@pytest.mark.parametrize(
    ("where", "path"),
    [
        ('"total": %s', "$.organizations[1].total"),
        ('"address": {"billing": {"postal_code": %s}}', "$.organizations[1].address.billing"),
        ('"lines": [1, %s]', "$.organizations[1].lines[1]"),
    ],
)
def test_a_record_with_an_integer_of_more_digits_than_python_reads_is_parked_alone(
    client, companies, digits, where, path
):
    """Standard JSON (RFC 8259 sets no limit), but more digits than Python converts to an
    integer (``sys.get_int_max_str_digits``): the record is parked as a number that
    overflows is, never the whole notification (a 400 is not sent again: its good records
    would be lost)."""
    response = post(client, three('"id": "o-1", ' + where % digits), raw=True)

    parked = assert_parked_alone(response, reason=f"{path}")
    assert f"has {len(digits.lstrip('-'))} digits, more than a number may have" in parked.reason
    assert parked.connec_id == "o-1"
    assert digits in parked.payload_excerpt  # the whole record, the number's digits kept


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800", "\\udfff", "\\udc00x"])
@pytest.mark.parametrize(
    ("field", "where"),
    [
        ('"id": "o-1", "name": "%s"', "$.organizations[1].name"),
        ('"id": "%s"', "$.organizations[1].id"),
        ('"id": "o-1", "updated_at": "%s"', "$.organizations[1].updated_at"),
        ('"id": "o-1", "address": {"billing": {"city": "%s"}}', ".address.billing.city"),
        ('"id": "o-1", "%s": 1', "a key of $.organizations[1]"),
    ],
)
def test_a_record_with_text_no_database_stores_is_parked_with_the_text_escaped(
    client, companies, text, field, where
):
    response = post(client, three(field.replace("%s", text)), raw=True)

    parked = assert_parked_alone(response, reason=where)
    assert "NUL character" in parked.reason or "lone surrogate" in parked.reason
    assert text in parked.payload_excerpt  # kept as its JSON escape
    assert parked.connec_id == ("o-1" if '"id": "o-1"' in field else "")


@pytest.mark.parametrize("depth", [65, 500])
def test_a_record_nested_too_deep_is_parked(client, companies, depth):
    response = post(client, three(f'"id": "o-1", "notes": {"[" * depth}{"]" * depth}'), raw=True)

    assert_parked_alone(response, reason="nested deeper than 64 levels")


def test_a_body_nested_deeper_than_the_parser_reads_is_refused(client, companies, nothing_stored):
    response = post(client, three(f'"id": "o-1", "notes": {"[" * 5000}{"]" * 5000}'), raw=True)

    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["error"]


@pytest.mark.parametrize("element", ["x", 5, None, True, [], [{"id": "o-1"}]])
def test_an_element_that_is_not_an_object_is_parked_and_the_others_stored(
    client, companies, element
):
    """Inside a well-formed envelope, what stands in an entity's list instead of a record is
    parked for the notification's company (its only group), never the whole notification."""
    response = post(client, {"organizations": [good("ok-1"), element, good("ok-2")]})

    parked = assert_parked_alone(response, reason="$.organizations[1] must be an object, not ")
    assert json.loads(parked.payload_excerpt or "null") == element
    assert parked.connec_id == ""


@pytest.mark.parametrize("name", ["spaceships", "x" * 100])
def test_records_of_an_unknown_entity_are_parked_and_the_others_stored(client, companies, name):
    spaceship = {"id": "s-1", "group_id": "cld-1", "name": "Enterprise"}

    response = post(client, {"organizations": [good("ok-1"), good("ok-2")], name: [spaceship]})

    assert response.status_code == 202, response.content
    entry = InboxEntry.objects.get()
    assert response.json() == {"accepted": 2, "notification": entry.pk, "parked": 1}
    assert entry.payload == {"organizations": [good("ok-1"), good("ok-2")]}
    parked = SyncRecordError.objects.get()
    assert parked.company == companies["one"]
    shown = name if len(name) <= 64 else name[:63] + "…"  # as the entity column keeps it
    assert parked.entity == shown
    assert parked.reason == f"Refused when notified: unknown entity {shown!r}"
    assert json.loads(parked.payload_excerpt) == spaceship
    assert parked.connec_id == ""  # never fetched: an unknown entity names no Connec! path


@pytest.mark.parametrize("group", [{}, {"group_id": ""}, {"group_id": 5}, {"group_id": "a\u0000b"}])
def test_a_bad_record_naming_no_group_is_parked_for_the_notifications_company(
    client, companies, group
):
    bad = {"id": 5, "name": "No group", **group}

    response = post(client, {"organizations": [good("ok-1"), bad, good("ok-2")]})

    parked = assert_parked_alone(response, reason="$.organizations[1]")
    assert json.loads(parked.payload_excerpt) == bad


def test_a_bad_item_naming_no_group_in_a_notification_of_several_companies_is_skipped(
    client, companies
):
    body = {"organizations": [good("ok-1"), "x", {"id": 5}, record("cld-2", id="ok-3")]}

    response = post(client, body)

    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert "parked" not in response.json()
    assert InboxEntry.objects.count() == 2
    assert not SyncRecordError.objects.exists()  # whose is it? logged, not shown to one


def test_a_bad_record_of_a_group_not_ours_is_skipped_and_the_others_stored(client, companies):
    bad = {"id": 5, "name": "No company", "group_id": "cld-404"}

    response = post(client, {"organizations": [good("ok-1"), bad, good("ok-2")]})

    assert response.status_code == 202
    entry = InboxEntry.objects.get()
    assert response.json() == {"accepted": 2, "notification": entry.pk}
    assert entry.payload == {"organizations": [good("ok-1"), good("ok-2")]}
    assert not SyncRecordError.objects.exists()  # no company to show it to: logged


def test_a_notification_delivered_again_parks_its_bad_records_once(client, companies):
    """The hub sends a notification again (a timeout, a 5xx): its records without an id,
    or that are no record, are parked once, with the number of deliveries that carried
    them; a record with other content is parked on its own."""
    body = {
        "organizations": [good("ok-1"), {"group_id": "cld-1", "name": "No id"}, None],
        "spaceships": [{"group_id": "cld-1", "name": "Enterprise"}],
    }

    answers = [post(client, body).json()["parked"] for _ in range(3)]
    changed = {**body, "organizations": [{"group_id": "cld-1", "name": "No id either"}]}
    post(client, changed)

    assert answers == [3, 3, 3]  # the sender learns what was set aside, every time
    rows = SyncRecordError.objects.all()  # in no order of the body's (park_records)
    assert sorted((row.entity, row.times_seen, row.last_seen_at is not None) for row in rows) == [
        ("organizations", 1, False),  # the changed record, parked once
        ("organizations", 3, True),
        ("organizations", 3, True),
        ("spaceships", 4, True),
    ]
    assert all(row.company == companies["one"] for row in rows)


def test_an_unknown_entity_of_a_huge_name_is_not_repeated_for_each_of_its_records(
    client, companies, caplog
):
    # Its name was in each record's reason and log line: 1,000 records of a 100,000
    # character name made 200 MB of log from a body of 100 kB.
    name = "x" * 100_000

    response = post(client, {name: [{"group_id": "cld-1", "n": n} for n in range(1000)]})

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 0, "notification": None, "parked": 1000}
    shown = "x" * 63 + "…"
    assert set(SyncRecordError.objects.values_list("entity", "reason")) == {
        (shown, f"Refused when notified: unknown entity {shown!r}")
    }
    assert max(len(record.getMessage()) for record in caplog.records) < 500


def test_a_notification_delivered_again_counts_its_many_bad_records_in_a_few_statements(
    client, companies, django_assert_max_num_queries
):
    # Each record parked before was counted by an UPDATE of its own: a redelivered body of
    # 150,000 bad elements took 107 s on PostgreSQL, longer than the platform waits.
    body = {"organizations": [good("ok-1"), *range(1200)], "spaceships": [None, None]}
    post(client, body)

    with django_assert_max_num_queries(20):
        response = post(client, body)

    assert response.json()["parked"] == 1202
    counts = SyncRecordError.objects.order_by().values_list("times_seen", flat=True)
    assert sorted(set(counts)) == [2, 4]  # the two None of spaceships are one record
    assert SyncRecordError.objects.count() == 1201


def test_bad_records_notified_again_at_other_places_take_their_new_reasons_in_a_few_statements(
    client, companies, django_assert_max_num_queries
):
    # The reason names the record's place in the body: another notification of the same
    # records, one place further each, changes every row's reason, in a statement per batch.
    post(client, {"organizations": [good("ok-1"), *range(1200)]})

    with django_assert_max_num_queries(30):  # not one per record
        response = post(client, {"organizations": [good("ok-1"), good("ok-2"), *range(1200)]})

    assert response.json()["parked"] == 1200
    rows = SyncRecordError.objects.all()
    assert {row.times_seen for row in rows} == {2}
    places = {int(row.payload_excerpt): row.reason.split(" ")[3] for row in rows}
    assert places == {n: f"$.organizations[{n + 2}]" for n in range(1200)}  # each one's new


def test_the_same_bad_record_of_two_companies_is_parked_for_each(client, companies):
    body = {"people": [record("cld-1", id=5), record("cld-2", id=5)]}

    post(client, body)
    post(client, body)

    assert sorted(SyncRecordError.objects.values_list("company__group_uid", "times_seen")) == [
        ("cld-1", 2),
        ("cld-2", 2),
    ]


def test_a_notification_of_bad_records_only_stores_nothing_but_parks_them(client, companies):
    response = post(client, {"people": [record("cld-1", id=5), record("cld-2", id=6)]})

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "notification": None, "parked": 2}
    assert not InboxEntry.objects.exists()
    assert {(error.company.group_uid, error.entity) for error in SyncRecordError.objects.all()} == {
        ("cld-1", "people"),
        ("cld-2", "people"),
    }


def test_wrong_credentials_are_refused(client, companies, nothing_stored):
    response = post(client, {"organizations": [record("cld-1")]}, credentials=("app-1", "nope"))

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}


def test_another_presets_credentials_are_refused(client, companies, nothing_stored):
    response = post(
        client, {"organizations": [record("cld-1")]}, credentials=("acme-app", "acme-key")
    )

    assert response.status_code == 401


def test_a_group_of_another_preset_is_skipped_with_a_202(client, companies, nothing_stored):
    response = post(client, {"people": [record("cld-9")]})

    assert response.status_code == 202  # the platform must not redeliver it forever
    assert response.json() == {"accepted": 0, "notification": None}


def test_a_payload_of_several_groups_is_split_per_company_and_unknown_groups_skipped(
    client, companies
):
    payload = {
        "organizations": [record("cld-1"), record("cld-404", id="o-lost")],
        "people": [record("cld-2", id="p-2"), record("cld-1", id="p-1")],
    }

    response = post(client, payload)

    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    parts = {entry.company.group_uid: entry for entry in InboxEntry.objects.all()}
    assert set(parts) == {"cld-1", "cld-2"}
    assert parts["cld-1"].payload == {
        "organizations": [record("cld-1")],
        "people": [record("cld-1", id="p-1")],
    }
    assert parts["cld-2"].payload == {"people": [record("cld-2", id="p-2")]}
    assert (parts["cld-1"].record_count, parts["cld-2"].record_count) == (2, 1)


def connec_entry(value: str, realm: str = "org-1") -> dict:
    return {"provider": "connec", "realm": realm, "id": value}


def test_list_form_ids_are_accepted_with_connecs_entry_first(client, companies):
    ours = {"provider": "app-1", "realm": "cld-1", "id": "42"}
    other = {"provider": "another-app", "realm": "cld-1", "id": "x-9"}
    body = {"organizations": [record("cld-1", id=[ours, other, connec_entry("c-1")])]}

    response = post(client, body)

    assert response.status_code == 202
    stored = InboxEntry.objects.get().payload["organizations"][0]["id"]
    assert stored == [connec_entry("c-1"), ours, other]


def test_of_several_connec_entries_the_one_of_the_records_realm_is_taken(client, companies):
    ids = [connec_entry("elsewhere", realm="org-9"), connec_entry("c-1", realm="org-1")]
    body = {"organizations": [record("cld-1", id=ids, channel_id="org-1")]}

    response = post(client, body)

    assert response.status_code == 202
    assert InboxEntry.objects.get().payload["organizations"][0]["id"] == [ids[1]]


def test_an_oversized_body_is_refused(client, companies, settings, nothing_stored):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"NOTIFICATION_MAX_BODY_BYTES": 200}}
    payload = {"organizations": [record("cld-1", description="x" * 300)]}

    response = post(client, payload)

    assert response.status_code == 413
    assert "200 bytes" in response.json()["error"]


def test_only_post_is_accepted(client, companies, nothing_stored):
    response = client.get(URL, HTTP_AUTHORIZATION=auth("app-1", "key-1"))

    assert response.status_code == 405


def test_an_unknown_preset_is_a_404(client, companies, nothing_stored):
    response = post(client, {}, url="/maestrano/nowhere/connec/notifications")

    assert response.status_code == 404


def test_each_notified_records_connec_id_is_read_once(client, companies, monkeypatch):
    from maestrano_sync import notifications

    calls = []
    real = notifications.record_connec_id

    def counted(record):
        calls.append(record.get("id"))
        return real(record)

    monkeypatch.setattr(notifications, "record_connec_id", counted)
    ids = [
        {"provider": "ours", "realm": "cld-1", "id": "42"},
        {"provider": "connec", "realm": "other", "id": "c-other"},
        {"provider": "connec", "realm": "cld-1", "id": "c-1"},
    ]
    records = [
        record("cld-1", id=ids),
        record("cld-1", id="c-2", updated_at="2030-01-01T00:00:00Z"),
        record("cld-1", id="c-3", updated_at=5),  # refused, parked under its id
    ]

    response = post(client, {"organizations": records})

    assert response.status_code == 202 and response.json()["parked"] == 1
    assert len(calls) == len(records)
    stored = InboxEntry.objects.get().payload["organizations"]
    # Only the record's own Connec! entry is kept, first; the other providers' stay.
    assert [item["id"] for item in stored] == [[ids[2], ids[0]], "c-2"]
    assert SyncRecordError.objects.get().connec_id == "c-3"


def test_each_stored_notification_indexes_its_records_connec_ids(client, companies):
    from maestrano_sync.models import InboxRecord

    ids = [{"provider": "app-1", "id": "ours"}, {"provider": "connec", "id": "c-listed"}]
    response = post(
        client,
        {
            "organizations": [
                record("cld-1", updated_at="2030-01-02T03:04:05Z"),
                record("cld-2", id=ids),
            ]
        },
    )

    assert response.status_code == 202
    one, two = InboxEntry.objects.order_by("company__group_uid")
    rows = InboxRecord.objects.order_by("entry__company__group_uid")
    assert [(r.entry, r.company, r.entity, r.connec_id, r.updated_at) for r in rows] == [
        (
            one,
            companies["one"],
            "organizations",
            "7fef3180-6bf8",
            datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        ),
        (two, companies["two"], "organizations", "c-listed", None),
    ]
    one.delete()  # an entry's records go with it
    assert list(InboxRecord.objects.values_list("connec_id", flat=True)) == ["c-listed"]


def test_a_notification_of_many_bad_records_logs_a_few_lines_not_one_each(
    client, companies, caplog
):
    # One WARNING per refused record made a body of 2.5 million bad elements 2.5 million
    # log lines; the first ones say what was refused, one more line counts the rest.
    caplog.set_level("WARNING", logger="maestrano_sync.notifications")
    body = {"organizations": [good("ok-1"), *range(100)], "spaceships": [None]}

    response = post(client, body)

    assert response.status_code == 202, response.content
    assert response.json()["parked"] == 101
    lines = [r.getMessage() for r in caplog.records if r.name == "maestrano_sync.notifications"]
    one_each = [line for line in lines if "a record of" in line]
    assert len(one_each) == 20
    assert "$.organizations[1] must be an object" in one_each[0]
    assert [line for line in lines if "more records refused" in line] == [
        "Connec! notification: 81 more records refused (81 parked, 0 skipped), "
        "not logged one by one"
    ]
    assert SyncRecordError.objects.count() == 101
