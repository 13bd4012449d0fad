"""The notifications webhook refuses bad input with a clear 4xx and stores nothing."""

from __future__ import annotations

import base64
import json

import pytest
from django.utils import timezone

from accounts.models import Company
from crm.models import Organization
from sync.models import InboxEntry

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


def post(client, body, *, credentials=("app-1", "key-1"), url=URL, raw=False):
    data = body if raw else json.dumps(body)
    return client.post(
        url,
        data,
        content_type="application/json",
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
        ('{"organizations": ["x"]}', 400, "must be an object"),
        ('{"organizations": [{"group_id": "cld-1"}]}', 400, "organizations[0].id"),
        ('{"organizations": [{"id": 5, "group_id": "cld-1"}]}', 400, "organizations[0].id"),
        ('{"organizations": [{"id": "x"}]}', 400, "group_id"),
        ('{"spaceships": [{"id": "x", "group_id": "cld-1"}]}', 400, "Unknown Connec! entity"),
        ("[" * 100_000 + "]" * 100_000, 400, ""),
        (b"\xff\xfe{}", 400, "not valid JSON"),
    ],
)
def test_malformed_payloads_are_refused(client, companies, nothing_stored, body, status, message):
    response = post(client, body, raw=True)

    assert response.status_code == status
    assert message in response.json()["error"]


VALID = '{"organizations": [{"id": "o-1", "group_id": "cld-1", "name": "Org", %s}]}'


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize(
    "where", ['"total": %s', '"address": {"billing": {"city": %s}}', '"lines": [%s]']
)
def test_non_standard_numbers_are_refused(client, companies, nothing_stored, number, where):
    response = post(client, VALID % (where % number), raw=True)

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert number.lstrip("-") in response.json()["error"]


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800", "\\udfff", "\\udc00x"])
@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"organizations": [{"id": "%s", "group_id": "cld-1"}]}', "$.organizations[0].id"),
        ('{"organizations": [{"id": "o-1", "group_id": "%s"}]}', "$.organizations[0].group_id"),
        (VALID % '"updated_at": "%s"', "$.organizations[0].updated_at"),
        (VALID % '"address": {"billing": {"city": "%s"}}', ".address.billing.city"),
        (VALID % '"%s": 1', "a key of $.organizations[0]"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_anywhere(
    client, companies, nothing_stored, text, body, where
):
    response = post(client, body.replace("%s", text), raw=True)

    assert response.status_code == 400
    error = response.json()["error"]
    assert where in error
    assert "NUL character" in error or "lone surrogate" in error


@pytest.mark.parametrize("depth", [65, 500, 990, 5000])
def test_deep_nesting_is_refused(client, companies, nothing_stored, depth):
    response = post(client, VALID % f'"notes": {"[" * depth}{"]" * depth}', raw=True)

    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["error"]


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


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "no entry with provider 'connec'"),
        ([{"provider": "app-1", "realm": "cld-1", "id": "42"}], "no entry"),
        ([{"provider": "connec", "realm": "org-1", "id": 5}], "no entry"),
        (["c-1"], "no entry"),
        ([connec_entry("a", "org-8"), connec_entry("b", "org-9")], "several"),
        ({"provider": "connec", "id": "c-1"}, "non-empty string or a list"),
    ],
)
def test_list_form_ids_without_one_connec_id_are_refused(
    client, companies, nothing_stored, ids, message
):
    response = post(client, {"organizations": [record("cld-1", id=ids)]})

    assert response.status_code == 400
    assert "organizations[0].id" in response.json()["error"]
    assert message in response.json()["error"]


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
