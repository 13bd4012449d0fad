"""Account webhooks sent by the sandbox (docs/protocol.md, 'Account webhooks') to a receiving HTTP
server on 127.0.0.1."""

from __future__ import annotations

import base64

import pytest
import requests
from django.core.management import CommandError, call_command

from maestrano_sandbox.models import AccountWebhookDelivery, GroupMembership, RecurringBill
from tests.helpers.saml import form_posting_to


@pytest.fixture
def hooked(platform, receiver, settings):
    """An app registered at the receiver, used by cld-1 (two members), with fast retries."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "WEBHOOK_BACKOFF_SECONDS": 0.01,
        "WEBHOOK_MAX_ATTEMPTS": 3,
        "WEBHOOK_TIMEOUT_SECONDS": 2,
    }
    app = platform.register_app(api_id="app-hooked", app_host=receiver.url)
    platform.add_member(group_uid="cld-1", user_uid="usr-1", role="Admin", app=app)
    platform.add_member(group_uid="cld-1", user_uid="usr-2", app=app)
    return app


def _basic(app) -> str:
    return "Basic " + base64.b64encode(f"{app.api_id}:{app.api_key}".encode()).decode()


def _click(platform, page_path: str, action_path: str) -> requests.Response:
    """Load a sandbox page and submit the button form whose action is ``action_path``."""
    http = requests.Session()
    page = http.get(f"{platform.sandbox_url}{page_path}", timeout=10)
    assert page.status_code == 200
    token = form_posting_to(page.text, f"/sandbox{action_path}")["fields"]["csrfmiddlewaretoken"]
    return http.post(
        f"{platform.sandbox_url}{action_path}",
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": page.url},
        timeout=30,
    )


def test_cancel_service_button_sends_delete_group_with_app_auth_and_retries_on_500(
    platform, receiver, hooked
):
    RecurringBill.objects.create(
        app=hooked,
        group=hooked.groups.get(uid="cld-1"),
        price_cents=100,
        description="Plan",
        start_date="2030-01-01T00:00:00Z",
    )
    receiver.replies = [500]
    response = _click(platform, "/groups/cld-1", "/groups/cld-1/apps/app-hooked/cancel")
    assert response.status_code == 200  # redirected back to the group page

    assert receiver.calls == [
        ("DELETE", "/maestrano/account/groups/cld-1", _basic(hooked)),
        ("DELETE", "/maestrano/account/groups/cld-1", _basic(hooked)),
    ]
    delivery = AccountWebhookDelivery.objects.get()
    assert delivery.kind == AccountWebhookDelivery.GROUP_CANCELLED
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 2, 200)
    assert delivery.delivered_at is not None
    assert '"success": true' in delivery.response_body
    assert not hooked.groups.filter(uid="cld-1").exists()
    assert RecurringBill.objects.get().status == "cancelled"
    assert "succeeded after 2 attempt" in response.text


def test_remove_member_button_sends_delete_group_user(platform, receiver, hooked):
    response = _click(platform, "/groups/cld-1", "/groups/cld-1/members/usr-2/remove")
    assert response.status_code == 200
    assert receiver.calls == [
        ("DELETE", "/maestrano/account/groups/cld-1/users/usr-2", _basic(hooked))
    ]
    assert not GroupMembership.objects.filter(user__uid="usr-2").exists()
    assert GroupMembership.objects.filter(user__uid="usr-1").exists()
    delivery = AccountWebhookDelivery.objects.get()
    assert (delivery.kind, delivery.user_uid, delivery.status) == (
        "user_removed",
        "usr-2",
        "succeeded",
    )


def test_client_errors_are_not_retried(platform, receiver, hooked):
    receiver.replies = [404]
    with pytest.raises(CommandError, match="failed after 1 attempt"):
        call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1", user="usr-2")
    assert len(receiver.calls) == 1
    delivery = AccountWebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == ("failed", 404)


def test_persistent_server_errors_fail_after_the_configured_attempts(platform, receiver, hooked):
    receiver.replies = [500, 503, 502, 500]
    with pytest.raises(CommandError, match="failed after 3 attempt"):
        call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1")
    assert len(receiver.calls) == 3
    delivery = AccountWebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status, delivery.last_error) == (
        "failed",
        502,
        "HTTP 502",
    )
    # The platform-side fact stands: the group no longer uses the app.
    assert not hooked.groups.exists()

    # Sent again from the delivery log, it reaches the now healthy app.
    receiver.replies = [500]
    response = _click(platform, "/groups/cld-1", f"/webhook-deliveries/{delivery.pk}/retry")
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 5)


def test_unreachable_app_is_retried_then_logged(platform, hooked):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    hooked.app_host = f"http://127.0.0.1:{closed_port}"
    hooked.save()
    with pytest.raises(CommandError):
        call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1", user="usr-1")
    delivery = AccountWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 3, None)
    assert "ConnectionError" in delivery.last_error


def test_command_sends_both_webhooks_on_custom_paths(platform, receiver, hooked, capsys):
    hooked.groups_path = "/hooks/groups/:id"
    hooked.group_users_path = "/hooks/groups/:group_id/members/:id"
    hooked.save()
    call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1", user="usr-1")
    call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1")
    assert [path for _, path, _ in receiver.calls] == [
        "/hooks/groups/cld-1/members/usr-1",
        "/hooks/groups/cld-1",
    ]
    assert "succeeded" in capsys.readouterr().out


def test_command_refuses_unknown_ids(platform, hooked):
    with pytest.raises(CommandError, match="Unknown app"):
        call_command("sandbox_send_account_webhook", app="app-nope", group="cld-1")
    with pytest.raises(CommandError, match="Unknown group"):
        call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-nope")
    with pytest.raises(CommandError, match="Unknown user"):
        call_command("sandbox_send_account_webhook", app="app-hooked", group="cld-1", user="usr-x")


def test_admin_action_cancels_the_service(platform, receiver, hooked, admin_client):
    group = hooked.groups.get(uid="cld-1")
    response = admin_client.post(
        "/admin/maestrano_sandbox/group/",
        {"action": "cancel_service", "_selected_action": [group.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert receiver.calls == [("DELETE", "/maestrano/account/groups/cld-1", _basic(hooked))]
    assert AccountWebhookDelivery.objects.get().status == "succeeded"


def test_buttons_need_a_csrf_token(platform, hooked, receiver):
    response = requests.post(
        f"{platform.sandbox_url}/groups/cld-1/apps/app-hooked/cancel", timeout=10
    )
    assert response.status_code == 403
    assert receiver.calls == []


def test_cancel_service_reaches_an_app_whose_views_run_in_a_transaction(
    platform, settings, monkeypatch
):
    """A project with ``ATOMIC_REQUESTS`` has Django wrap every view in a transaction on
    its database, the sandbox's pages beside it in its tests included: on SQLite the
    "Cancel service" page then held the app's write lock while it called the app's
    webhook, which waited for it until the sandbox gave up (four attempts, 47 s). The
    sandbox's views never run in the project's request transactions."""
    from django.db import connections

    from maestrano_accounts.models import Company

    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "WEBHOOK_MAX_ATTEMPTS": 1,
        "WEBHOOK_TIMEOUT_SECONDS": 3,
    }
    platform.login(user_uid="usr-atomic", group_uid="cld-atomic")
    # Every thread's connection reads this one dict: the live server's too.
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)

    response = _click(
        platform, "/groups/cld-atomic", f"/groups/cld-atomic/apps/{platform.api_id}/cancel"
    )

    assert response.status_code == 200
    delivery = AccountWebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == ("succeeded", 200)
    assert Company.objects.get(group_uid="cld-atomic").status == Company.Status.CANCELLED
