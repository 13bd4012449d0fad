"""Fault injection on the sandbox APIs: 5xx, 429 + Retry-After, latency, dropped connections."""

from __future__ import annotations

import threading

import pytest
import requests
from django.core.management import CommandError, call_command

from maestrano_sandbox import faults as sandbox_faults
from maestrano_sandbox.faults import ConnectionDropped
from maestrano_sandbox.models import Group
from tests.sandbox.connec_support import Hub, basic_auth, register_app

pytestmark = pytest.mark.django_db(databases="__all__")


def faults(settings, api_id: str, **values) -> None:
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {api_id: values}}


def statuses(hub: Hub, count: int) -> list[int]:
    # An empty batch: the cheapest authenticated call, so 1,000 of them stay fast.
    return [hub.batch([]).status_code for _ in range(count)]


def test_rate_limit_answers_429_with_retry_after(hub, settings):
    faults(settings, hub.app.api_id, rate_limit_rate=1.0, retry_after=7, seed=1)

    response = hub.get("/cld-1/people")

    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    assert response.json()["errors"][0]["status"] == "429"


def test_error_rate_fails_about_that_share_of_calls_reproducibly(hub, hub_app):
    call_command("sandbox_faults", "--app", hub_app.api_id, "--error-rate", "0.3", "--seed", "42")
    first_run = statuses(hub, 1000)
    # Saving the configuration again restarts the seeded sequence.
    call_command("sandbox_faults", "--app", hub_app.api_id, "--seed", "42")
    second_run = statuses(hub, 1000)

    failures = sum(status >= 500 for status in first_run)
    assert 250 <= failures <= 350
    assert set(first_run) <= {200, 500, 502, 503, 504}
    assert second_run == first_run


def test_faults_only_touch_the_configured_app(hub, client, peer_app, settings):
    faults(settings, hub.app.api_id, error_rate=1.0, seed=1)

    assert hub.get("/cld-1/people").status_code >= 500
    assert Hub(client=client, app=peer_app).get("/cld-1/people").status_code == 200


def test_unauthenticated_calls_and_pages_are_not_faulted(client, hub, settings):
    faults(settings, hub.app.api_id, error_rate=1.0, seed=1)

    assert client.get("/sandbox/connec/api/v2/cld-1/people").status_code == 401
    assert client.get("/sandbox/").status_code == 200


def test_connec_scope_leaves_the_account_api_alone(client, hub, settings):
    faults(settings, hub.app.api_id, error_rate=1.0, seed=1, scope="connec")
    auth = {"Authorization": hub.headers()["Authorization"]}

    account = client.get("/sandbox/api/v1/account/users", headers=auth)
    session = client.get("/sandbox/api/v1/auth/saml/usr-1?session=x", headers=auth)

    assert "X-Sandbox-Fault" not in account
    assert "X-Sandbox-Fault" not in session
    assert hub.get("/cld-1/people")["X-Sandbox-Fault"] == "error"


def test_account_api_and_session_check_get_faults_too(client, hub, settings):
    faults(settings, hub.app.api_id, rate_limit_rate=1.0, seed=1)
    auth = {"Authorization": hub.headers()["Authorization"]}

    account = client.get("/sandbox/api/v1/account/users", headers=auth)
    session = client.get("/sandbox/api/v1/auth/saml/usr-1?session=x", headers=auth)

    assert account.status_code == 429 and account.json()["success"] is False
    assert session.status_code == 429 and "Retry-After" in session


def test_latency_is_marked_on_the_response(hub, settings):
    faults(settings, hub.app.api_id, latency_ms=1, seed=1)

    response = hub.get("/cld-1/people")

    assert response.status_code == 200
    assert response["X-Sandbox-Fault"] == "latency"


def test_a_dropped_connection_under_the_test_client_raises(hub, settings):
    faults(settings, hub.app.api_id, drop_rate=1.0, seed=1)

    with pytest.raises(ConnectionDropped):
        hub.get("/cld-1/people")


def test_faults_configured_in_the_database_apply_until_cleared(hub, hub_app):
    call_command("sandbox_faults", "--app", hub_app.api_id, "--error-rate", "1")
    assert hub.get("/cld-1/people").status_code >= 500

    call_command("sandbox_faults", "--app", hub_app.api_id, "--disable")
    assert hub.get("/cld-1/people").status_code == 200

    call_command("sandbox_faults", "--app", hub_app.api_id, "--error-rate", "1")
    call_command("sandbox_faults", "--app", hub_app.api_id, "--clear")
    assert hub.get("/cld-1/people").status_code == 200


def test_rates_adding_up_to_more_than_one_are_refused(hub_app):
    with pytest.raises(CommandError):
        call_command(
            "sandbox_faults", "--app", hub_app.api_id, "--error-rate", "0.8", "--drop-rate", "0.5"
        )


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_dropped_connection_closes_the_socket_without_a_response(live_server, settings):
    app = register_app("dropper")
    Group.objects.create(uid="cld-9", name="G").apps.add(app)
    faults(settings, app.api_id, drop_rate=1.0, seed=1)

    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{live_server.url}/sandbox/connec/api/v2/cld-9/people",
            headers={"Authorization": basic_auth(app.api_id, app.api_key)},
            timeout=5,
        )


def test_a_held_call_waits_for_the_gate_then_is_answered(platform):
    """``faults.holding``: a test sees the app's state while its call is in flight."""
    users = f"{platform.sandbox_url}/api/v1/account/users"
    answers: list[requests.Response] = []

    def call() -> None:
        answers.append(requests.get(users, auth=platform.auth, timeout=10))

    platform.add_member(group_uid="cld-held", user_uid="usr-held", role="Admin")
    with sandbox_faults.holding(platform.api_id, area="account") as gate:
        caller = threading.Thread(target=call)
        caller.start()
        held = gate.wait_for_call(timeout=10)
        # The app's calls to other areas are not held.
        connec = requests.get(
            f"{platform.sandbox_url}/connec/api/v2/cld-held/people", auth=platform.auth, timeout=10
        )
        caller.join(0.2)
        still_held = caller.is_alive() and answers == []
        gate.open()
        caller.join(10)

    assert held == "GET /sandbox/api/v1/account/users"
    assert connec.status_code == 200
    assert still_held
    assert [answer.status_code for answer in answers] == [200]


def test_an_injected_error_can_answer_a_given_text_in_the_areas_error_body(hub, settings):
    faults(settings, hub.app.api_id, error_rate=1.0, error_status=500, error_detail="a\nb")

    response = hub.get("/cld-1/people")

    assert response.status_code == 500
    assert response.json()["errors"][0]["detail"] == "a\nb"


def test_records_can_be_answered_as_another_groups_each_drawn_on_its_own(hub, settings):
    for n in range(12):
        assert hub.post("/cld-1/people", {"people": {"first_name": f"P{n}"}}).status_code == 201
    faults(settings, hub.app.api_id, foreign_group_rate=0.5, seed=5)

    page = hub.get("/cld-1/people", {"$top": 12})
    groups = [record["group_id"] for record in page.json()["people"]]
    one = hub.get(f"/cld-1/people/{page.json()['people'][0]['id']}")

    assert page["X-Sandbox-Fault"] == "foreign_group"
    assert set(groups) == {"cld-1", sandbox_faults.FOREIGN_GROUP}
    assert one.json()["people"]["group_id"] in {"cld-1", sandbox_faults.FOREIGN_GROUP}
    # Writes are never rewritten.
    faults(settings, hub.app.api_id, foreign_group_rate=1.0)
    written = hub.post("/cld-1/people", {"people": {"first_name": "W"}})
    assert written.json()["people"]["group_id"] == "cld-1"
