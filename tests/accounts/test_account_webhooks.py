"""Account webhooks (docs/protocol.md, 'Account webhooks') through the Django test client: auth,
routing, effects.

Companies and users are created directly; the same webhooks sent by the
sandbox's sender over HTTP are in ``test_account_webhooks_live.py``.
"""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription, Membership
from tests.helpers.users import platform_user, sso_browser

User = get_user_model()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


DEFAULT_AUTH = basic("app-1", "key-1")  # preset "maestrano", real mode
ACME_AUTH = basic("acme-app", "acme-key")  # preset "acme-market", virtual mode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _presets(two_presets):
    return two_presets


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def make_company(preset="maestrano", group_uid="cld-1", **fields) -> Company:
    return Company.objects.create(
        preset=preset, group_uid=group_uid, name=f"Co {group_uid}", **fields
    )


def make_member(company: Company, uid: str, *, active=True) -> User:
    user = platform_user(uid, preset=company.preset)
    Membership.objects.create(user=user, company=company, is_active=active)
    return user


def delete(client, path, auth=DEFAULT_AUTH):
    return client.delete(path, HTTP_AUTHORIZATION=auth)


# --- group DELETE --------------------------------------------------------------------


def test_group_delete_cancels_the_company_and_keeps_its_data(csrf_client):
    company = make_company()
    user = make_member(company, "usr-1")

    response = delete(csrf_client, "/maestrano/account/groups/cld-1")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    company.refresh_from_db()
    assert company.status == Company.Status.CANCELLED
    assert company.cancelled_at is not None
    # Real mode: users keep their accounts (they may work in other companies).
    user.refresh_from_db()
    assert user.is_active
    assert Membership.objects.filter(company=company, user=user, is_active=True).exists()


def test_repeated_group_delete_answers_200_without_a_second_effect(client):
    company = make_company()
    assert delete(client, "/maestrano/account/groups/cld-1").status_code == 200
    company.refresh_from_db()
    first_cancelled_at = company.cancelled_at

    response = delete(client, "/maestrano/account/groups/cld-1")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    company.refresh_from_db()
    assert company.cancelled_at == first_cancelled_at


def test_group_delete_in_virtual_mode_deactivates_the_group_users(client):
    company = make_company(preset="acme-market", group_uid="cld-7")
    user = make_member(company, "usr-1.cld-7")
    other_company = make_company(preset="acme-market", group_uid="cld-8")
    other_user = make_member(other_company, "usr-1.cld-8")

    response = delete(client, "/maestrano/acme-market/account/groups/cld-7", auth=ACME_AUTH)

    assert response.status_code == 200
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert not user.is_active
    assert other_user.is_active
    assert User.objects.filter(pk=user.pk).exists()


def test_group_delete_cancels_the_local_subscription(client, django_capture_on_commit_callbacks):
    company = make_company()
    from maestrano_accounts.billing.services import get_default_plan, start_subscription

    subscription = start_subscription(company=company, plan=get_default_plan())

    # Billing reacts to company_cancelled, sent once the cancellation has committed.
    with django_capture_on_commit_callbacks(execute=True):
        assert delete(client, "/maestrano/account/groups/cld-1").status_code == 200

    subscription.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.CANCELLED
    assert subscription.cancelled_at is not None
    # Never sent to the platform: nothing to cancel there.
    assert not subscription.platform_cancel_pending


def test_unknown_group_is_a_success_that_changes_nothing(client):
    company = make_company()

    response = delete(client, "/maestrano/account/groups/cld-unknown")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    company.refresh_from_db()
    assert company.status == Company.Status.ACTIVE


def test_a_group_of_another_preset_is_unknown_here(client):
    acme_company = make_company(preset="acme-market", group_uid="cld-1")

    response = delete(client, "/maestrano/account/groups/cld-1")

    assert response.status_code == 200
    acme_company.refresh_from_db()
    assert acme_company.status == Company.Status.ACTIVE


@pytest.mark.parametrize(
    "auth",
    [None, basic("app-1", "wrong"), basic("nobody", "key-1"), ACME_AUTH, "Bearer app-1:key-1"],
    ids=["none", "wrong-key", "wrong-id", "other-preset", "not-basic"],
)
def test_bad_credentials_are_401_and_change_nothing(client, auth):
    company = make_company()
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}

    response = client.delete("/maestrano/account/groups/cld-1", **headers)

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}
    company.refresh_from_db()
    assert company.status == Company.Status.ACTIVE


def test_default_preset_credentials_are_refused_on_another_preset_path(client):
    company = make_company(preset="acme-market", group_uid="cld-1")

    response = delete(client, "/maestrano/acme-market/account/groups/cld-1", auth=DEFAULT_AUTH)

    assert response.status_code == 401
    company.refresh_from_db()
    assert company.status == Company.Status.ACTIVE


def test_unknown_preset_is_404(client):
    response = delete(client, "/maestrano/no-such-market/account/groups/cld-1")

    assert response.status_code == 404


@pytest.mark.parametrize("method", ["get", "post", "put", "patch"])
def test_only_delete_is_allowed(client, method):
    company = make_company()

    response = getattr(client, method)(
        "/maestrano/account/groups/cld-1", HTTP_AUTHORIZATION=DEFAULT_AUTH
    )

    assert response.status_code == 405
    company.refresh_from_db()
    assert company.status == Company.Status.ACTIVE


# --- group-user DELETE ----------------------------------------------------------------


def test_user_delete_in_real_mode_deactivates_the_membership_only(csrf_client):
    company = make_company()
    other = make_company(group_uid="cld-2")
    user = make_member(company, "usr-1")
    Membership.objects.create(user=user, company=other)

    response = delete(csrf_client, "/maestrano/account/groups/cld-1/users/usr-1")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert not Membership.objects.get(user=user, company=company).is_active
    assert Membership.objects.get(user=user, company=other).is_active
    user.refresh_from_db()
    assert user.is_active  # still works in cld-2


def test_user_delete_in_real_mode_deactivates_the_user_without_active_membership_left(client):
    company = make_company()
    other = make_company(group_uid="cld-2")
    user = make_member(company, "usr-1")
    Membership.objects.create(user=user, company=other, is_active=False)

    response = delete(client, "/maestrano/account/groups/cld-1/users/usr-1")

    assert response.status_code == 200
    user.refresh_from_db()
    assert not user.is_active
    assert Membership.objects.filter(user=user).count() == 2  # nothing deleted


def test_user_delete_in_virtual_mode_masks_the_uid_and_deactivates_the_user(client):
    company = make_company(preset="acme-market", group_uid="cld-7")
    virtual_user = make_member(company, "usr-1.cld-7")
    teammate = make_member(company, "usr-2.cld-7")

    response = delete(
        client, "/maestrano/acme-market/account/groups/cld-7/users/usr-1", auth=ACME_AUTH
    )

    assert response.status_code == 200
    virtual_user.refresh_from_db()
    teammate.refresh_from_db()
    assert not virtual_user.is_active
    assert teammate.is_active


def test_repeated_user_delete_answers_200_and_changes_nothing_more(client):
    company = make_company()
    user = make_member(company, "usr-1")
    assert delete(client, "/maestrano/account/groups/cld-1/users/usr-1").status_code == 200
    user.refresh_from_db()
    membership = Membership.objects.get(user=user, company=company)

    response = delete(client, "/maestrano/account/groups/cld-1/users/usr-1")

    assert response.status_code == 200
    assert Membership.objects.get(pk=membership.pk).updated_at == membership.updated_at


@pytest.mark.parametrize(
    "path",
    [
        "/maestrano/account/groups/cld-1/users/usr-unknown",
        "/maestrano/account/groups/cld-unknown/users/usr-1",
        "/maestrano/account/groups/cld-2/users/usr-1",  # a user, but not of this group
    ],
    ids=["unknown-user", "unknown-group", "not-a-member"],
)
def test_unknown_group_or_user_is_a_success_that_changes_nothing(client, path, caplog):
    company = make_company()
    make_company(group_uid="cld-2")
    user = make_member(company, "usr-1")

    response = delete(client, path)

    # Success, so that the platform stops retrying a webhook there is nothing to do for.
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert any("nothing to do" in record.getMessage() for record in caplog.records)
    user.refresh_from_db()
    assert user.is_active
    assert Membership.objects.get(user=user).is_active


def test_user_delete_with_another_presets_credentials_is_401(client):
    company = make_company()
    user = make_member(company, "usr-1")

    response = delete(client, "/maestrano/account/groups/cld-1/users/usr-1", auth=ACME_AUTH)

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}
    assert Membership.objects.get(user=user).is_active


def test_final_bill_from_the_adapter_is_recorded_once(
    client, settings, django_capture_on_commit_callbacks
):
    settings.MAESTRANO = {**settings.MAESTRANO, "ADAPTER": f"{__name__}.FinalBillAdapter"}
    make_company(currency="AUD")

    with django_capture_on_commit_callbacks(execute=True):
        delete(client, "/maestrano/account/groups/cld-1")
        delete(client, "/maestrano/account/groups/cld-1")

    charge = AdHocCharge.objects.get()
    assert (charge.amount_cents, charge.description, charge.currency) == (
        1234,
        "Final bill",
        "AUD",
    )


from maestrano_accounts.adapter import DefaultAccountAdapter  # noqa: E402


class FinalBillAdapter(DefaultAccountAdapter):
    def final_bill(self, company):
        return {"price_cents": 1234, "description": "Final bill"}


# --- lifecycle signals for the adopter's own deletion steps ------------------------------


@pytest.fixture
def lifecycle_signals():
    from maestrano_accounts.signals import company_cancelled, member_removed

    received = []

    def on_cancelled(sender, company, preset, **kwargs):
        received.append(("cancelled", company.group_uid, preset.name))

    def on_removed(sender, company, user, membership, preset, **kwargs):
        received.append(("removed", company.group_uid, user.pk, membership.is_active))

    company_cancelled.connect(on_cancelled, weak=False)
    member_removed.connect(on_removed, weak=False)
    yield received
    company_cancelled.disconnect(on_cancelled)
    member_removed.disconnect(on_removed)


def test_webhooks_send_the_lifecycle_signals_once(
    client, lifecycle_signals, django_capture_on_commit_callbacks
):
    company = make_company()
    user = make_member(company, "usr-1")
    make_member(company, "usr-2")

    with django_capture_on_commit_callbacks(execute=True):
        delete(client, "/maestrano/account/groups/cld-1/users/usr-1")
        delete(client, "/maestrano/account/groups/cld-1/users/usr-1")
        delete(client, "/maestrano/account/groups/cld-1")
        delete(client, "/maestrano/account/groups/cld-1")

    assert lifecycle_signals == [
        ("removed", "cld-1", user.pk, False),
        ("cancelled", "cld-1", "maestrano"),
    ]


# --- a logged-in user whose current company goes away ------------------------------------


@pytest.mark.parametrize(
    "webhook",
    ["/maestrano/account/groups/cld-1", "/maestrano/account/groups/cld-1/users/usr-1"],
    ids=["company-cancelled", "member-removed"],
)
def test_a_user_losing_the_current_company_goes_on_in_another_one(client, webhook):
    gone = make_company()
    kept = make_company(group_uid="cld-2")
    user = make_member(gone, "usr-1")
    Membership.objects.create(user=user, company=kept, role="Admin")
    browser = sso_browser(user, gone, uid="usr-1")
    assert browser.get("/dashboard/").context["company"] == gone

    assert delete(client, webhook).status_code == 200
    page = browser.get("/dashboard/")

    assert page.status_code == 200
    assert page.context["company"] == kept
    assert [str(m) for m in page.context["messages"]] == [
        "Co cld-1 is no longer available; you are now in Co cld-2."
    ]
    again = browser.get("/dashboard/")
    assert again.status_code == 200
    assert again.context["company"] == kept
    assert not list(again.context["messages"])


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/people/new/", {"first_name": "Meant", "last_name": "For cld-1"}),
        ("/billing/buy/sms/", {"key": "k-for-gone"}),
    ],
    ids=["new-person", "buy-sms"],
)
def test_a_form_sent_for_a_company_that_is_gone_is_not_run_in_another_one(client, path, form):
    """The switch must not carry a POST meant for the cancelled company over to the other
    one (the session's CSRF token and the Admin role would let it through there)."""
    from crm.models import Person

    gone = make_company()
    kept = make_company(group_uid="cld-2")
    user = make_member(gone, "usr-1")
    Membership.objects.create(user=user, company=kept, role="Admin")
    browser = sso_browser(user, gone, uid="usr-1")
    assert browser.get("/dashboard/").context["company"] == gone

    assert delete(client, "/maestrano/account/groups/cld-1").status_code == 200
    sent = browser.post(path, form)

    assert (sent.status_code, sent.headers["Location"]) == (302, "/dashboard/")
    assert not Person.objects.exists()
    assert not AdHocCharge.objects.filter(idempotency_key__contains="k-for-gone").exists()
    page = browser.get("/dashboard/")
    assert page.context["company"] == kept
    assert [str(m) for m in page.context["messages"]] == [
        "Co cld-1 is no longer available; you are now in Co cld-2. "
        "What you just sent was not carried out."
    ]


@pytest.mark.parametrize(
    "webhook",
    ["/maestrano/account/groups/cld-1", "/maestrano/account/groups/cld-1/users/usr-1"],
    ids=["company-cancelled", "member-removed"],
)
def test_a_user_losing_the_last_company_is_refused(client, webhook):
    gone = make_company()
    user = make_member(gone, "usr-1")
    # Companies the user may no longer work in: neither is a way out.
    Membership.objects.create(user=user, company=make_company(group_uid="cld-2"), is_active=False)
    Membership.objects.create(
        user=user, company=make_company(group_uid="cld-3", status=Company.Status.CANCELLED)
    )
    browser = sso_browser(user, gone, uid="usr-1")

    assert delete(client, webhook).status_code == 200
    page = browser.get("/dashboard/")

    assert page.status_code == 302
    assert page.headers["Location"] == "http://127.0.0.1:9/app_access_unauthorized"
    assert browser.get("/dashboard/").headers["Location"].startswith("/?next=")  # logged out
