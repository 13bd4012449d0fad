"""Account webhooks sent BY THE SANDBOX's sender to the app on a live server
(docs/protocol.md, 'Account webhooks').

The sandbox's ``sandbox_send_account_webhook`` command (and the sender functions
it uses) play the platform: a group cancels the app, a member is removed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from maestrano_accounts.adapter import DefaultAccountAdapter
from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription, Membership
from maestrano_integration.account import AccountClient
from maestrano_sandbox.account_webhooks import notify_group_cancelled, notify_user_removed
from maestrano_sandbox.models import AccountWebhookDelivery
from tests.helpers.sso_flow import login
from tests.helpers.users import user_of

User = get_user_model()

TIMEOUT = 10
ACME_INIT = "/maestrano/acme/auth/saml/init"


class FinalBillAdapter(DefaultAccountAdapter):
    def final_bill(self, company):
        return {"price_cents": 750, "description": "Final bill: usage to date"}


def sso(platform, http=None, *, group_uid, user_uid, init_path="/maestrano/auth/saml/init"):
    http = http or platform.session()
    answer = login(platform, http, init_path=init_path, user_uid=user_uid, group_uid=group_uid)
    assert answer.status_code == 302, answer.text[:500]
    return http


def dashboard_status(platform, http) -> tuple[int, str]:
    response = http.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=TIMEOUT)
    return response.status_code, response.headers.get("Location", "")


def send(app, *, group, user=None):
    """The sandbox's command: the group cancels ``app`` (or ``user`` leaves the group)."""
    options = {"app": app.api_id, "group": group}
    if user:
        options["user"] = user
    call_command("sandbox_send_account_webhook", **options)


@pytest.fixture
def acme(platform):
    """A second marketplace ("acme") in virtual mode, with its own app registration."""
    app = platform.register_app(
        api_id="acme-app",
        name="Acme marketplace app",
        init_path=ACME_INIT,
        consume_path="/maestrano/acme/auth/saml/consume",
        groups_path="/maestrano/acme/account/groups/:id",
        group_users_path="/maestrano/acme/account/groups/:group_id/users/:id",
    )
    platform.configure(
        maestrano=platform.preset_values(),
        acme=platform.preset_values(app, sso={"creation_mode": "virtual"}),
    )
    return app


# --- group DELETE ------------------------------------------------------------------------


def test_group_cancellation_cancels_company_bill_and_access_and_sends_one_final_bill(
    platform, settings
):
    settings.MAESTRANO = {**settings.MAESTRANO, "ADAPTER": f"{__name__}.FinalBillAdapter"}
    http = sso(platform, group_uid="cld-gone", user_uid="usr-gone")
    assert dashboard_status(platform, http)[0] == 200
    subscription = CompanySubscription.objects.get(company__group_uid="cld-gone")
    assert subscription.platform_id

    send(platform.app, group="cld-gone")

    company = Company.objects.get(group_uid="cld-gone")
    assert company.status == Company.Status.CANCELLED
    assert company.cancelled_at is not None
    subscription.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.CANCELLED
    assert not subscription.platform_cancel_pending
    client = AccountClient()
    assert client.retrieve_recurring_bill(subscription.platform_id).status == "cancelled"
    (final_bill,) = client.list_bills(group_id="cld-gone")
    assert final_bill.price_cents == 750
    assert final_bill.description.startswith("Final bill: usage to date")
    # The logged-in session loses access on its next request.
    assert dashboard_status(platform, http) == (
        302,
        f"{platform.sandbox_url}/app_access_unauthorized",
    )
    # Real mode: the user keeps their account; nothing was deleted.
    assert user_of("usr-gone").is_active
    assert Membership.objects.filter(company=company).count() == 1

    # The platform repeats the webhook: 200, and no second cancel or final bill.
    before = CompanySubscription.objects.get(pk=subscription.pk).updated_at
    send(platform.app, group="cld-gone")

    assert AccountWebhookDelivery.objects.filter(status="succeeded").count() == 2
    assert len(client.list_bills(group_id="cld-gone")) == 1
    assert AdHocCharge.objects.count() == 1
    assert CompanySubscription.objects.get(pk=subscription.pk).updated_at == before


def test_sso_into_a_cancelled_group_reactivates_it_with_a_new_subscription(platform):
    sso(platform, group_uid="cld-back", user_uid="usr-back")
    send(platform.app, group="cld-back")
    first = CompanySubscription.objects.get()

    http = sso(platform, group_uid="cld-back", user_uid="usr-back")

    assert dashboard_status(platform, http)[0] == 200
    company = Company.objects.get(group_uid="cld-back")
    assert company.status == Company.Status.ACTIVE
    second = CompanySubscription.objects.exclude(pk=first.pk).get()
    assert second.status == CompanySubscription.Status.SUBMITTED
    remote = {
        bill.id: bill.status for bill in AccountClient().list_recurring_bills(group_id="cld-back")
    }
    assert remote == {first.platform_id: "cancelled", second.platform_id: "submitted"}


def test_group_cancellation_in_virtual_mode_deactivates_the_group_users(platform, acme):
    http = sso(platform, group_uid="cld-v", user_uid="usr-v", init_path=ACME_INIT)
    sso(platform, group_uid="cld-v2", user_uid="usr-v", init_path=ACME_INIT)

    send(acme, group="cld-v")

    assert Company.objects.get(preset="acme", group_uid="cld-v").status == "cancelled"
    assert not user_of("usr-v.cld-v", preset="acme").is_active
    assert user_of("usr-v.cld-v2", preset="acme").is_active
    assert dashboard_status(platform, http)[0] == 302


def test_an_unknown_group_is_a_success_for_the_sender_and_changes_nothing(platform):
    sso(platform, group_uid="cld-known", user_uid="usr-known")

    delivery = notify_group_cancelled(app=platform.app, group_uid="cld-unknown")

    assert (delivery.status, delivery.response_status) == ("succeeded", 200)
    assert delivery.attempts == 1  # nothing to retry
    assert Company.objects.get(group_uid="cld-known").status == Company.Status.ACTIVE


def test_wrong_credentials_from_the_sender_are_401_and_change_nothing(platform):
    http = sso(platform, group_uid="cld-auth", user_uid="usr-auth")
    platform.configure(
        maestrano=platform.preset_values(api={"key": "not-the-key-the-sandbox-uses"})
    )

    with pytest.raises(CommandError, match="401"):
        send(platform.app, group="cld-auth")

    assert Company.objects.get(group_uid="cld-auth").status == Company.Status.ACTIVE
    platform.configure(maestrano=platform.preset_values())
    assert dashboard_status(platform, http)[0] == 200


def test_another_presets_credentials_are_refused_with_401(platform, acme):
    sso(platform, group_uid="cld-cross", user_uid="usr-cross")
    # The acme app's registration at the platform, pointed at the default preset's paths.
    acme.groups_path = "/maestrano/account/groups/:id"
    acme.group_users_path = "/maestrano/account/groups/:group_id/users/:id"
    acme.save()

    group_delivery = notify_group_cancelled(app=acme, group_uid="cld-cross")
    user_delivery = notify_user_removed(app=acme, group_uid="cld-cross", user_uid="usr-cross")

    assert group_delivery.response_status == user_delivery.response_status == 401
    assert '"Invalid credentials"' in group_delivery.response_body
    assert Company.objects.get(group_uid="cld-cross").status == Company.Status.ACTIVE
    assert Membership.objects.get(user__maestrano_identities__uid="usr-cross").is_active


# --- group-user DELETE ---------------------------------------------------------------------


def test_member_removal_in_real_mode_blocks_that_member_only(platform):
    removed = sso(platform, group_uid="cld-team", user_uid="usr-leaver")
    teammate = sso(platform, group_uid="cld-team", user_uid="usr-stayer")

    send(platform.app, group="cld-team", user="usr-leaver")

    leaver = user_of("usr-leaver")
    assert not Membership.objects.get(user=leaver).is_active
    assert not leaver.is_active  # no active company left
    assert dashboard_status(platform, removed)[0] == 302
    assert dashboard_status(platform, teammate)[0] == 200
    assert Company.objects.get(group_uid="cld-team").status == Company.Status.ACTIVE


def test_member_removal_in_real_mode_keeps_a_user_with_another_company(platform):
    in_a = sso(platform, group_uid="cld-a", user_uid="usr-multi")
    in_b = sso(platform, group_uid="cld-b", user_uid="usr-multi")

    send(platform.app, group="cld-a", user="usr-multi")

    user = user_of("usr-multi")
    assert user.is_active
    assert not Membership.objects.get(user=user, company__group_uid="cld-a").is_active
    assert Membership.objects.get(user=user, company__group_uid="cld-b").is_active
    # A session working in cld-a goes on in cld-b, with a word why; one in cld-b is unchanged.
    page = in_a.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "is no longer available" in page.text
    assert f'<h1 id="company-name">{Company.objects.get(group_uid="cld-b").name}</h1>' in page.text
    assert dashboard_status(platform, in_b)[0] == 200


def test_member_removal_in_virtual_mode_deactivates_the_masked_user(platform, acme):
    http = sso(platform, group_uid="cld-vt", user_uid="usr-vt", init_path=ACME_INIT)
    other = sso(platform, group_uid="cld-vt", user_uid="usr-vt2", init_path=ACME_INIT)

    send(acme, group="cld-vt", user="usr-vt")

    assert not user_of("usr-vt.cld-vt", preset="acme").is_active
    assert user_of("usr-vt2.cld-vt", preset="acme").is_active
    assert dashboard_status(platform, http)[0] == 302
    assert dashboard_status(platform, other)[0] == 200


def test_repeated_and_unknown_member_removals_are_200_and_change_nothing(platform):
    sso(platform, group_uid="cld-rep", user_uid="usr-rep")
    sso(platform, group_uid="cld-rep", user_uid="usr-rep2")

    first = notify_user_removed(app=platform.app, group_uid="cld-rep", user_uid="usr-rep")
    membership = Membership.objects.get(user__maestrano_identities__uid="usr-rep")
    again = notify_user_removed(app=platform.app, group_uid="cld-rep", user_uid="usr-rep")
    unknown = notify_user_removed(app=platform.app, group_uid="cld-rep", user_uid="usr-nobody")
    wrong_group = notify_user_removed(app=platform.app, group_uid="cld-none", user_uid="usr-rep2")

    assert (first.response_status, again.response_status) == (200, 200)
    assert Membership.objects.get(pk=membership.pk).updated_at == membership.updated_at
    assert (unknown.response_status, wrong_group.response_status) == (200, 200)
    assert Membership.objects.get(user__maestrano_identities__uid="usr-rep2").is_active
    assert user_of("usr-rep2").is_active
