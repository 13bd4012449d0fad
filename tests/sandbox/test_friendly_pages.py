"""The sandbox's pages for a person: no silent creation, no silent promotion, inline errors."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from maestrano_sandbox import directory
from maestrano_sandbox.models import GroupMembership, PlatformUser
from tests.helpers.saml import login_page_url, parse_form

pytestmark = pytest.mark.django_db(databases="__all__")


def post_sign_in(platform, http, **fields):
    url = login_page_url(platform, http)
    page = http.get(url, timeout=10)
    form = parse_form(page.text, "idp-login")
    action = urljoin(page.url, form["action"])
    return http.post(
        action, data={**form["fields"], **fields}, headers={"Referer": url}, timeout=10
    )


def test_a_mistyped_uid_is_reported_instead_of_created(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-1", role="Member")
    response = post_sign_in(platform, platform.session(), user_uid="usr-typo", group_uid="cld-1")

    assert response.status_code == 400
    assert "There is no user usr-typo" in response.text
    assert not PlatformUser.objects.filter(uid="usr-typo").exists()


def test_signing_in_keeps_the_members_role(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-1", role="Member")
    response = post_sign_in(platform, platform.session(), user_uid="usr-1", group_uid="cld-1")

    assert response.status_code == 200 and 'id="saml-post"' in response.text
    assert GroupMembership.objects.get(user__uid="usr-1", group__uid="cld-1").role == "Member"


def test_add_member_errors_are_shown_beside_their_fields(client):
    directory.upsert_group(uid="cld-1", name="Acme")

    response = client.post("/sandbox/groups/cld-1/members", {"user_uid": "", "name": "Ada"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="Ada"' in page  # what was typed is kept
    assert '<label for="id_email">Email:</label>' in page
    assert "Needed for a new user." in page
