"""Roles in the current company (maestrano_accounts.permissions) and their use by the example app.

Purchases, deletes and sync operations need the Admin role (or Super Admin); a
Member gets a 403 page that says so, and the pages do not offer those buttons.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crm.models import Person
from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.permissions import ROLE_ORDER, role_at_least
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from maestrano_sync.models import InboxEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-roles", name="Roles Ltd")


@pytest.fixture
def as_role(client, company):
    """``as_role("Member")``: the test client logged in with that role in ``company``."""

    def log_in(role: str):
        user = get_user_model().objects.create_user(f"user-{len(role)}-{role.replace(' ', '')}")
        Membership.objects.create(user=user, company=company, role=role)
        client.force_login(user)
        session = client.session
        session[CURRENT_COMPANY_KEY] = company.pk
        session.save()
        return client

    return log_in


@pytest.fixture
def person(company):
    return Person.objects.create(company=company, first_name="Pat", last_name="Kept")


def test_roles_are_ordered_from_guest_to_super_admin():
    assert ROLE_ORDER == ("Guest", "Member", "Power User", "Admin", "Super Admin")
    for rank, role in enumerate(ROLE_ORDER):
        for other_rank, other in enumerate(ROLE_ORDER):
            assert role_at_least(role, other) is (rank >= other_rank)
    assert not role_at_least("Owner", "Guest")  # a role we do not know ranks lowest
    assert not role_at_least(None, "Guest")
    with pytest.raises(ValueError):
        role_at_least("Admin", "Boss")


@pytest.mark.parametrize("role", ["Guest", "Member", "Power User", "Unknown role"])
def test_below_admin_cannot_buy_and_sees_why(as_role, role):
    client = as_role(role)

    response = client.post("/billing/buy/sms/", {"idempotency_key": "k-member"})

    assert response.status_code == 403
    assert b"needs the <strong>Admin</strong> role" in response.content
    assert not AdHocCharge.objects.exists()


@pytest.mark.parametrize("role", ["Member", "Power User"])
def test_below_admin_cannot_delete_records(as_role, person, role):
    client = as_role(role)

    assert client.get(f"/people/{person.pk}/delete/").status_code == 403
    response = client.post(f"/people/{person.pk}/delete/")

    assert response.status_code == 403
    assert b'id="permission-denied"' in response.content
    assert Person.objects.filter(pk=person.pk).exists()


@pytest.mark.parametrize("role", ["Admin", "Super Admin"])
def test_admins_delete_records(as_role, person, role):
    response = as_role(role).post(f"/people/{person.pk}/delete/")

    assert response.status_code == 302
    assert not Person.objects.filter(pk=person.pk).exists()


def test_a_member_cannot_retry_failed_sync_notifications(as_role, company):
    entry = InboxEntry.objects.create(
        preset="maestrano", company=company, payload={}, status=InboxEntry.Status.FAILED
    )

    response = as_role("Member").post("/sync/retry-parked/", {"entity": "inbox"})

    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == InboxEntry.Status.FAILED


def test_pages_offer_purchases_and_deletes_to_admins_only(client, company, person):
    def page_texts(role: str) -> tuple[str, str, str]:
        user = get_user_model().objects.create_user(f"viewer-{role.replace(' ', '')}")
        Membership.objects.create(user=user, company=company, role=role)
        client.force_login(user)
        session = client.session
        session[CURRENT_COMPANY_KEY] = company.pk
        session.save()
        return tuple(
            client.get(path).content.decode()
            for path in ("/dashboard/", "/billing/", f"/people/{person.pk}/")
        )

    for text in page_texts("Member"):
        assert 'id="buy-sms"' not in text
        assert 'id="delete-record"' not in text
    dashboard, billing, edit = page_texts("Admin")
    assert 'id="buy-sms"' in dashboard and 'id="buy-sms"' in billing
    assert 'id="delete-record"' in edit


def test_a_company_role_is_read_in_the_current_company_only(client, company, person):
    other = Company.objects.create(preset="maestrano", group_uid="cld-other", name="Other")
    user = get_user_model().objects.create_user("two-hats")
    Membership.objects.create(user=user, company=company, role="Member")
    Membership.objects.create(user=user, company=other, role="Admin")
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()

    assert client.post(f"/people/{person.pk}/delete/").status_code == 403
