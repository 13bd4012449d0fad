"""The demo's billing pages through the Django test client: who may see and buy."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from maestrano_accounts.models import AdHocCharge

User = get_user_model()

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("method", "path"), [("get", "/billing/"), ("post", "/billing/buy/sms/")])
def test_anonymous_users_are_sent_to_log_in(client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 302
    assert not AdHocCharge.objects.exists()


def test_a_user_without_an_active_company_cannot_buy(client):
    client.force_login(User.objects.create_user("local", password="x-local-pw"))

    assert client.get("/billing/").status_code == 403
    assert client.post("/billing/buy/sms/", {"idempotency_key": "k"}).status_code == 403
    assert not AdHocCharge.objects.exists()


def test_buying_is_post_only(client):
    client.force_login(User.objects.create_user("local", password="x-local-pw"))

    assert client.get("/billing/buy/sms/").status_code == 405
