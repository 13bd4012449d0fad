"""The hub's record endpoints (``GET`` / ``PUT /<group>/<entity>/<id>``) serve any id that is
one percent-encoded path segment, as the apps encode it (docs/protocol.md, 'External ids';
``maestrano_integration.http.path_segment``): our external id is a local key, which may
hold ``/`` (``INV/2024/001`` is sent as ``INV%2F2024%2F001``), ``?``, ``#``, ``%`` or
spaces. Over HTTP, on the live server, as every adopter's tests use the sandbox."""

from __future__ import annotations

import pytest
import requests

from maestrano_integration.connec import ConnecClient, ConnecNotFoundError
from maestrano_integration.http import path_segment
from sandbox.models import Group

from .connec_support import CONNEC, basic_auth

KEYS = ["INV/2024/001", "a/b/", "../x", "Q?x=1", "A#1", "50%2F", "two words"]


@pytest.fixture
def group(platform):
    group = Group.objects.create(name="Acme")
    group.apps.add(platform.app)
    return group


def record_url(platform, group, key: str) -> str:
    return f"{platform.connec_url}/api/v2/{group.uid}/organizations/{path_segment(key)}"


def test_a_record_is_read_and_updated_by_an_external_id_holding_a_slash(platform, group):
    ours = {"provider": platform.api_id, "realm": group.uid}
    client = ConnecClient(preset="maestrano", group_id=group.uid)
    for key in KEYS:
        client.create("organizations", {"id": [{**ours, "id": key}], "name": key})

    for key in KEYS:
        record = client.retrieve_by_external_id("organizations", key, **ours)
        assert record["name"] == key
        assert {**ours, "id": key} in record["id"]

        answer = requests.put(
            record_url(platform, group, key),
            params={"opts[provider]": ours["provider"], "opts[realm]": ours["realm"]},
            json={"organizations": {"name": f"{key} (renamed)"}},
            auth=platform.auth,
            timeout=10,
        )
        assert answer.status_code == 200, (key, answer.text)
        assert answer.json()["organizations"]["name"] == f"{key} (renamed)"

    # One record each, and a Connec! id in the same URL still names its record.
    listed = requests.get(
        f"{platform.connec_url}/api/v2/{group.uid}/organizations", auth=platform.auth, timeout=10
    ).json()["organizations"]
    assert sorted(r["name"] for r in listed) == sorted(f"{key} (renamed)" for key in KEYS)
    first = listed[0]
    assert client.retrieve("organizations", first["id"])["name"] == first["name"]
    # An id naming no record is the hub's 404, in its envelope.
    with pytest.raises(ConnecNotFoundError):
        client.retrieve_by_external_id("organizations", "INV/2024/002", **ours)


@pytest.mark.django_db(databases="__all__")
def test_an_unencoded_slash_is_two_segments_where_the_server_gives_the_raw_path(client):
    """Behind a server that hands the request target over as sent (gunicorn's ``RAW_URI``,
    ``REQUEST_URI``), an id is the one segment it was sent as: an unencoded ``/`` makes
    two segments, which name no record (Connec!'s 404), as on the real hub."""
    from .connec_support import register_app

    app = register_app("app-raw")
    group = Group.objects.create(uid="cld-raw", name="Acme")
    group.apps.add(app)
    headers = {"Authorization": basic_auth(app.api_id, app.api_key), "CONNEC-EXTERNAL-IDS": "true"}
    ours = {"provider": app.api_id, "realm": group.uid, "id": "INV/2024/001"}
    created = client.post(
        f"{CONNEC}/api/v2/cld-raw/organizations",
        {"organizations": {"id": [ours], "name": "Slash"}},
        content_type="application/json",
        headers=headers,
    )
    assert created.status_code == 201
    query = "opts[provider]=app-raw&opts[realm]=cld-raw"

    for sent, status in (("INV%2F2024%2F001", 200), ("INV/2024/001", 404)):
        path = f"{CONNEC}/api/v2/cld-raw/organizations/{sent}"
        answer = client.get(f"{path}?{query}", headers=headers, RAW_URI=f"{path}?{query}")
        assert answer.status_code == status, (sent, answer.content)
        if status == 404:
            assert answer.json()["errors"][0]["status"] == "404"
