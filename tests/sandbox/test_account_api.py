"""Contract of the sandbox Account API (docs/protocol.md, 'Account API') over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import json as jsonlib
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests
from django.test import Client

from maestrano_sandbox import directory
from maestrano_sandbox.models import Bill, RecurringBill, RegisteredApp

pytestmark = pytest.mark.django_db(databases="__all__")
_OWN = object()


@dataclass
class Api:
    """Calls the Account API through the Django test client, as ``app`` unless told otherwise."""

    client: Client
    app: RegisteredApp

    def register_app(self, api_id: str) -> RegisteredApp:
        return RegisteredApp.objects.create(
            api_id=api_id, api_key=f"{api_id}-key", app_host="http://127.0.0.1:9"
        )

    def add_member(self, *, group_uid: str, user_uid: str, app=None, **group_fields):
        group = directory.upsert_group(uid=group_uid, **group_fields)
        user = directory.upsert_user(uid=user_uid)
        directory.start_using_app(group=group, app=app or self.app)
        return directory.set_membership(group=group, user=user, role="Member")

    def __call__(self, method, path, *, auth=_OWN, json=None, data=None, params=None, body=None):
        auth = (self.app.api_id, self.app.api_key) if auth is _OWN else auth
        headers = {}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        url = f"/sandbox/api/v1/account/{path}"
        if params:
            url += "?" + urlencode(params)
        if json is not None:
            payload, content_type = jsonlib.dumps(json), "application/json"
        elif body is not None:
            payload, content_type = body, "application/json"
        else:
            payload, content_type = urlencode(data or {}), "application/x-www-form-urlencoded"
        return self.client.generic(method, url, payload, content_type=content_type, **headers)


@pytest.fixture
def api(client):
    app = RegisteredApp.objects.create(
        api_id="app-test", api_key="test-key", app_host="http://127.0.0.1:9"
    )
    caller = Api(client=client, app=app)
    caller.add_member(group_uid="cld-1", user_uid="usr-1", name="Acme")
    caller.add_member(group_uid="cld-1", user_uid="usr-2")
    caller.add_member(group_uid="cld-2", user_uid="usr-3", name="Beta")
    return caller


def test_account_api_answers_over_a_live_server(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-1")
    url = f"{platform.sandbox_url}/api/v1/account/bills"
    created = requests.post(
        url,
        json={"group_id": "cld-1", "price_cents": 100, "description": "x"},
        auth=platform.auth,
        timeout=10,
    )
    assert created.status_code == 201
    listed = requests.get(url, params={"group_id": "cld-1"}, auth=platform.auth, timeout=10)
    assert [b["id"] for b in listed.json()["data"]] == [created.json()["data"]["id"]]
    assert requests.get(url, auth=(platform.api_id, "wrong"), timeout=10).status_code == 401


def _future(days: int = 1) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _create_bill(api, **fields):
    payload = {"group_id": "cld-1", "price_cents": 2000, "description": "Setup", **fields}
    response = api("POST", "bills", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["data"]


# --- Authentication ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["bills", "recurring_bills", "users", "groups", "bills/bill-1"])
def test_wrong_credentials_get_the_401_envelope(api, path):
    for auth in [(api.app.api_id, "wrong"), ("app-unknown", api.app.api_key), None]:
        response = api("GET", path, auth=auth)
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "errors": {"authentication": ["Invalid API token"]},
            "data": None,
        }


# --- Bills --------------------------------------------------------------------------------
def test_create_bill_answers_the_bill_with_defaults(api):
    response = api(
        "POST", "bills", json={"group_id": "cld-1", "price_cents": 1500, "description": "SMS"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["errors"] == {}
    bill = body["data"]
    assert bill["object"] == "account_bill"
    assert bill["id"].startswith("bill-")
    assert (bill["group_id"], bill["price_cents"], bill["description"]) == ("cld-1", 1500, "SMS")
    assert (bill["currency"], bill["units"], bill["status"]) == ("AUD", "1.00", "submitted")
    assert bill["created_at"].endswith("Z")
    assert bill["period_started_at"] is None


def test_create_bill_accepts_form_fields_and_optional_attributes(api):
    response = api(
        "POST",
        "bills",
        data={
            "group_id": "cld-1",
            "price_cents": "990",
            "description": "Seats",
            "currency": "usd",
            "units": "2.5",
            "period_started_at": "2030-01-01",
            "period_ended_at": "2030-01-31T23:59:59Z",
        },
    )
    assert response.status_code == 201, response.text
    bill = response.json()["data"]
    assert (bill["currency"], bill["units"]) == ("USD", "2.50")
    assert bill["period_started_at"] == "2030-01-01T00:00:00Z"
    assert bill["period_ended_at"] == "2030-01-31T23:59:59Z"


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"group_id", "price_cents", "description"}),
        ({"group_id": "cld-1", "price_cents": -1, "description": "x"}, {"price_cents"}),
        ({"group_id": "cld-1", "price_cents": 10.5, "description": "x"}, {"price_cents"}),
        ({"group_id": "cld-1", "price_cents": "ten", "description": "x"}, {"price_cents"}),
        ({"group_id": "cld-1", "price_cents": 10**20, "description": "x"}, {"price_cents"}),
        ({"group_id": "cld-1", "price_cents": True, "description": "x"}, {"price_cents"}),
        ({"group_id": "cld-1", "price_cents": 1, "description": " "}, {"description"}),
        (
            {"group_id": "cld-1", "price_cents": 1, "description": "x", "currency": "XXY"},
            {"currency"},
        ),
        ({"group_id": "cld-1", "price_cents": 1, "description": "x", "units": "abc"}, {"units"}),
        ({"group_id": "cld-unknown", "price_cents": 1, "description": "x"}, {"group_id"}),
        (
            {
                "group_id": "cld-1",
                "price_cents": 1,
                "description": "x",
                "period_started_at": "2030-02-01",
                "period_ended_at": "2030-01-01",
            },
            {"period_ended_at"},
        ),
        (
            {
                "group_id": "cld-1",
                "price_cents": 1,
                "description": "x",
                "period_started_at": "soon",
            },
            {"period_started_at"},
        ),
    ],
)
def test_invalid_bill_is_refused_with_field_errors(api, payload, errors):
    response = api("POST", "bills", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert set(body["errors"]) == errors
    assert all(isinstance(m, str) and m for ms in body["errors"].values() for m in ms)
    assert not Bill.objects.exists()


def test_unreadable_body_is_a_400(api):
    response = api("POST", "bills", body="{not json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["body"]
    assert message.startswith("The request body is refused: not valid JSON (Expecting")
    response = api("POST", "bills", json=["a", "list"])
    assert response.status_code == 400


def test_bill_for_a_group_not_using_the_app_is_refused(api):
    other_app = api.register_app("app-other")
    api.add_member(group_uid="cld-other", user_uid="usr-9", app=other_app)
    response = api(
        "POST", "bills", json={"group_id": "cld-other", "price_cents": 1, "description": "x"}
    )
    assert response.status_code == 422
    assert "group_id" in response.json()["errors"]


def test_retrieve_and_cancel_bill(api):
    bill = _create_bill(api)
    response = api("GET", f"bills/{bill['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == bill

    cancelled = api("DELETE", f"bills/{bill['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["data"]["status"] == "cancelled"

    again = api("DELETE", f"bills/{bill['id']}")
    assert again.status_code == 422
    assert again.json()["success"] is False
    assert "is cancelled: it cannot be cancelled" in again.json()["errors"]["status"][0]


def test_unknown_bill_is_a_404_envelope(api):
    for method in ("GET", "DELETE"):
        response = api(method, "bills/bill-nope")
        assert response.status_code == 404
        assert response.json()["success"] is False
        assert "bill-nope" in response.json()["errors"]["id"][0]


def test_an_app_sees_only_its_own_bills(api):
    bill = _create_bill(api)
    other_app = api.register_app("app-other")
    api.add_member(group_uid="cld-1", user_uid="usr-1", app=other_app)
    other_auth = (other_app.api_id, other_app.api_key)
    assert api("GET", "bills", auth=other_auth).json()["data"] == []
    assert api("GET", f"bills/{bill['id']}", auth=other_auth).status_code == 404
    assert api("DELETE", f"bills/{bill['id']}", auth=other_auth).status_code == 404
    assert Bill.objects.get(uid=bill["id"]).status == "submitted"


def test_list_filters_by_group_and_suffix_operators(api):
    cheap = _create_bill(api, price_cents=100)
    dear = _create_bill(api, price_cents=5000)
    beta = _create_bill(api, group_id="cld-2", price_cents=300)

    def ids(**params):
        response = api("GET", "bills", params=params)
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["data"]]

    assert ids() == [cheap["id"], dear["id"], beta["id"]]
    assert ids(group_id="cld-2") == [beta["id"]]
    assert ids(price_cents_greater_than="100") == [dear["id"], beta["id"]]
    assert ids(price_cents_lower_than="300") == [cheap["id"]]
    assert ids(price_cents_greater_than_or_equal="300") == [dear["id"], beta["id"]]
    assert ids(group_id_in="cld-1,cld-2", price_cents_lower_than_or_equal="300") == [
        cheap["id"],
        beta["id"],
    ]
    assert ids(group_id_not="cld-1") == [beta["id"]]
    Bill.objects.filter(uid=cheap["id"]).update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert ids(created_at_before="2020-01-01T00:00:00Z") == [cheap["id"]]
    assert ids(created_at_strictly_before="2020-01-01T00:00:00Z") == []
    assert ids(created_at_after="2021-01-01") == [dear["id"], beta["id"]]
    assert ids(created_at_strictly_after="2020-01-01T00:00:00Z") == [dear["id"], beta["id"]]
    api("DELETE", f"bills/{dear['id']}")
    assert ids(status="cancelled") == [dear["id"]]


@pytest.mark.parametrize(
    "params", [{"colour": "red"}, {"price_cents_greater_than": "lots"}, {"created_at_after": "x"}]
)
def test_bad_filter_is_a_400_with_a_message(api, params):
    response = api("GET", "bills", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert list(body["errors"]) == list(params)


def test_lists_are_paginated(api):
    created = [_create_bill(api, price_cents=i)["id"] for i in range(5)]
    first = api("GET", "bills", params={"limit": 2}).json()
    assert [b["id"] for b in first["data"]] == created[:2]
    assert first["pagination"]["total"] == 5
    assert "offset=2" in first["pagination"]["next"]
    assert first["pagination"]["next"].startswith("http://testserver/sandbox/api/v1/account/bills?")
    second = api("GET", "bills", params={"limit": 2, "offset": 2}).json()
    assert [b["id"] for b in second["data"]] == created[2:4]
    last = api("GET", "bills", params={"limit": 2, "offset": 4}).json()
    assert [b["id"] for b in last["data"]] == created[4:]
    assert last["pagination"]["next"] is None
    assert api("GET", "bills", params={"limit": 0}).status_code == 400
    assert api("GET", "bills", params={"offset": "x"}).status_code == 400


def test_methods_outside_the_contract_are_405(api):
    assert api("PUT", "bills/bill-1", json={}).status_code == 405
    assert api("POST", "users", json={}).status_code == 405
    assert api("DELETE", "groups/cld-1").status_code == 405
    response = api("GET", "invoices")
    assert response.status_code == 404
    assert response.json()["success"] is False


# --- Recurring bills ---------------------------------------------------------------------
def test_create_recurring_bill_with_defaults(api):
    response = api(
        "POST",
        "recurring_bills",
        json={"group_id": "cld-1", "price_cents": 2900, "description": "Standard plan"},
    )
    assert response.status_code == 201, response.text
    bill = response.json()["data"]
    assert bill["object"] == "account_recurring_bill"
    assert bill["id"].startswith("rbill-")
    assert (bill["period"], bill["frequency"], bill["cycles"]) == ("Month", 1, None)
    assert (bill["currency"], bill["initial_cents"], bill["status"]) == ("AUD", 0, "active")


def test_recurring_bill_starting_later_is_submitted_then_cancellable(api):
    response = api(
        "POST",
        "recurring_bills",
        json={
            "group_id": "cld-2",
            "price_cents": 100,
            "description": "Weekly",
            "period": "Week",
            "frequency": 2,
            "cycles": 3,
            "start_date": _future(14),
            "initial_cents": 500,
            "currency": "EUR",
        },
    )
    assert response.status_code == 201, response.text
    bill = response.json()["data"]
    assert (bill["status"], bill["period"], bill["frequency"], bill["cycles"]) == (
        "submitted",
        "Week",
        2,
        3,
    )
    assert api("GET", f"recurring_bills/{bill['id']}").json()["data"]["status"] == "submitted"
    assert api("DELETE", f"recurring_bills/{bill['id']}").json()["data"]["status"] == "cancelled"
    again = api("DELETE", f"recurring_bills/{bill['id']}")
    assert again.status_code == 422
    assert "cannot be cancelled" in again.json()["errors"]["status"][0]


def test_recurring_bill_past_its_cycles_is_expired(api):
    bill = api(
        "POST",
        "recurring_bills",
        json={
            "group_id": "cld-1",
            "price_cents": 1,
            "description": "x",
            "period": "Day",
            "cycles": 2,
        },
    ).json()["data"]
    RecurringBill.objects.filter(uid=bill["id"]).update(
        start_date=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    assert api("GET", f"recurring_bills/{bill['id']}").json()["data"]["status"] == "expired"
    assert (
        api("GET", "recurring_bills", params={"status": "expired"}).json()["data"][0]["id"]
        == bill["id"]
    )
    assert api("DELETE", f"recurring_bills/{bill['id']}").status_code == 422


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"period": "Fortnight"}, "period"),
        ({"period": "SemiMonth", "frequency": 2}, "frequency"),
        ({"period": "Month", "frequency": 13}, "frequency"),
        ({"period": "Week", "frequency": 53}, "frequency"),
        ({"period": "Day", "frequency": 366}, "frequency"),
        ({"period": "Year", "frequency": 2}, "frequency"),
        ({"frequency": 0}, "frequency"),
        ({"cycles": 0}, "cycles"),
        ({"cycles": 10**12}, "cycles"),
        ({"frequency": 10**12}, "frequency"),
        ({"initial_cents": -5}, "initial_cents"),
        ({"start_date": "2001-01-01T00:00:00Z"}, "start_date"),
        ({"start_date": "tomorrow"}, "start_date"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_invalid_recurring_bill_is_refused(api, fields, error):
    payload = {"group_id": "cld-1", "price_cents": 100, "description": "Plan", **fields}
    response = api("POST", "recurring_bills", json=payload)
    assert response.status_code == 422, response.text
    assert error in response.json()["errors"]
    assert not RecurringBill.objects.exists()


def test_recurring_bill_limits_of_one_year_are_accepted(api):
    for period, frequency in [
        ("Month", 12),
        ("Week", 52),
        ("Day", 365),
        ("Year", 1),
        ("SemiMonth", 1),
    ]:
        response = api(
            "POST",
            "recurring_bills",
            json={
                "group_id": "cld-1",
                "price_cents": 1,
                "description": "x",
                "period": period,
                "frequency": frequency,
                "start_date": dt.datetime.now(dt.UTC).date().isoformat(),
            },
        )
        assert response.status_code == 201, response.text


# --- Users and groups ----------------------------------------------------------------------
def test_users_of_groups_using_the_app(api):
    other_app = api.register_app("app-other")
    api.add_member(group_uid="cld-elsewhere", user_uid="usr-elsewhere", app=other_app)
    body = api("GET", "users").json()
    assert body["success"] is True
    assert [u["id"] for u in body["data"]] == ["usr-1", "usr-2", "usr-3"]
    user = body["data"][0]
    assert user["object"] == "account_user"
    assert set(user) == {
        "object",
        "id",
        "name",
        "surname",
        "email",
        "company_name",
        "country",
        "created_at",
        "updated_at",
    }
    assert [u["id"] for u in api("GET", "users", params={"group_id": "cld-2"}).json()["data"]] == [
        "usr-3"
    ]
    assert api("GET", "users/usr-2").json()["data"]["id"] == "usr-2"
    assert api("GET", "users/usr-elsewhere").status_code == 404


def test_groups_using_the_app(api):
    other_app = api.register_app("app-other")
    api.add_member(group_uid="cld-elsewhere", user_uid="usr-elsewhere", app=other_app)
    body = api("GET", "groups").json()
    assert [g["id"] for g in body["data"]] == ["cld-1", "cld-2"]
    group = api("GET", "groups/cld-1").json()["data"]
    assert group["object"] == "account_group"
    assert group["name"] == "Acme"
    assert group["has_credit_card"] is False
    assert {"email", "free_trial_end_at", "currency", "country", "city", "timezone"} <= set(group)
    assert api("GET", "groups/cld-elsewhere").status_code == 404
    assert [
        g["id"] for g in api("GET", "groups", params={"has_credit_card": "false"}).json()["data"]
    ] == [
        "cld-1",
        "cld-2",
    ]
