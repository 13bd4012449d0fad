"""A deep link survives the SSO round trip: ``next`` through init, consume and complete."""

from __future__ import annotations

import pytest

from tests.helpers.saml import obtain_saml_response
from tests.helpers.sso_flow import deliver


@pytest.fixture
def member(platform):
    return platform.add_member(group_uid="cld-deep", user_uid="usr-deep", role="Admin")


def test_a_deep_link_is_opened_after_the_login(platform, member):
    http = platform.session()
    first = http.get(f"{platform.url}/people/", allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"] == "/?next=/people/"
    landing = http.get(f"{platform.url}/?next=/people/", timeout=10).text
    assert 'href="/maestrano/auth/saml/init?next=/people/"' in landing

    post = obtain_saml_response(
        platform,
        http,
        extra_init_params={"next": "/people/"},
        user_uid="usr-deep",
        group_uid="cld-deep",
    )
    completed = deliver(http, post)

    assert completed.status_code == 302
    assert completed.headers["Location"] == "/people/"


def test_an_offsite_next_is_ignored(platform, member):
    http = platform.session()
    post = obtain_saml_response(
        platform,
        http,
        extra_init_params={"next": "https://evil.example/"},
        user_uid="usr-deep",
        group_uid="cld-deep",
    )
    completed = deliver(http, post)

    assert completed.status_code == 302
    assert completed.headers["Location"] == "/dashboard/"
