"""The admin: log and audit rows are read-only (their actions stay), the login is throttled."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from maestrano_accounts.models import Company, PlatformIdentity
from maestrano_sync.models import InboxEntry

pytestmark = pytest.mark.django_db(databases="__all__")

READ_ONLY = [
    "maestrano_accounts.UsedAssertion",
    "maestrano_accounts.SsoLoginTicket",
    "maestrano_accounts.CompanySubscription",
    "maestrano_accounts.AdHocCharge",
    "maestrano_sync.SyncRun",
    "maestrano_sync.SyncRecordError",
    "maestrano_sync.OutboxEntry",
    "maestrano_sync.InboxEntry",
    "maestrano_sync.SyncConflict",
    "maestrano_sync.SyncSettingsChange",
    "maestrano_sandbox.AccountWebhookDelivery",
    "maestrano_sandbox.NotificationDelivery",
]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("label", READ_ONLY)
def test_log_and_audit_rows_cannot_be_added_changed_or_deleted(admin_client, label):
    model = apps.get_model(label)
    assert model in admin.site._registry, f"{label} is not in the admin"

    listing = admin_client.get(_url(model, "changelist"))
    assert listing.status_code == 200
    assert _url(model, "add") not in listing.content.decode()
    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.post(_url(model, "add"), {}).status_code == 403
    action_form = listing.context["action_form"]  # None when no action is left
    actions = action_form.fields["action"].choices if action_form else []
    assert "delete_selected" not in [name for name, _ in actions]


def test_an_inbox_entry_is_shown_read_only_and_its_retry_action_still_works(admin_client):
    company = Company.objects.create(preset="maestrano", group_uid="cld-adm", name="Adm")
    entry = InboxEntry.objects.create(
        preset="maestrano", company=company, payload={}, status=InboxEntry.Status.FAILED
    )

    page = admin_client.get(_url(InboxEntry, "change", entry.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view page, no form to save
    changed = admin_client.post(_url(InboxEntry, "change", entry.pk), {"status": "done"})
    assert changed.status_code == 403
    assert admin_client.post(_url(InboxEntry, "delete", entry.pk), {"post": "yes"}).status_code == (
        403
    )
    assert InboxEntry.objects.filter(pk=entry.pk).exists()

    admin_client.post(
        _url(InboxEntry, "changelist"), {"action": "retry", "_selected_action": [entry.pk]}
    )
    entry.refresh_from_db()
    assert entry.status != InboxEntry.Status.FAILED  # queued again (and processed eagerly)


def test_the_admin_login_is_throttled_after_repeated_failures(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "the-right-pw-1")
    login_url = reverse("admin:login")

    answers = [
        client.post(login_url, {"username": "root", "password": f"wrong-{attempt}"}).status_code
        for attempt in range(5)
    ]
    assert answers == [200, 200, 200, 200, 429]  # the form with an error, then locked out
    locked = client.post(login_url, {"username": "root", "password": "the-right-pw-1"})

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # still not logged in


def test_behind_a_proxy_the_admin_login_locks_out_the_client_not_the_proxy(
    client, django_user_model, settings
):
    # The example project hands django-axes the app's own client address rule
    # (AXES_CLIENT_IP_CALLABLE): with NUM_PROXIES set, the address the proxy forwarded.
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1}
    django_user_model.objects.create_superuser("root", "root@example.com", "the-right-pw-1")
    login_url = reverse("admin:login")

    def post(password: str, forwarded_for: str) -> int:
        return client.post(
            login_url,
            {"username": "root", "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=forwarded_for,
        ).status_code

    assert [post(f"wrong-{n}", "203.0.113.7") for n in range(5)] == [200, 200, 200, 200, 429]
    assert post("the-right-pw-1", "203.0.113.7") == 429
    assert post("the-right-pw-1", "198.51.100.9") == 302  # another client, same proxy


def test_a_successful_admin_login_resets_the_failures_of_its_address(client, django_user_model):
    # The demo's axes handler (config/axes_handler.py) must recognise the admin's login as
    # an admin request, or the successful login would not reset the count (AXES_RESET_ON_SUCCESS).
    django_user_model.objects.create_superuser("root", "root@example.com", "the-right-pw-1")
    login_url = reverse("admin:login")

    def fail(times: int) -> list[int]:
        return [
            client.post(login_url, {"username": "root", "password": f"wrong-{n}"}).status_code
            for n in range(times)
        ]

    assert fail(3) == [200, 200, 200]
    assert (
        client.post(login_url, {"username": "root", "password": "the-right-pw-1"}).status_code
        == 302
    )
    client.logout()
    assert fail(3) == [200, 200, 200]  # counted from zero again: 6 failures in all, no lockout
    again = client.post(login_url, {"username": "root", "password": "the-right-pw-1"})
    assert again.status_code == 302


def test_a_platform_identity_cannot_be_pointed_at_another_user(client):
    # Whoever may change identities would otherwise log in, through their own uid, as anyone.
    user_model = get_user_model()
    root = user_model.objects.create_superuser("root", "root@example.com", "pw-123456")
    staff = user_model.objects.create_user(
        "support", "support@example.com", "pw-123456", is_staff=True
    )
    staff.user_permissions.add(Permission.objects.get(codename="change_platformidentity"))
    own = PlatformIdentity.objects.create(user=staff, preset="maestrano", uid="usr-support")
    client.force_login(staff)

    page = client.get(_url(PlatformIdentity, "change", own.pk))
    client.post(_url(PlatformIdentity, "change", own.pk), {"user": root.pk})

    assert page.status_code == 200
    own.refresh_from_db()
    assert own.user_id == staff.pk
    assert client.get(_url(PlatformIdentity, "add")).status_code == 403
