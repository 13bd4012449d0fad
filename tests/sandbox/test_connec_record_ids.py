"""The hub's record endpoints (``GET`` / ``PUT /<group>/<entity>/<id>``) serve an id that is
one percent-encoded path segment, as the apps encode it (docs/protocol.md, 'External ids';
``maestrano_integration.http.path_segment``): our external id is a local key, which may
hold ``?``, ``#``, ``%`` or spaces. An id holding ``/`` is served by batch ops only
(docs/sandbox.md). Over HTTP, on the live server, as every adopter's tests use the sandbox."""

from __future__ import annotations

import pytest
import requests

from maestrano_integration.connec import ConnecClient, ConnecNotFoundError
from maestrano_integration.http import path_segment
from maestrano_sandbox.models import Group

KEYS = ["Q?x=1", "A#1", "50%2F", "two words", "..x", "~é"]


@pytest.fixture
def group(platform):
    group = Group.objects.create(name="Acme")
    group.apps.add(platform.app)
    return group


def record_url(platform, group, key: str) -> str:
    return f"{platform.connec_url}/api/v2/{group.uid}/organizations/{path_segment(key)}"


def test_a_record_is_read_and_updated_by_an_external_id_of_reserved_characters(platform, group):
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
        client.retrieve_by_external_id("organizations", "Q?x=2", **ours)
