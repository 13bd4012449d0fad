"""The sandbox's APIs and pages answer bad input with a 4xx and a message, never a 500.

Bodies are strict JSON (no NaN, NUL, lone surrogates or deep nesting); ids in
URLs, query parameters and form fields holding NUL are refused before any query.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.db import connections
from django.utils import timezone

from maestrano_sandbox.models import Bill, ConnecRecord, RegisteredApp

pytestmark = pytest.mark.django_db(databases="__all__")

NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999"]
TEXTS = ["\\u0000", "a\\u0000b", "\\ud800", "\\udfff"]


def refused_bodies(entity: str) -> list[str]:
    bodies = [f'{{"{entity}": {{"name": "x", "annual_revenue": {n}}}}}' for n in NUMBERS]
    for text in TEXTS:
        bodies.append(f'{{"{entity}": {{"name": "{text}"}}}}')
        bodies.append(f'{{"{entity}": {{"name": "x", "{text}": 1}}}}')
        city = f'{{"billing": {{"city": "{text}"}}}}'
        bodies.append(f'{{"{entity}": {{"name": "x", "address": {city}}}}}')
    for depth in (65, 990, 100_000):
        bodies.append(f'{{"{entity}": {{"name": "x", "notes": {"[" * depth}{"]" * depth}}}}}')
    return bodies


# --- Connec! API --------------------------------------------------------------------------


@pytest.mark.parametrize("body", refused_bodies("organizations"))
def test_connec_writes_with_unstorable_json_are_refused(hub, body):
    created = hub.post("/cld-1/organizations", {"organizations": {"name": "Base"}})
    record_id = created.json()["organizations"]["id"]

    posted = hub.post("/cld-1/organizations", body)
    put = hub.client.put(
        f"/sandbox/connec/api/v2/cld-1/organizations/{record_id}",
        body,
        content_type="application/json",
        headers=hub.headers(),
    )

    for response in (posted, put):
        assert response.status_code == 400
        assert response.json()["errors"][0]["detail"].startswith("The body is refused:")
    assert [r.data["name"] for r in ConnecRecord.objects.all()] == ["Base"]


@pytest.mark.parametrize(
    "path",
    [
        "/%00/people",
        "/cld-1/%00",
        "/cld-1/people/%00",
        "/cld-1/people/a%00b",
        "/cld-1/people?$filter=" + quote("first_name eq '\x00'"),
        "/cld-1/people?$orderby=%00",
        "/cld-1/people?opts[provider]=%00&opts[realm]=x",
        "/cld-1/people?%00=1",
    ],
)
def test_connec_urls_holding_nul_are_refused(hub, path):
    response = hub.client.get(f"/sandbox/connec/api/v2{path}", headers=hub.headers())

    assert response.status_code == 400
    assert "contains a NUL character" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("param", ["$skip", "$top"])
def test_connec_page_parameters_beyond_64_bits_are_refused(hub, param):
    response = hub.get("/cld-1/people", {param: "99999999999999999999"})

    assert response.status_code == 400
    assert f"{param} must be at most" in response.json()["errors"][0]["detail"]


def test_batch_ops_with_nul_are_refused_one_by_one(hub):
    ops = [
        {"method": "get", "url": "/api/v2/cld-1/people?$filter=" + quote("first_name eq '\x00'")},
        {"method": "get", "url": "/api/v2/cld-1/people?opts%5Bprovider%5D=%00&opts%5Brealm%5D=x"},
        {"method": "post", "url": "/api/v2/cld-1/people", "params": {"people": {"last_name": "A"}}},
    ]

    response = hub.batch(ops)

    assert response.status_code == 200
    assert [result["status"] for result in response.json()["results"]] == [400, 400, 201]


@pytest.mark.parametrize("body", ['{"ops": NaN}', '{"ops": [%s]}' % ("[" * 1000 + "]" * 1000)])
def test_batch_bodies_with_unstorable_json_are_refused(hub, body):
    response = hub.client.post(
        "/sandbox/connec/batch", body, content_type="application/json", headers=hub.headers()
    )

    assert response.status_code == 400
    assert not ConnecRecord.objects.exists()


# --- Account API ----------------------------------------------------------------------------


@pytest.fixture
def account_app(hub_group):
    app = RegisteredApp.objects.get(api_id="app-a")
    token = base64.b64encode(f"{app.api_id}:{app.api_key}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


BILL = {"group_id": "cld-1", "price_cents": 100, "description": "d", "currency": "AUD"}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"bills": BILL}).replace("100", number)
        for number in ["NaN", "Infinity", "-Infinity", "1e999"]
    ]
    + [
        json.dumps({"bills": {**BILL, "description": "\x00"}}),
        json.dumps({"bills": {**BILL, "group_id": "\x00"}}),
        json.dumps({"bills": {**BILL, "description": "\ud800"}}),
        '{"bills": %s}' % ("[" * 5000 + "]" * 5000),
    ],
)
def test_account_api_bodies_with_unstorable_json_are_refused(client, account_app, body):
    response = client.post(
        "/sandbox/api/v1/account/bills", body, content_type="application/json", **account_app
    )

    assert response.status_code == 400
    assert response.json()["errors"]["body"][0].startswith("The request body is refused:")
    assert not Bill.objects.exists()


@pytest.mark.parametrize("form", ["group_id=%00&price_cents=1", "group_id=cld-1&description=a%00"])
def test_account_api_form_fields_with_nul_are_refused(client, account_app, form):
    response = client.post(
        "/sandbox/api/v1/account/bills",
        form,
        content_type="application/x-www-form-urlencoded",
        **account_app,
    )

    assert response.status_code == 400
    assert "contains a NUL character" in response.json()["errors"]["body"][0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("group_id=%00", "contains a NUL character"),
        ("%00=1", "contains a NUL character"),
        ("units=NaN", "Invalid value"),
        ("units=sNaN", "Invalid value"),
        ("offset=1000000000000000000000", "offset must be between"),
        ("price_cents=%C2%B2", "Invalid value"),
    ],
)
def test_account_api_queries_a_database_cannot_run_are_refused(client, account_app, query, message):
    response = client.get(f"/sandbox/api/v1/account/bills?{query}", **account_app)

    assert response.status_code == 400
    assert message in json.dumps(response.json()["errors"], ensure_ascii=False)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_account_api_ids_holding_nul_are_refused(client, account_app, method):
    response = getattr(client, method)("/sandbox/api/v1/account/bills/a%00b", **account_app)

    assert response.status_code == 400
    assert "contains a NUL character" in response.json()["errors"]["request"][0]


def test_a_price_in_superscript_digits_is_a_field_error(client, account_app):
    body = json.dumps({"bills": {**BILL, "price_cents": "²"}})

    response = client.post(
        "/sandbox/api/v1/account/bills", body, content_type="application/json", **account_app
    )

    assert response.status_code == 422
    assert "price_cents" in response.json()["errors"]


# --- pages ----------------------------------------------------------------------------------


def test_the_page_of_an_app_subscribed_to_items_lists_its_subscriptions(client, hub_app):
    hub_app.subscriptions = {"organizations": True, "items": True, "invoices": False}
    hub_app.save()

    response = client.get(f"/sandbox/apps/{hub_app.api_id}")

    assert response.status_code == 200
    assert response.context["subscribed"] == ["items", "organizations"]
    assert b'<span class="badge ok">items</span>' in response.content


@pytest.mark.parametrize(
    "url",
    [
        "/sandbox/groups/%00",
        "/sandbox/users/a%00",
        "/sandbox/apps/%00",
        "/sandbox/connec/groups/%00/",
        "/sandbox/connec/groups/cld-1/%00/",
        "/sandbox/connec/deliveries/?group=%00",
        "/sandbox/app_logout?user_uid=%00",
        "/sandbox/apps/app-a/launch?user=%00&group=cld-1",
        "/sandbox/api/v1/auth/saml/usr-1?session=%00",
    ],
)
def test_pages_refuse_urls_holding_nul(client, hub_group, url):
    response = client.get(url)

    assert response.status_code == 400
    assert b"contains a NUL character" in response.content


def test_page_forms_refuse_fields_holding_nul(client, hub_group):
    response = client.post("/sandbox/groups/cld-1/apps", {"app": "app-a\x00"})

    assert response.status_code == 400
    assert b"form field 'app' contains a NUL character" in response.content


@pytest.mark.parametrize(
    "fields_json",
    ['{"name": NaN}', '{"name": "\\u0000"}', '{"name": "\\ud800"}', "[" * 5000 + "]" * 5000],
)
def test_the_record_form_refuses_unstorable_json(client, hub_group, fields_json):
    response = client.post(
        "/sandbox/connec/groups/cld-1/organizations/", {"fields_json": fields_json}
    )

    assert response.status_code == 200
    assert "Refused: " in response.context["form"].errors["fields_json"][0]
    assert not ConnecRecord.objects.exists()


@pytest.mark.skipif(
    connections["sandbox"].vendor != "sqlite", reason="only SQLite ever stored a lone surrogate"
)
def test_a_record_stored_with_a_lone_surrogate_does_not_break_the_pages(client, hub_group):
    now = timezone.now()
    ConnecRecord.objects.create(
        group=hub_group,
        entity="organizations",
        data={"name": "bad \ud800", "code": "\udfff"},
        created_at=now,
        updated_at=now,
    )

    for url in ["/sandbox/connec/", "/sandbox/connec/groups/cld-1/organizations/"]:
        response = client.get(url)
        assert response.status_code == 200
    assert b"bad \\ud800" in response.content


@pytest.mark.parametrize("period", [["Month"], {"a": 1}, 3])
def test_a_recurring_bill_period_that_is_not_text_is_a_field_error(client, account_app, period):
    # Found by schema fuzzing (tests/test_openapi_fuzz.py): a list was a 500.
    body = json.dumps({"recurring_bill": {**BILL, "period": period}})

    response = client.post(
        "/sandbox/api/v1/account/recurring_bills",
        body,
        content_type="application/json",
        **account_app,
    )

    assert response.status_code == 422
    assert "period" in response.json()["errors"]
