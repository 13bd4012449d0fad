"""Unit tests of the Connec! client's HTTP behaviour (``responses``: the one allowed place).

Integration with the sandbox's Connec! API is covered in tests/sync/.
"""

from __future__ import annotations

import json
import socket

import pytest
import responses

from maestrano_integration.connec import (
    ConnecAuthenticationError,
    ConnecClient,
    ConnecNetworkError,
    ConnecNotFoundError,
    ConnecRateLimitError,
    ConnecServerError,
    ConnecValidationError,
)
from tests.conftest import preset_values

HOST = "http://connec.test"
PEOPLE = f"{HOST}/api/v2/cld-1/people"


@pytest.fixture
def client(settings):
    settings.MAESTRANO = {
        "PRESETS": {
            "maestrano": preset_values(
                api_id="app-1", api_key="key-1", connec={"host": HOST, "timeout": 2}
            )
        },
        "CONNEC": {"HTTP_RETRIES": 3, "BACKOFF_FACTOR": 0, "BACKOFF_JITTER": 0, "PAGE_SIZE": 2},
    }
    with ConnecClient(group_id="cld-1") as connec:
        yield connec


def person(number: int) -> dict:
    return {"id": f"p-{number}", "first_name": f"P{number}", "updated_at": "2024-01-01T00:00:00Z"}


def error_body(status: int, detail: str) -> dict:
    return {
        "errors": [{"id": "e1", "status": str(status), "code": "x", "title": "t", "detail": detail}]
    }


@responses.activate
def test_list_pages_through_top_and_skip_with_basic_auth_and_orderby(client):
    for skip, records in ((0, [person(1), person(2)]), (2, [person(3)])):
        responses.get(
            PEOPLE,
            match=[
                responses.matchers.query_param_matcher(
                    {"$top": "2", "$skip": str(skip), "$orderby": "updated_at asc"}
                )
            ],
            json={"people": records, "pagination": {"skip": skip, "top": 2, "total": 3}},
        )

    records = list(client.list("people"))

    assert [r["id"] for r in records] == ["p-1", "p-2", "p-3"]
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert "CONNEC-EXTERNAL-IDS" not in responses.calls[0].request.headers


@responses.activate
def test_iter_pages_resumes_from_a_given_skip_and_reports_total(client):
    responses.get(
        PEOPLE, json={"people": [person(3)], "pagination": {"skip": 2, "top": 2, "total": 3}}
    )

    pages = list(client.iter_pages("people", skip=2))

    assert [(p.skip, len(p.records), p.total, p.next_skip) for p in pages] == [(2, 1, 3, 3)]
    assert "%24skip=2" in responses.calls[0].request.url


@responses.activate
def test_list_sends_the_filter(client):
    responses.get(PEOPLE, json={"people": [], "pagination": {"skip": 0, "top": 2, "total": 0}})

    assert list(client.list("people", filter="updated_at gt '2016-10-04T00:00:00Z'")) == []
    assert responses.calls[0].request.params["$filter"] == "updated_at gt '2016-10-04T00:00:00Z'"


@responses.activate
def test_server_errors_are_retried_then_succeed(client):
    responses.get(f"{PEOPLE}/p-1", status=503, json=error_body(503, "down"))
    responses.get(f"{PEOPLE}/p-1", status=502, json=error_body(502, "down"))
    responses.get(f"{PEOPLE}/p-1", json={"people": person(1)})

    assert client.retrieve("people", "p-1")["id"] == "p-1"
    assert len(responses.calls) == 3


@responses.activate
def test_rate_limit_is_retried(client):
    responses.get(f"{PEOPLE}/p-1", status=429, headers={"Retry-After": "0"}, json={})
    responses.get(f"{PEOPLE}/p-1", json={"people": person(1)})

    assert client.retrieve("people", "p-1")["id"] == "p-1"
    assert len(responses.calls) == 2


@responses.activate
def test_persistent_server_error_raises_a_typed_error_after_the_retries(client):
    responses.get(f"{PEOPLE}/p-1", status=500, json=error_body(500, "boom"))

    with pytest.raises(ConnecServerError) as caught:
        client.retrieve("people", "p-1")

    assert caught.value.status == 500
    assert caught.value.details == ["boom"]
    assert caught.value.is_transient
    assert len(responses.calls) == 4  # first try + HTTP_RETRIES


@responses.activate
def test_persistent_rate_limit_raises_with_the_retry_after_hint(client):
    responses.get(f"{PEOPLE}/p-1", status=429, headers={"Retry-After": "0"}, json={})

    with pytest.raises(ConnecRateLimitError) as caught:
        client.retrieve("people", "p-1")

    assert caught.value.retry_after == 0
    assert len(responses.calls) == 4


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, ConnecAuthenticationError),
        (404, ConnecNotFoundError),
        (400, ConnecValidationError),
        (422, ConnecValidationError),
    ],
)
@responses.activate
def test_client_errors_are_typed_and_never_retried(client, status, error_class):
    responses.get(f"{PEOPLE}/p-1", status=status, json=error_body(status, "nope"))

    with pytest.raises(error_class) as caught:
        client.retrieve("people", "p-1")

    assert caught.value.status == status
    assert caught.value.errors[0]["detail"] == "nope"
    assert not caught.value.is_transient
    assert len(responses.calls) == 1


@responses.activate
def test_create_is_not_retried_blindly(client):
    responses.post(PEOPLE, status=503, json=error_body(503, "maybe applied"))

    with pytest.raises(ConnecServerError):
        client.create("people", {"first_name": "Bob"})

    assert len(responses.calls) == 1
    assert json.loads(responses.calls[0].request.body) == {"people": {"first_name": "Bob"}}


@responses.activate
def test_create_marked_idempotent_is_retried(client):
    responses.post(PEOPLE, status=503, json=error_body(503, "down"))
    responses.post(PEOPLE, status=201, json={"people": person(9)})

    created = client.create(
        "people",
        {"id": [{"provider": "app", "realm": "1", "id": "9"}], "first_name": "Bob"},
        idempotent=True,
    )

    assert created["id"] == "p-9"
    assert len(responses.calls) == 2


@responses.activate
def test_update_is_retried_as_it_is_idempotent(client):
    responses.put(f"{PEOPLE}/p-1", status=500, json={})
    responses.put(f"{PEOPLE}/p-1", json={"people": person(1)})

    assert client.update("people", "p-1", {"first_name": "P1"})["id"] == "p-1"
    assert len(responses.calls) == 2


@responses.activate
def test_batch_of_only_puts_is_retried_but_a_batch_with_a_post_is_not(client):
    batch_url = f"{HOST}/batch"
    responses.post(batch_url, status=503, json={})
    responses.post(batch_url, json={"results": [{"status": 200, "body": {"people": person(1)}}]})
    put = {"method": "put", "url": client.entity_path("people", "p-1"), "params": {"people": {}}}

    results = client.batch([put])

    assert [(r.status, r.ok) for r in results] == [(200, True)]
    assert (
        json.loads(responses.calls[1].request.body)["ops"][0]["url"] == "/api/v2/cld-1/people/p-1"
    )

    responses.calls.reset()
    responses.replace(responses.POST, batch_url, status=503, json={})
    post = {"method": "post", "url": client.entity_path("people"), "params": {"people": {}}}
    with pytest.raises(ConnecServerError):
        client.batch([put, post])
    assert len(responses.calls) == 1


@responses.activate
def test_retrieve_by_external_id_sends_provider_realm_and_the_header(client):
    responses.get(f"{PEOPLE}/17", json={"people": {"id": [{"provider": "connec", "id": "p-1"}]}})

    client.retrieve_by_external_id("people", "17", provider="my-app", realm="2243")

    request = responses.calls[0].request
    assert request.params == {"opts[provider]": "my-app", "opts[realm]": "2243"}
    assert request.headers["CONNEC-EXTERNAL-IDS"] == "true"


@responses.activate
def test_external_ids_flag_sends_the_header_on_every_call(settings, client):
    responses.get(PEOPLE, json={"people": [], "pagination": {"total": 0}})
    with ConnecClient(group_id="cld-1", external_ids=True) as connec:
        list(connec.list("people"))

    assert responses.calls[0].request.headers["CONNEC-EXTERNAL-IDS"] == "true"


def test_unreachable_host_raises_a_network_error(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.MAESTRANO = {
        "PRESETS": {
            "maestrano": preset_values(
                api_id="a", api_key="k", connec={"host": f"http://127.0.0.1:{port}"}
            )
        },
        "CONNEC": {"HTTP_RETRIES": 1, "BACKOFF_FACTOR": 0, "BACKOFF_JITTER": 0},
    }

    with ConnecClient(group_id="cld-1") as connec, pytest.raises(ConnecNetworkError) as caught:
        connec.retrieve("people", "p-1")

    assert caught.value.status is None
    assert caught.value.is_transient
