"""Account webhook ids no database can look up are unknown ids (nothing to do), never a 500."""

from __future__ import annotations

import base64

import pytest

from maestrano_accounts.models import Company

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(b"app-1:key-1").decode()


@pytest.fixture(autouse=True)
def company(two_presets):
    return Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")


# Percent-encoded as the platform would send them: %00 is a NUL in the id; invalid UTF-8
# (a lone surrogate's bytes) stays percent-encoded text and is simply unknown.
IDS = ["%00", "cld-1%00", "a%00b", "%ED%A0%80", "%C0%80", "x" * 101]


@pytest.mark.parametrize("bad", IDS)
@pytest.mark.parametrize(
    "path",
    [
        "/maestrano/account/groups/{bad}",
        "/maestrano/account/groups/{bad}/users/usr-1",
        "/maestrano/account/groups/cld-1/users/{bad}",
    ],
)
def test_impossible_ids_are_unknown(client, company, bad, path):
    response = client.delete(path.format(bad=bad), HTTP_AUTHORIZATION=AUTH)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    company.refresh_from_db()
    assert company.is_active


@pytest.mark.parametrize(
    "credentials", [b"app-1\x00:key-1", b"app-1:key-1\x00", b"\x00:\x00", b"app-1:\xed\xa0\x80"]
)
def test_credentials_holding_nul_or_invalid_utf8_are_refused(client, credentials):
    header = "Basic " + base64.b64encode(credentials).decode()

    response = client.delete("/maestrano/account/groups/cld-1", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
