"""Connec! notifications: changes POSTed to the other apps of the group, retried, never echoed.

The receiving apps are a tiny HTTP server on 127.0.0.1 started by the test.
``deliver_pending`` delivers what is due and waits for the queue to drain; the
first test lets the sandbox's background thread deliver after the commit, the
others deliver from the test's own transaction (faster, same code path).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from maestrano_sandbox.connec.notifications import deliver_pending
from maestrano_sandbox.models import Group, NotificationDelivery
from tests.sandbox.connec_support import Hub, register_app

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {"BACKGROUND": False, "BACKOFF": 0.05, "MAX_ATTEMPTS": 3, "TIMEOUT": 5},
    }


@pytest.fixture
def apps(receiver):
    writer = register_app("app-a", app_host=receiver.url, notifications_path="/a/notify")
    reader = register_app("app-b", app_host=receiver.url, notifications_path="/b/notify")
    group = Group.objects.create(uid="cld-1", name="Acme")
    group.apps.add(writer, reader)
    return writer, reader


def test_a_person_written_by_app_a_reaches_app_b_once_with_b_credentials(client, apps, receiver):
    writer, reader = apps
    created = Hub(client=client, app=writer).post(
        "/cld-1/people", {"people": {"first_name": "Ada"}}
    )

    assert deliver_pending(timeout=10) == 0
    [notification] = receiver.at("/b/notify")
    assert (notification.username, notification.password) == (reader.api_id, reader.api_key)
    [person] = notification.body["people"]
    assert person["id"] == created.json()["people"]["id"]
    assert person["first_name"] == "Ada"
    assert person["group_id"] == "cld-1"
    assert person["channel_id"].startswith("org-")
    assert receiver.at("/a/notify") == []
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.app) == ("delivered", 1, reader)


def test_a_500_from_the_receiver_is_retried_until_delivered(client, apps, receiver):
    writer, _reader = apps
    receiver.replies = [500]

    Hub(client=client, app=writer).post("/cld-1/people", {"people": {"first_name": "Ada"}})

    assert deliver_pending(timeout=10) == 0
    assert len(receiver.at("/b/notify")) == 2
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


def test_delivery_gives_up_after_the_last_attempt_and_keeps_the_error(client, apps, receiver):
    writer, _reader = apps
    receiver.replies = [503, 503, 503]

    Hub(client=client, app=writer).post("/cld-1/people", {"people": {"first_name": "Ada"}})

    assert deliver_pending(timeout=10) == 0
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "503" in delivery.last_error


def test_a_client_error_is_not_retried(client, apps, receiver):
    writer, _reader = apps
    receiver.replies = [401]

    Hub(client=client, app=writer).post("/cld-1/people", {"people": {"first_name": "Ada"}})

    assert deliver_pending(timeout=10) == 0
    assert len(receiver.at("/b/notify")) == 1
    assert NotificationDelivery.objects.get().status == "failed"


def test_an_unreachable_app_is_retried_then_given_up(client, apps):
    writer, reader = apps
    reader.app_host = "http://127.0.0.1:9"
    reader.save()

    Hub(client=client, app=writer).post("/cld-1/people", {"people": {"first_name": "Ada"}})

    assert deliver_pending(timeout=10) == 0
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, None)
    assert "ConnectionError" in delivery.last_error


def test_a_batch_is_coalesced_into_one_notification_per_app(client, apps, receiver):
    writer, _reader = apps
    hub = Hub(client=client, app=writer)
    organization = hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}}).json()
    deliver_pending(timeout=10)
    receiver.received.clear()

    results = hub.batch(
        [
            {
                "method": "post",
                "url": "/api/v2/cld-1/people",
                "params": {"people": {"id": [{"id": "1", "provider": "a", "realm": "r"}]}},
            },
            {
                "method": "post",
                "url": "/api/v2/cld-1/people",
                "params": {
                    "people": {"id": [{"id": "1", "provider": "a", "realm": "r"}], "last_name": "X"}
                },
            },
            {
                "method": "put",
                "url": f"/api/v2/cld-1/organizations/{organization['organizations']['id']}",
                "params": {"organizations": {"is_customer": True}},
            },
        ]
    ).json()["results"]

    assert [r["status"] for r in results] == [422, 201, 200]
    assert deliver_pending(timeout=10) == 0
    [notification] = receiver.at("/b/notify")
    assert [p["last_name"] for p in notification.body["people"]] == ["X"]
    assert [o["is_customer"] for o in notification.body["organizations"]] == [True]


def test_subscriptions_limit_what_an_app_receives(client, apps, receiver):
    writer, reader = apps
    reader.subscriptions = {"organizations": True, "people": False}
    reader.save()
    hub = Hub(client=client, app=writer)

    hub.post("/cld-1/people", {"people": {"first_name": "Ada"}})
    hub.post("/cld-1/organizations", {"organizations": {"name": "Acme"}})

    assert deliver_pending(timeout=10) == 0
    [notification] = receiver.at("/b/notify")
    assert list(notification.body) == ["organizations"]


def test_a_write_from_the_sandbox_reaches_every_app_of_the_group(apps, receiver):
    call_command(
        "sandbox_connec_write", "--group", "cld-1", "--entity", "items", "--data", '{"name": "W"}'
    )

    # Delivered before the command returned: nothing else delivers here (no background thread).
    assert len(receiver.at("/a/notify")) == 1
    assert len(receiver.at("/b/notify")) == 1
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_the_write_command_waits_for_an_app_that_answers_after_retries(apps, receiver):
    receiver.replies = [503, 503]  # app-a or app-b: two failures, then 200s
    errors = io.StringIO()
    call_command(
        "sandbox_connec_write",
        *("--group", "cld-1", "--entity", "items", "--data", '{"name": "W"}'),
        stderr=errors,
    )

    assert len(receiver.at("/a/notify")) + len(receiver.at("/b/notify")) == 4
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert "to app-a: delivered" in errors.getvalue()
    assert "to app-b: delivered" in errors.getvalue()


def test_the_write_command_reports_an_app_it_could_not_reach(apps, receiver):
    _writer, reader = apps
    reader.app_host = "http://127.0.0.1:9"  # nothing listens there
    reader.save()
    errors = io.StringIO()
    call_command(
        "sandbox_connec_write",
        *("--group", "cld-1", "--entity", "items", "--data", '{"name": "W"}'),
        stderr=errors,
    )

    assert len(receiver.at("/a/notify")) == 1
    assert "to app-b: failed after 3 attempt(s) (ConnectionError" in errors.getvalue()


def test_the_write_command_can_leave_its_notifications_to_the_server(apps, receiver):
    call_command(
        "sandbox_connec_write",
        *("--group", "cld-1", "--entity", "items", "--data", '{"name": "W"}', "--wait", "0"),
    )

    assert receiver.received == []
    assert deliver_pending(timeout=10) == 0
    assert len(receiver.received) == 2


def test_a_write_as_one_app_from_the_command_skips_that_app(apps, receiver):
    call_command(
        "sandbox_connec_write",
        "--group",
        "cld-1",
        "--entity",
        "items",
        "--data",
        '{"name": "W"}',
        "--as-app",
        "app-b",
    )

    assert len(receiver.at("/a/notify")) == 1
    assert receiver.at("/b/notify") == []


def test_failed_writes_notify_nobody(client, apps, receiver):
    writer, _reader = apps

    Hub(client=client, app=writer).post("/cld-1/people", {"people": {"job_title": "no name"}})

    assert deliver_pending(timeout=10) == 0
    assert receiver.received == []
    assert not NotificationDelivery.objects.exists()
