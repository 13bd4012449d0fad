import pytest
from django.contrib.auth import get_user_model

from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company


def test_landing_page_offers_maestrano_login(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Log in with Maestrano" in response.content
    assert b'href="/maestrano/auth/saml/init"' in response.content


def test_landing_page_is_never_cached(client):
    """The browser asks again on Back, so a logged-in user is sent on (below)."""
    response = client.get("/?next=/people/")
    assert "no-store" in response["Cache-Control"]
    assert b'id="login-to-continue"' in response.content


@pytest.fixture
def logged_in(client, db):
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One Ltd")
    log_in_to_company(client, company, role="Member")
    return client


def test_a_logged_in_user_goes_on_to_the_dashboard(logged_in):
    response = logged_in.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert "no-store" in response["Cache-Control"]


def test_a_logged_in_user_goes_on_to_the_local_page_asked_for(logged_in):
    assert logged_in.get("/?next=/people/")["Location"] == "/people/"
    assert logged_in.get("/?next=https://evil.example/")["Location"] == "/dashboard/"
    assert logged_in.get("/?next=//evil.example/")["Location"] == "/dashboard/"


def test_a_user_without_a_company_sees_the_page(client, db):
    client.force_login(get_user_model().objects.create_user("loner"))
    response = client.get("/")
    assert response.status_code == 200
    assert b"Log in with Maestrano" in response.content


def test_logout_leaves_a_signed_out_message_for_the_home_page(logged_in):
    answer = logged_in.post("/maestrano/logout")
    assert answer.status_code == 302
    home = logged_in.get("/")
    assert home.status_code == 200
    assert b"You are signed out." in home.content
    assert b"You are signed out." not in logged_in.get("/").content
