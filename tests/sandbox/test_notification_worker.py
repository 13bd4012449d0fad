"""The notification sender's kept resources: one HTTP session per thread (its connections
reused), the background thread's database connection kept across wake-ups, and claims
that stay exactly-once between concurrent senders.

The receiving app is a keep-alive HTTP/1.1 server on 127.0.0.1 that records the client
port of each POST: one port for several POSTs means one reused connection.
"""

from __future__ import annotations

import threading
import time

import pytest

from maestrano_sandbox.connec.notifications import _worker, deliver_due, deliver_pending
from maestrano_sandbox.models import Group, NotificationDelivery
from tests.helpers.app_receiver import app_receiver
from tests.sandbox.connec_support import Hub, register_app


def notifications(settings, *, background: bool) -> None:
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {"BACKGROUND": background, "BACKOFF": 0.05, "MAX_ATTEMPTS": 3},
    }


@pytest.fixture
def group(receiver):
    writer = register_app("app-a", app_host=receiver.url, notifications_path="/a/notify")
    reader = register_app("app-b", app_host=receiver.url, notifications_path="/b/notify")
    group = Group.objects.create(uid="cld-1", name="Acme")
    group.apps.add(writer, reader)
    return Hub(client=None, app=writer), reader


def post_people(client, hub: Hub, names: list[str]) -> None:
    for name in names:
        response = Hub(client=client, app=hub.app).post(
            "/cld-1/people", {"people": {"first_name": name}}
        )
        assert response.status_code == 201, response.content


@pytest.mark.django_db(databases="__all__")
def test_a_failed_delivery_is_retried_over_the_kept_connection(client, settings, group, receiver):
    notifications(settings, background=False)
    hub, _reader = group
    receiver.replies = [500]

    post_people(client, hub, ["Ada", "Grace"])

    assert deliver_pending(timeout=10) == 0
    # Ada's 500, Grace, Ada again after the backoff: three POSTs, one connection.
    assert sorted(r.body["people"][0]["first_name"] for r in receiver.received) == [
        "Ada",
        "Ada",
        "Grace",
    ]
    assert len(receiver.client_ports) == 1
    assert sorted(NotificationDelivery.objects.values_list("status", "attempts")) == [
        ("delivered", 1),
        ("delivered", 2),
    ]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_two_senders_never_deliver_the_same_notification_twice(client, settings, group, receiver):
    notifications(settings, background=False)
    hub, _reader = group
    names = [f"person {n}" for n in range(30)]
    post_people(client, hub, names)
    assert NotificationDelivery.objects.count() == 30

    from django.db import connections

    def sender() -> None:
        try:
            deliver_due()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    delivered = [r.body["people"][0]["first_name"] for r in receiver.received]
    assert sorted(delivered) == sorted(names)
    assert set(NotificationDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


def wait_for_the_thread(count: int) -> None:
    """Wait (without delivering from this thread) until ``count`` deliveries are delivered."""
    deadline = time.monotonic() + 10
    while NotificationDelivery.objects.filter(status="delivered").count() < count:
        assert time.monotonic() < deadline, "the background thread did not deliver"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_background_thread_keeps_its_connections_across_wake_ups(
    client, settings, group, receiver
):
    notifications(settings, background=True)
    hub, _reader = group

    post_people(client, hub, ["Ada"])
    wait_for_the_thread(1)
    post_people(client, hub, ["Grace"])
    wait_for_the_thread(2)
    assert len(receiver.client_ports) == 1  # the thread's session reused its connection

    assert _worker.release_connections(timeout=10)
    # Woken again after closing its database connection, it opens a new one.
    post_people(client, hub, ["Katherine"])
    wait_for_the_thread(3)
    assert [r.body["people"][0]["first_name"] for r in receiver.received] == [
        "Ada",
        "Grace",
        "Katherine",
    ]
    assert _worker.release_connections(timeout=10)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_background_thread_recovers_when_its_kept_connection_is_closed(
    client, settings, group, receiver
):
    from django.db import connections

    sandbox = connections["sandbox"]
    if sandbox.vendor != "postgresql":
        pytest.skip("closes the thread's connection from the server side (PostgreSQL)")
    notifications(settings, background=True)
    hub, _reader = group
    post_people(client, hub, ["Ada"])
    wait_for_the_thread(1)

    with sandbox.cursor() as cursor:  # the server ends every other session of the database
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    post_people(client, hub, ["Grace"])

    wait_for_the_thread(2)  # a failed wake-up, then one more try on a new connection
    assert _worker.release_connections(timeout=10)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_sender_uses_the_proxy_its_environment_names(client, settings, receiver, monkeypatch):
    """Proxy variables are read by each sender thread's session (once, not per POST):
    an app's notifications go through ``HTTP_PROXY`` unless ``NO_PROXY`` names its host."""
    from django.db import connections

    notifications(settings, background=False)
    writer = register_app("app-a", app_host=receiver.url)
    behind = register_app("app-b", app_host="http://app-b.invalid", notifications_path="/b")
    direct = register_app("app-c", app_host=receiver.url, notifications_path="/c")
    group = Group.objects.create(uid="cld-1", name="Acme")
    group.apps.add(writer, behind, direct)
    post_people(client, Hub(client=None, app=writer), ["Ada", "Grace"])

    def sender() -> None:  # a new thread: a new session, reading this environment
        try:
            deliver_due()
        finally:
            connections.close_all()

    with app_receiver() as proxy:  # a proxy is asked for the absolute URL
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        thread = threading.Thread(target=sender)
        thread.start()
        thread.join(30)

    assert [r.path for r in proxy.received] == ["http://app-b.invalid/b"] * 2
    assert [r.path for r in receiver.received] == ["/c", "/c"]  # app-c, on 127.0.0.1, directly
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"delivered"}
